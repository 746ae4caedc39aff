"""Conformance function: does not compile (line 4)."""


def handle(event)
    return event
