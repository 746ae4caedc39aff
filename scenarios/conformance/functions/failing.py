"""Conformance function: always fails, so delivery retries and dead-letters."""


def handle(event):
    raise RuntimeError("conformance: deliberate failure")
