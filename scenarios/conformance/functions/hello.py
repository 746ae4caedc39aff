"""Conformance function: echoes its input."""


def handle(event):
    return {"echo": event}
