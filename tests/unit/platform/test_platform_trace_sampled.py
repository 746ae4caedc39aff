"""Which requests the platform may skip spans for: ``tracing.parent_sampled`` (pure)."""

from __future__ import annotations

import pytest

from knative_lambda.platform import tracing

TRACE, SPAN = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"


@pytest.mark.parametrize(("value", "sampled"), [
    (f"00-{TRACE}-{SPAN}-01", True),
    (f"00-{TRACE}-{SPAN}-03", True),  # other flags beside "sampled"
    (f"00-{TRACE}-{SPAN}-01".encode(), True),  # AMQP header values may be bytes
    (f"00-{TRACE}-{SPAN}-00", False),  # the caller did not record it: nor will we
    (f" 00-{TRACE}-{SPAN}-02\t", False),
    # not a parent for OpenTelemetry's propagator: a new trace starts, which the ratio may record
    (f"00-{'0' * 32}-{SPAN}-01", None),
    (f"00-{TRACE}-{'0' * 16}-00", None),
    (f"00-{TRACE.upper()}-{SPAN}-00", None),
    (f"01-{TRACE}-{SPAN}-00", None),  # another version: left to OpenTelemetry
    (f"00-{TRACE}-{SPAN}-00-extra", None),
    ("00-x-y-zz", None),
    ("garbage", None),
    ("", None),
    (None, None),
    (7, None),
])
def test_parent_sampled(value: object, sampled: bool | None) -> None:
    assert tracing.parent_sampled(value) is sampled


def test_new_traceparents_are_sampled_parents() -> None:
    header, trace_id = tracing.new_traceparent()
    assert tracing.parent_sampled(header) is True and trace_id in header
