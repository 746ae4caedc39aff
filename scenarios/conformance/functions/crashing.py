"""Conformance function: its process dies mid-request, so delivery fails at the HTTP level."""

import os


def handle(event):
    os._exit(3)
