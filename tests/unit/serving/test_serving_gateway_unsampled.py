"""The gateway's cheap "certainly not recorded" check on a request's traceparent (pure)."""

from __future__ import annotations

import pytest

from knative_lambda.platform.serving.gateway import _UNSAMPLED

TRACE, SPAN = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"


@pytest.mark.parametrize(("value", "unsampled"), [
    (f"00-{TRACE}-{SPAN}-00", True),
    (f" 00-{TRACE}-{SPAN}-02\t", True),  # another flag, sampled bit clear
    (f"00-{TRACE}-{SPAN}-01", False),  # sampled: the gateway records its span
    (f"00-{TRACE}-{SPAN}-03", False),
    # not what the propagator accepts as a parent: a new trace, which the ratio may record
    (f"00-{'0' * 32}-{SPAN}-00", False),
    (f"00-{TRACE}-{'0' * 16}-00", False),
    (f"00-{TRACE.upper()}-{SPAN}-00", False),
    (f"01-{TRACE}-{SPAN}-00", False),  # another version: left to OpenTelemetry
    (f"00-{TRACE}-{SPAN}-00-extra", False),
    ("garbage", False),
    ("", False),
])
def test_unsampled_traceparent(value: str, unsampled: bool) -> None:
    assert bool(_UNSAMPLED.match(value)) is unsampled
