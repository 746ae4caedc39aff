"""Every event kind survives every binding: HTTP binary/structured, AMQP, JSON storage."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from cloudevents.core.v1.event import CloudEvent

from knative_lambda.contract import (
    ContractError,
    EventKind,
    event_from_dict,
    event_to_dict,
    from_amqp,
    from_http,
    to_amqp,
    to_http,
    validate,
)


def _http_binary(e: CloudEvent) -> CloudEvent:
    headers, body = to_http(e, "binary")
    assert "ce-id" in headers and headers["content-type"] == e.get_datacontenttype()
    return from_http(headers, body)


def _http_structured(e: CloudEvent) -> CloudEvent:
    headers, body = to_http(e, "structured")
    assert headers == {"content-type": "application/cloudevents+json"}
    return from_http(headers, body)


def _amqp_binary(e: CloudEvent) -> CloudEvent:
    headers, body, content_type = to_amqp(e)
    assert headers["ce-type"] == e.get_type() and content_type == e.get_datacontenttype()
    return from_amqp(headers, body, content_type)


def _amqp_structured(e: CloudEvent) -> CloudEvent:
    headers, body, content_type = to_amqp(e, "structured")
    assert content_type == "application/cloudevents+json"
    return from_amqp(headers, body, content_type)


def _amqp_bytes_headers(e: CloudEvent) -> CloudEvent:
    # aio-pika/pamqp may hand header values back as bytes.
    headers, body, content_type = to_amqp(e)
    return from_amqp({k: v.encode() for k, v in headers.items()}, body, content_type)


def _http_upper_headers(e: CloudEvent) -> CloudEvent:
    headers, body = to_http(e, "binary")
    return from_http({k.upper(): v for k, v in headers.items()}, body)


def _json_storage(e: CloudEvent) -> CloudEvent:
    return event_from_dict(event_to_dict(e))


TRANSPORTS: dict[str, Callable[[CloudEvent], CloudEvent]] = {
    "http-binary": _http_binary,
    "http-structured": _http_structured,
    "amqp-binary": _amqp_binary,
    "amqp-structured": _amqp_structured,
    "amqp-bytes-headers": _amqp_bytes_headers,
    "http-upper-headers": _http_upper_headers,
    "json-storage": _json_storage,
}


@pytest.mark.parametrize("transport", list(TRANSPORTS))
@pytest.mark.parametrize("kind", list(EventKind), ids=lambda k: k.value)
def test_every_kind_round_trips(kind: EventKind, transport: str, sample_event) -> None:
    original = sample_event(kind)
    decoded = TRANSPORTS[transport](original)
    assert decoded.get_attributes() == original.get_attributes()
    assert decoded.get_data() == original.get_data()
    before, after = validate(original), validate(decoded)
    assert after.kind is kind
    assert after.model == before.model
    assert after.correlation_id == before.correlation_id


@pytest.mark.parametrize("transport", list(TRANSPORTS))
def test_round_trip_under_a_custom_prefix(transport: str, sample_event) -> None:
    original = sample_event(EventKind.JOB_START, prefix="com.example.fn")
    decoded = TRANSPORTS[transport](original)
    assert validate(decoded, prefix="com.example.fn").kind is EventKind.JOB_START
    with pytest.raises(ContractError, match="unknown event type"):
        validate(decoded)  # the default prefix does not know it


def test_header_values_needing_escapes_survive_http(sample_event) -> None:
    from knative_lambda.contract import new_event

    e = new_event(
        EventKind.PARSER_START,
        {"x": 1},
        source="network.notifi.acme",
        subject="parser-1",
        extensions={"note": 'ünïcode "quoted" 100% sure'},
    )
    assert _http_binary(e).get_extension("note") == 'ünïcode "quoted" 100% sure'
    assert _amqp_binary(e).get_extension("note") == 'ünïcode "quoted" 100% sure'


def test_structured_mode_with_charset_is_accepted(sample_event) -> None:
    headers, body = to_http(sample_event(EventKind.RESULT), "structured")
    decoded = from_http({"Content-Type": "application/cloudevents+json; charset=utf-8"}, body)
    assert validate(decoded).kind is EventKind.RESULT


def test_binary_data_is_kept_as_bytes() -> None:
    from knative_lambda.contract import new_event

    e = new_event(
        EventKind.PARSER_START,
        b"\x00\xffraw",
        source="network.notifi.acme",
        subject="parser-1",
    )
    e = CloudEvent({**e.get_attributes(), "datacontenttype": "application/octet-stream"}, b"\x00\xffraw")
    for transport in ("http-binary", "http-structured", "amqp-binary", "json-storage"):
        assert TRANSPORTS[transport](e).get_data() == b"\x00\xffraw", transport


def test_unknown_mode_is_a_programming_error(sample_event) -> None:
    with pytest.raises(ValueError):
        to_http(sample_event(EventKind.RESULT), "batch")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        to_amqp(sample_event(EventKind.RESULT), "batch")  # type: ignore[arg-type]


@pytest.mark.parametrize(("content_type", "body"), [
    ("application/json", b'{"n": 1, "s": "\\u00e9", "l": [1, 2.5, null, true]}'),
    ("application/json; charset=utf-8", b'"just a string"'),
    ("application/vnd.api+json", b"[1, 2, 3]"),
    ("text/plain", "héllo".encode()),
    ("application/octet-stream", b"\xff\xfe\x00 not utf-8"),
    ("application/json", b""),
    (None, b'{"untyped": true}'),
])
def test_binary_http_events_are_what_the_sdk_would_decode(content_type: str | None, body: bytes) -> None:
    """from_http builds a binary-mode event from the parts it checked instead of letting the SDK
    decode them again: attributes (percent-escapes, time) and data must come out the same."""
    from cloudevents.core.bindings import http as sdk_http
    from cloudevents.core.formats.json import JSONFormat

    from knative_lambda.contract.bindings import from_http

    headers = {"ce-specversion": "1.0", "ce-id": "a%20b%25c", "ce-source": "urn:x%2Fy",
               "ce-type": "t.é%C3%A9", "ce-time": "2026-11-26T10:00:00.5%2B01:00", "ce-subject": "s%3Bt",
               "ce-ext": "v"}
    if content_type is not None:
        headers["content-type"] = content_type
    ours = from_http(headers, body)
    sdk = sdk_http.from_binary(sdk_http.HTTPMessage(headers=headers, body=body), JSONFormat(), CloudEvent)
    assert ours.get_attributes() == sdk.get_attributes()
    assert ours.get_data() == sdk.get_data() and type(ours.get_data()) is type(sdk.get_data())
