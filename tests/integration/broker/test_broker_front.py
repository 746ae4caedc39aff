"""The broker's ingress on the front server (platform/front.py, issue #3), over raw sockets on a
real broker process: keep-alive, pipelining, limits before the body, malformed input, and what
the front leaves to the aiohttp application (the trigger API, other methods, encoded bodies)."""

from __future__ import annotations

import gzip
import json

from knative_lambda.contract.bindings import to_http
from tests.conftest import Conn

from .conftest import parser_event

LIMIT = 1024 * 1024  # BrokerConfig.max_event_bytes, the broker fixture's


def event_request(path: str = "/default/default", extra: str = "", event=None,
                  version: str = "1.1") -> tuple[bytes, str]:
    """A binary-mode event POST and the event's id."""
    event = event or parser_event()
    headers, body = to_http(event)
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return (f"POST {path} HTTP/{version}\r\nHost: b\r\n{head}Content-Length: {len(body)}\r\n{extra}\r\n"
            ).encode() + body, event.get_id()


def test_pipelined_events_are_accepted_in_order_on_one_connection(broker) -> None:
    c = Conn(broker.port)
    (one, id1), (two, id2) = event_request(), event_request()
    c.send(one + two + b"GET /healthz HTTP/1.1\r\nHost: b\r\n\r\n")
    for want in (id1, id2):
        status, headers, body = c.response()
        assert status == "HTTP/1.1 202 Accepted", body
        assert headers["content-type"] == "application/json; charset=utf-8"
        assert json.loads(body) == {"id": want}
    status, _, body = c.response()
    assert status.startswith("HTTP/1.1 200") and json.loads(body) == {"status": "ok"}
    again, id3 = event_request()  # the connection is still open (keep-alive)
    c.send(again)
    assert json.loads(c.response()[2]) == {"id": id3}
    c.close()


def test_http10_event_is_answered_then_closed(broker) -> None:
    c = Conn(broker.port)
    req, eid = event_request(version="1.0")
    c.send(req)
    status, headers, body = c.response()
    assert status == "HTTP/1.0 202 Accepted" and json.loads(body) == {"id": eid}
    assert c.closed()


def test_body_over_the_limit_gets_413_before_it_is_sent(broker) -> None:
    c = Conn(broker.port)
    c.send(f"POST /default/default HTTP/1.1\r\nHost: b\r\nContent-Type: application/json\r\n"
           f"Ce-Id: 1\r\nContent-Length: {LIMIT + 1}\r\n\r\n".encode())  # no body follows
    status, _, body = c.response()
    assert status.startswith("HTTP/1.1 413")
    assert json.loads(body) == {
        "error": f"event too large: {LIMIT + 1} bytes, limit {LIMIT} bytes",
        "problems": [{"where": "body", "reason": f"larger than {LIMIT} bytes"}],
    }
    assert c.closed()


def test_oversized_chunked_body_gets_413(broker) -> None:
    c = Conn(broker.port)
    chunk = b"x" * 65536
    c.send(b"POST /default/default HTTP/1.1\r\nHost: b\r\nTransfer-Encoding: chunked\r\n\r\n")
    for _ in range(LIMIT // len(chunk) + 1):
        c.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
    status, _, body = c.response()
    assert status.startswith("HTTP/1.1 413")
    assert json.loads(body)["error"] == f"event too large: more, limit {LIMIT} bytes"


def test_unknown_broker_is_404_even_with_a_body_over_the_limit(broker) -> None:
    for length in (10, LIMIT + 1):
        c = Conn(broker.port)
        c.send(f"POST /default/nope HTTP/1.1\r\nHost: b\r\nContent-Length: {length}\r\n\r\n".encode()
               + (b"x" * 10 if length == 10 else b""))
        status, _, body = c.response()
        assert status.startswith("HTTP/1.1 404"), body
        assert "no broker default/nope" in json.loads(body)["error"]
        c.close()


def test_malformed_request_gets_400_json_then_close(broker) -> None:
    c = Conn(broker.port)
    c.send(b"POST /default/default HTTP/1.1\r\nHost: b\r\nContent-Length: nope\r\n\r\n")
    status, headers, body = c.response()
    assert status.startswith("HTTP/1.1 400")
    assert headers["content-type"] == "application/json"
    assert json.loads(body)["error"].startswith("bad request")
    assert c.closed()


def test_invalid_event_gets_every_problem_on_both_paths(broker) -> None:
    """The front's handler and the aiohttp route (a percent-escaped target goes there) answer alike."""
    bad = (b"POST %s HTTP/1.1\r\nHost: b\r\nContent-Type: application/json\r\nCe-Specversion: 1.0\r\n"
           b"Ce-Type: nonsense\r\nContent-Length: 2\r\n\r\n{}")
    answers = []
    for path in (b"/default/default", b"/default/%64efault"):
        c = Conn(broker.port)
        c.send(bad % path)
        status, headers, body = c.response()
        assert status.startswith("HTTP/1.1 400"), body
        assert headers["content-type"] == "application/json; charset=utf-8"
        answers.append(json.loads(body))
        c.close()
    assert answers[0] == answers[1]
    assert {p["where"] for p in answers[0]["problems"]} >= {"attribute id", "attribute source"}


def test_encoded_body_goes_to_the_aiohttp_route_which_decodes_it(broker) -> None:
    event = parser_event(data={"n": 7})
    headers, body = to_http(event)
    packed = gzip.compress(body)
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    c = Conn(broker.port)
    c.send((f"POST /default/default HTTP/1.1\r\nHost: b\r\n{head}Content-Encoding: gzip\r\n"
            f"Content-Length: {len(packed)}\r\n\r\n").encode() + packed)
    status, _, answer = c.response()
    assert status.startswith("HTTP/1.1 202"), answer
    assert json.loads(answer) == {"id": event.get_id()}


def test_other_methods_and_the_trigger_api_reach_the_aiohttp_app(broker) -> None:
    c = Conn(broker.port)
    c.send(b"GET /default/default HTTP/1.1\r\nHost: b\r\n\r\nGET /apis/v1/triggers HTTP/1.1\r\nHost: b\r\n\r\n")
    status, _, body = c.response()
    assert status.startswith("HTTP/1.1 405") and "method not allowed" in json.loads(body)["error"]
    status, _, body = c.response()
    assert status.startswith("HTTP/1.1 200") and "items" in json.loads(body)
    c.close()


def test_ingress_requires_the_token_when_one_is_set(start_broker) -> None:
    bp = start_broker(token="s3cret")
    c = Conn(bp.port)
    plain, _ = event_request()
    big = (f"POST /default/default HTTP/1.1\r\nHost: b\r\nContent-Length: {LIMIT + 1}\r\n\r\n").encode()
    c.send(plain)
    status, _, body = c.response()
    assert status.startswith("HTTP/1.1 401") and "unauthorized" in json.loads(body)["error"]
    authed, eid = event_request(extra="Authorization: Bearer s3cret\r\n")
    c.send(authed + big)
    assert json.loads(c.response()[2]) == {"id": eid}
    status, _, _ = c.response()
    assert status.startswith("HTTP/1.1 401")  # the token is checked before the size, as before
    c.close()


def test_what_aiohttp_refused_is_still_refused_with_a_json_400(broker) -> None:
    """Duplicate singleton headers, an over-long header line, too many headers (front.py's limits)."""
    many = "".join(f"X-H{i}: v\r\n" for i in range(129))
    for extra, want in (("Host: other\r\n", "duplicate 'host' header"),
                        ("User-Agent: a\r\nUser-Agent: b\r\n", "duplicate 'user-agent' header"),
                        (f"X-Big: {'a' * 8200}\r\n", "longer than 8190 bytes"),
                        (many, "too many headers")):
        req, _ = event_request(extra=extra)
        c = Conn(broker.port)
        c.send(req)
        status, _, body = c.response()
        assert status.startswith("HTTP/1.1 400") and want in json.loads(body)["error"], body
        c.close()
