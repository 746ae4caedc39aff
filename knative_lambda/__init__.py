"""Knative Lambda: load-test and conformance harness plus a reference platform."""

__version__ = "0.1.0"
