"""Bounds the broker puts on hostile input: delivery, filter depth, subscriber URIs, AMQP sizes."""

from __future__ import annotations

import pytest
from cloudevents.core.v1.event import CloudEvent

from knative_lambda.contract.errors import ContractError
from knative_lambda.contract.events import EventKind
from knative_lambda.contract.factory import new_event
from knative_lambda.platform.broker.filters import MAX_FILTER_DEPTH, validate_filters
from knative_lambda.platform.broker.publisher import (
    DEFAULT_FRAME_MAX,
    amqp_message,
    header_bytes,
    message_problems,
)
from knative_lambda.platform.broker.triggers import (
    MAX_RETRY,
    TriggerSpecError,
    parse_trigger,
    trigger_object,
)


def _problems(**kwargs) -> list[str]:
    obj = trigger_object("t", kwargs.pop("subscriber", "http://127.0.0.1:9/"), **kwargs)
    try:
        parse_trigger(obj, "default", "t")
    except TriggerSpecError as exc:
        return exc.problems
    return []


@pytest.mark.parametrize(
    ("delivery", "where"),
    [
        ({"retry": MAX_RETRY + 1}, "spec.delivery.retry"),
        ({"retry": 1_000_000}, "spec.delivery.retry"),
        ({"retry": 10**30}, "spec.delivery.retry"),
        ({"backoffDelay": "PT3601S"}, "spec.delivery.backoffDelay"),
        ({"backoffDelay": "P1000000W"}, "spec.delivery.backoffDelay"),
        ({"timeout": "PT3601S"}, "spec.delivery.timeout"),
        ({"timeout": "P1D"}, "spec.delivery.timeout"),
    ],
)
def test_delivery_past_its_bounds_is_refused(delivery, where):
    problems = _problems(delivery=delivery)
    assert len(problems) == 1 and problems[0].startswith(where + ":"), problems


@pytest.mark.parametrize(
    "delivery",
    [{"retry": MAX_RETRY, "backoffDelay": "PT1H", "timeout": "PT1H"}, {"retry": 0}, {"timeout": "PT0.1S"}],
)
def test_delivery_at_its_bounds_is_accepted(delivery):
    assert _problems(delivery=delivery) == []


@pytest.mark.parametrize(
    ("uri", "ok"),
    [
        ("http://", False),
        ("https://", False),
        ("http:///path", False),
        ("http://:80/", False),
        ("http://host:notaport/", False),
        ("http://ho st/", False),
        ("http://h\n/", False),
        ("ftp://host/", False),
        ("http://127.0.0.1:9/", True),
        ("https://example.com/a?b=c", True),
        ("http://[::1]:8080/", True),
    ],
)
def test_subscriber_needs_an_http_url_with_a_host(uri, ok):
    problems = _problems(subscriber=uri)
    assert (problems == []) is ok, problems
    if not ok:
        assert problems[0].startswith("spec.subscriber.uri:")


def _nested_not(depth: int) -> list[dict]:
    expr: dict = {"exact": {"type": "x"}}
    for _ in range(depth - 1):
        expr = {"not": expr}
    return [expr]


@pytest.mark.parametrize(
    ("filters", "ok"),
    [
        (_nested_not(MAX_FILTER_DEPTH), True),
        (_nested_not(MAX_FILTER_DEPTH + 1), False),
        (_nested_not(900), False),
        (_nested_not(5000), False),  # deeper than Python's recursion limit: still a plain problem
        ([{"all": [{"any": _nested_not(MAX_FILTER_DEPTH - 2)}]}], True),
        ([{"all": [{"any": _nested_not(MAX_FILTER_DEPTH - 1)}]}], False),
    ],
)
def test_filter_nesting_is_bounded(filters, ok):
    problems = validate_filters(filters)
    assert (problems == []) is ok
    if not ok:
        assert len(problems) == 1 and "nested more than" in problems[0]


@pytest.mark.parametrize(
    ("headers", "message_id", "wheres"),
    [
        ({"ce-id": "x"}, "x", []),
        ({"ce-id": "i" * 255}, "i" * 255, []),
        ({"ce-id": "i" * 256}, "i" * 256, ["attribute id"]),
        ({"ce-id": "é" * 128}, "é" * 128, ["attribute id"]),  # 256 bytes in UTF-8
        ({"ce-note": "v" * 200_000}, "x", ["attributes"]),
        ({f"ce-e{i}": "v" * 1000 for i in range(140)}, "x", ["attributes"]),
        ({"ce-id": "i" * 300, "ce-note": "v" * 200_000}, "i" * 300, ["attribute id", "attributes"]),
    ],
)
def test_message_problems_keep_a_message_within_one_amqp_frame(headers, message_id, wheres):
    problems = message_problems(headers, "application/json", message_id, DEFAULT_FRAME_MAX)
    assert [p.where for p in problems] == wheres


def test_header_bytes_grows_with_every_header():
    small = header_bytes({"ce-a": "1"}, "application/json", "x")
    assert header_bytes({"ce-a": "1", "ce-b": "22"}, "application/json", "x") == small + 4 + 6 + 2


def test_amqp_message_refuses_an_event_amqp_cannot_carry():
    ok = new_event(EventKind.PARSER_START, {"n": 1}, source="network.notifi.x", subject="p1")
    assert amqp_message(ok).message_id == str(ok.get_id())
    # Past the contract's own limits too: built directly, as a reply or dead letter could be.
    big = CloudEvent({**ok.get_attributes(), "note": "v" * 200_000}, {"n": 1})
    with pytest.raises(ContractError) as info:
        amqp_message(big)
    assert [p.where for p in info.value.problems] == ["attributes"]


@pytest.mark.parametrize(
    ("extensions", "content_type"),
    [({}, None), ({"flag": True, "count": 3}, "text/plain"), ({"note": "a b%é"}, "application/json")],
)
def test_binary_headers_are_what_the_contract_binding_writes(extensions, content_type):
    from knative_lambda.contract.bindings import to_amqp
    from knative_lambda.platform.broker.publisher import binary_headers

    event = new_event(EventKind.PARSER_START, {"n": 1}, source="network.notifi.x", subject="p1",
                      extensions=extensions)
    if content_type:
        event = CloudEvent({**event.get_attributes(), "datacontenttype": content_type}, b"x")
    headers, _, ctype = to_amqp(event)
    assert binary_headers(event) == (headers, ctype)
