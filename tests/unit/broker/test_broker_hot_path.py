"""Pure parts of the broker's per-event path: the trace context it carries, and the
dispatcher's view of a delivered message."""

from __future__ import annotations

import pytest

from knative_lambda.platform.broker.ingress import trace_parent

SAMPLED = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def test_trace_parent_keeps_only_the_trace_context() -> None:
    from multidict import CIMultiDict

    headers = CIMultiDict({"Traceparent": SAMPLED, "ce-id": "1", "Content-Type": "application/json"})
    assert trace_parent(headers) == {"traceparent": SAMPLED}
    headers["tracestate"] = "k=" + "v" * 600  # past what is worth carrying in every message
    assert trace_parent(headers) == {"traceparent": SAMPLED}
    headers["tracestate"] = "k=v"
    assert trace_parent(headers) == {"traceparent": SAMPLED, "tracestate": "k=v"}


# --- the dispatcher's view of a delivered message -------------------------------------------


class _Channel:
    is_closed = False


def test_delivery_reads_what_the_dispatcher_needs() -> None:
    from aiormq import spec
    from aiormq.abc import DeliveredMessage
    from pamqp.header import ContentHeader

    from knative_lambda.platform.broker.dispatcher import Delivery

    channel = _Channel()
    props = spec.Basic.Properties(headers={"ce-id": "1"}, content_type="application/json")
    raw = DeliveredMessage(delivery=spec.Basic.Deliver(delivery_tag=7), header=ContentHeader(properties=props),
                           body=b"{}", channel=channel)  # type: ignore[arg-type]
    got = Delivery(raw)
    assert (got.body, got.headers, got.content_type, got.delivery_tag, got.channel) == (
        b"{}", {"ce-id": "1"}, "application/json", 7, channel)
    channel.is_closed = True  # as aio-pika's message: a closed channel cannot settle it
    with pytest.raises(Exception, match="closed"):
        _ = got.channel
    bare = DeliveredMessage(delivery=spec.Basic.Deliver(delivery_tag=8), header=ContentHeader(),
                            body=b"", channel=_Channel())  # type: ignore[arg-type]
    assert Delivery(bare).headers == {} and Delivery(bare).content_type is None
