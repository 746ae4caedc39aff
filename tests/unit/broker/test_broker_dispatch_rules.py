"""Pure parts of the dispatcher: the binary-mode fast path, dead-letter events, reply detection."""

from __future__ import annotations

import base64

import pytest

from knative_lambda.contract.events import EventKind
from knative_lambda.contract.factory import new_event
from knative_lambda.platform.broker.dispatcher import (
    Attempt,
    binary_parts,
    dead_letter_event,
    is_cloudevent_reply,
    reply_ttl,
)


@pytest.mark.parametrize(
    ("headers", "ctype", "want"),
    [
        ({"ce-id": "1", "ce-source": "s", "ce-type": "t", "ce-specversion": "1.0", "x-other": "y"},
         "application/json",
         ({"id": "1", "source": "s", "type": "t", "specversion": "1.0", "datacontenttype": "application/json"},
          {"ce-id": "1", "ce-source": "s", "ce-type": "t", "ce-specversion": "1.0",
           "content-type": "application/json"})),
        ({"ce-id": b"1", "ce-source": "a b\"%é", "ce-type": "t", "ce-specversion": "1.0"}, None,
         ({"id": "1", "source": "a b\"%é", "type": "t", "specversion": "1.0"},
          {"ce-id": "1", "ce-source": "a%20b%22%25%C3%A9", "ce-type": "t", "ce-specversion": "1.0"})),
        ({"ce-id": "1", "ce-type": "t", "ce-specversion": "1.0"}, None, None),  # no source
        ({"ce-id": "1", "ce-source": "s", "ce-type": "t", "ce-specversion": "1.0"},
         "application/cloudevents+json", None),  # structured mode
    ],
)
def test_binary_parts(headers, ctype, want):
    assert binary_parts(headers, ctype) == want


def _event():
    return new_event(EventKind.PARSER_START, {"a": 1}, source="network.notifi.acme", subject="p1")


def test_dead_letter_event_carries_the_error_extensions():
    ev = _event()
    dead = dead_letter_event(ev, Attempt(503, b"busy"), "http://127.0.0.1:1/")
    assert dead.get_id() == ev.get_id() and dead.get_data() == {"a": 1}
    assert dead.get_extension("correlationid") == ev.get_extension("correlationid")
    assert dead.get_extension("knativeerrorcode") == "503"
    assert dead.get_extension("knativeerrordest") == "http://127.0.0.1:1/"
    assert base64.b64decode(dead.get_extension("knativeerrordata")) == b"busy"


def test_dead_letter_event_for_a_connection_error_and_a_long_body():
    dead = dead_letter_event(_event(), Attempt(None, error="ClientConnectorError: refused"), "u")
    assert dead.get_extension("knativeerrorcode") == "0"
    assert base64.b64decode(dead.get_extension("knativeerrordata")).startswith(b"ClientConnector")
    dead = dead_letter_event(_event(), Attempt(500, b"x" * 5000), "u")
    assert len(base64.b64decode(dead.get_extension("knativeerrordata"))) == 1024
    dead = dead_letter_event(_event(), Attempt(500), "u")
    assert dead.get_extension("knativeerrordata") is None


@pytest.mark.parametrize(
    ("headers", "body", "want"),
    [
        ({"ce-id": "1"}, b"", True),
        ({"content-type": "application/cloudevents+json"}, b"{}", True),
        ({"content-type": "application/cloudevents+json"}, b"", False),
        ({"content-type": "application/json"}, b"{}", False),
        ({}, b"", False),
    ],
)
def test_is_cloudevent_reply(headers, body, want):
    assert is_cloudevent_reply(headers, body) is want


@pytest.mark.parametrize(("status", "ok"), [(200, True), (202, True), (299, True), (300, False), (None, False), (500, False)])
def test_attempt_ok(status, ok):
    assert Attempt(status).ok is ok


@pytest.mark.parametrize(
    ("incoming", "want"),
    [(None, 254), ("255", 254), ("2", 1), ("1", None), ("0", None), ("-3", None), ("junk", 254)],
)
def test_reply_ttl(incoming, want):
    assert reply_ttl(incoming) == want
