"""The gateway's front server (platform/front.py) on a real gateway process, spoken to over raw sockets:
framing, pipelining, limits, malformed input, disconnects, and the management API behind it."""

from __future__ import annotations

import gzip
import json
import signal
import socket
import threading
import time

import httpx
import psutil
import pytest

from tests.conftest import Conn

from .conftest import HELLO_HANDLER, SLOW_HANDLER, TOKEN, make_artifact

ONE = {"autoscaling.knative.dev/min-scale": "1", "autoscaling.knative.dev/max-scale": "1"}


def post(path: str, body: bytes, extra: str = "", version: str = "1.1") -> bytes:
    return (f"POST {path} HTTP/{version}\r\nHost: t\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n{extra}\r\n").encode() + body


@pytest.fixture(scope="module")
def hello(gateway, tmp_path_factory) -> str:
    art = make_artifact(tmp_path_factory.mktemp("front-art"), "front-hello", HELLO_HANDLER)
    gateway.deploy("front-hello", art, annotations=ONE)
    gateway.wait_for(lambda: gateway.service("front-hello")["ready"], what="front-hello ready")
    return "/default/front-hello/"


def entries(body: bytes) -> list:
    return json.loads(body)["eventEntries"]


def test_pipelined_requests_are_answered_in_order_on_one_connection(gateway, hello) -> None:
    c = Conn(gateway.port)
    c.send(post(hello, b'{"n": 1}') + b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"
           + post(hello, b'{"n": 2}') + b"GET /nowhere HTTP/1.1\r\nHost: t\r\n\r\n" + post(hello, b'{"n": 3}'))
    answers = [c.response() for _ in range(5)]
    assert [a[0] for a in answers] == ["HTTP/1.1 200 OK"] * 2 + ["HTTP/1.1 200 OK", "HTTP/1.1 404 Not Found",
                                                                  "HTTP/1.1 200 OK"]
    assert entries(answers[0][2]) == [{"hello": {"n": 1}}]
    assert json.loads(answers[1][2]) == {"status": "ok"}
    assert entries(answers[2][2]) == [{"hello": {"n": 2}}]
    assert entries(answers[4][2]) == [{"hello": {"n": 3}}]
    # still open: keep-alive
    c.send(post(hello, b'{"n": 4}', "Connection: close\r\n"))
    status, headers, body = c.response()
    assert entries(body) == [{"hello": {"n": 4}}] and headers["connection"] == "close"
    assert c.closed()


def test_more_pipelined_requests_than_the_queue_bound_are_all_answered_in_order(gateway, hello) -> None:
    # past MAX_PIPELINE (32) queued requests the front stops reading, and resumes as it answers
    c = Conn(gateway.port)
    c.send(b"".join(post(hello, b'{"n": %d}' % i) for i in range(100)))
    assert [entries(c.response()[2]) for _ in range(100)] == [[{"hello": {"n": i}}] for i in range(100)]


def test_chunked_request_body(gateway, hello) -> None:
    c = Conn(gateway.port)
    c.send(f"POST {hello} HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n".encode())
    c.send(b"4\r\n{\"n\"\r\n")
    time.sleep(0.05)  # a second TCP segment: the body arrives in pieces
    c.send(b"5\r\n: 42}\r\n0\r\n\r\n")
    status, headers, body = c.response()
    assert status == "HTTP/1.1 200 OK" and entries(body) == [{"hello": {"n": 42}}]
    assert headers["content-length"] == str(len(body)) and "transfer-encoding" not in headers


def test_a_body_over_the_limit_is_a_413_before_it_is_read(gateway, hello) -> None:
    c = Conn(gateway.port)
    c.send(f"POST {hello} HTTP/1.1\r\nHost: t\r\nContent-Length: {32 * 1024 * 1024 + 1}\r\n\r\n".encode())
    status, headers, body = c.response()  # answered without the body ever being sent
    assert status.startswith("HTTP/1.1 413") and headers["content-type"] == "application/json"
    assert "too large" in json.loads(body)["error"] and "33554432" in json.loads(body)["error"]
    assert headers["connection"] == "close" and c.closed()


def test_a_chunked_body_over_the_limit_is_a_413(gateway, hello) -> None:
    c = Conn(gateway.port)
    c.send(f"POST {hello} HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n".encode())
    chunk = b"%x\r\n%s\r\n" % (1024 * 1024, b"x" * 1024 * 1024)
    c.sock.settimeout(0.0)
    sent = 0
    while not c.buf and sent < 40:  # 40 MiB at most; the answer comes once 32 MiB are passed
        try:
            c.sock.sendall(chunk)
            sent += 1
            c._fill()
        except (BlockingIOError, BrokenPipeError, ConnectionResetError):
            time.sleep(0.01)
    c.sock.settimeout(30)
    status, _, body = c.response()
    assert status.startswith("HTTP/1.1 413") and "more than 33554432 bytes" in json.loads(body)["error"]


@pytest.mark.parametrize("garbage", [b"FOO BAR BAZ\r\n\r\n", b"GET / HTTP/1.1\r\nHost t\r\n\r\n",
                                     b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n", b"\x16\x03\x01\x02\x00"])
def test_malformed_requests_get_a_json_400_and_the_connection_closes(gateway, garbage: bytes) -> None:
    c = Conn(gateway.port)
    c.send(garbage)
    status, headers, body = c.response()
    assert status.startswith("HTTP/1.1 400") and headers["content-type"] == "application/json"
    assert json.loads(body)["error"].startswith("bad request: ")
    assert c.closed()
    assert httpx.get(f"{gateway.url}/healthz").status_code == 200  # the gateway is fine


def test_http_1_0_gets_an_http_1_0_answer_and_a_close(gateway, hello) -> None:
    c = Conn(gateway.port)
    c.send(post(hello, b'{"n": 10}', version="1.0").replace(b"Host: t\r\n", b""))
    status, _, body = c.response()
    assert status == "HTTP/1.0 200 OK" and entries(body) == [{"hello": {"n": 10}}]
    assert c.closed()


def test_head_has_the_get_headers_and_no_body(gateway) -> None:
    c = Conn(gateway.port)
    c.send(b"HEAD /healthz HTTP/1.1\r\nHost: t\r\n\r\nGET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
    status, headers, body = c.response(head=True)
    assert status == "HTTP/1.1 200 OK" and body == b""
    assert headers["content-length"] == str(len(b'{"status": "ok"}'))
    # the next answer starts right after the head: no body bytes were sent for the HEAD
    status, get_headers, body = c.response()
    assert (status, body) == ("HTTP/1.1 200 OK", b'{"status": "ok"}')
    assert get_headers["content-length"] == headers["content-length"]


def test_expect_100_continue(gateway, hello) -> None:
    c = Conn(gateway.port)
    body = b'{"n": 100}'
    c.send(f"POST {hello} HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: {len(body)}\r\n\r\n"
           .encode())
    assert c.response()[0] == "HTTP/1.1 100 Continue"
    c.send(body)
    status, _, answer = c.response()
    assert status == "HTTP/1.1 200 OK" and entries(answer) == [{"hello": {"n": 100}}]


def test_upgrade_is_answered_as_a_plain_request_then_the_connection_closes(gateway) -> None:
    c = Conn(gateway.port)
    c.send(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
    status, headers, body = c.response()
    assert status == "HTTP/1.1 200 OK" and json.loads(body) == {"status": "ok"}
    assert headers["connection"] == "close" and c.closed()
    c = Conn(gateway.port)  # a body llhttp would not read: refused, never silently dropped
    c.send(b"POST /default/x/ HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n"
           b"Content-Length: 3\r\n\r\nabc")
    status, _, body = c.response()
    assert status.startswith("HTTP/1.1 400") and "Upgrade" in json.loads(body)["error"]


def test_a_gzip_body_reaches_the_function_decoded(gateway, hello) -> None:
    c = Conn(gateway.port)
    c.send(post(hello, gzip.compress(b'{"n": 7}'), "Content-Encoding: gzip\r\n"))
    status, _, body = c.response()
    assert status == "HTTP/1.1 200 OK" and entries(body) == [{"hello": {"n": 7}}]


def test_management_api_and_errors_behind_the_front(gateway) -> None:
    r = httpx.get(f"{gateway.url}/apis/v1/services")
    assert r.status_code == 401 and r.headers["content-type"].startswith("application/json")
    assert "unauthorized" in r.json()["error"]
    assert httpx.get(f"{gateway.url}/apis/v1/services",
                     headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    r = httpx.get(f"{gateway.url}/no/such-function/x?y=1", headers={"Host": "h.example"})
    assert r.status_code == 404 and r.headers["content-type"] == "application/json"
    assert r.json()["error"].startswith("no function at h.example/no/such-function/x: ")
    m = httpx.get(f"{gateway.url}/metrics")
    assert m.status_code == 200 and "kl_gateway_requests" in m.text and m.headers["content-type"].startswith(
        "text/plain")


def test_a_client_gone_mid_request_gives_its_instance_slot_back(gateway, artifacts) -> None:
    gateway.deploy("front-slow", make_artifact(artifacts, "front-slow", SLOW_HANDLER), container_concurrency=1,
                   annotations=ONE)
    gateway.wait_for(lambda: gateway.service("front-slow")["ready"], what="front-slow ready")
    c = Conn(gateway.port)
    c.send(post("/default/front-slow/", b'{"sleep": 60}'))

    def inflight() -> int:
        return sum(i["inflight"] for i in gateway.instances("front-slow"))

    gateway.wait_for(lambda: inflight() == 1, what="the slow request in flight")
    c.close()
    gateway.wait_for(lambda: inflight() == 0, timeout=10, what="the slot given back")
    # containerConcurrency 1, one instance: this one is served only because the slot is free again
    r = httpx.post(f"{gateway.url}/default/front-slow/", json={"sleep": 0, "n": 1}, timeout=10)
    assert r.status_code == 200 and r.json()["eventEntries"][0]["echo"] == 1


def test_sigterm_lets_the_request_in_flight_finish_then_stops_everything(start_gateway, artifacts) -> None:
    gw = start_gateway()
    gw.deploy("front-stop", make_artifact(artifacts, "front-stop", SLOW_HANDLER), annotations=ONE)
    gw.wait_for(lambda: gw.service("front-stop")["ready"], what="front-stop ready")
    family = psutil.Process(gw.proc.pid).children(recursive=True)
    assert family
    answer: dict[str, httpx.Response] = {}
    worker = threading.Thread(target=lambda: answer.setdefault("r", httpx.post(
        f"{gw.url}/default/front-stop/", json={"sleep": 1.0, "n": 5}, timeout=30)))
    worker.start()
    gw.wait_for(lambda: sum(i["inflight"] for i in gw.instances("front-stop")) == 1, what="request in flight")
    gw.proc.send_signal(signal.SIGTERM)
    worker.join(30)
    assert answer["r"].status_code == 200 and answer["r"].json()["eventEntries"][0]["echo"] == 5
    assert gw.proc.wait(20) == 0
    _, alive = psutil.wait_procs(family, timeout=10)
    assert alive == [], "the gateway's cleanup stops its instances and zygote"
    with pytest.raises(OSError):  # no longer listening
        socket.create_connection(("127.0.0.1", gw.port), timeout=2).close()
