"""Conformance function: does not compile (line 5)."""


def handle(event)
    return event
