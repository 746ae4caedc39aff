"""Hostile-input runner: send malformed requests, judge the answers, check nothing broke.

The corpus itself is data (``tests/hostile/corpus_*.py``); this module holds the
case types, the senders (HTTP through httpx, raw bytes on a socket for what is
not valid HTTP), the pure verdict on an answer, and the two after-checks every
group ends with: every part healthy, and a valid event published afterwards is
delivered (:class:`Canary`). A future ``kl hostile`` command can drive it as is.
"""

from __future__ import annotations

import json
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from knative_lambda.contract.events import EventKind, event_type
from knative_lambda.contract.factory import new_event
from knative_lambda.harness.tap import EventTap

CANARY_TP = "kl-hostile"


# --- cases and answers ------------------------------------------------------------------


@dataclass(frozen=True)
class HttpCase:
    """One well-formed HTTP request with a hostile content."""

    id: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    method: str = "POST"
    path: str = "/default/default"  # relative to the component's base URL, query included
    status: tuple[int, ...] = (400,)
    expect: tuple[str, ...] = ()  # lowercase substrings the error must contain
    json_error: bool = True  # answer is a JSON object with "error" (False: protocol-level text)
    stream: bool = False  # send the body chunked, without Content-Length
    bug: str = ""  # a known platform defect this case shows (tests: strict xfail)


@dataclass(frozen=True)
class RawCase:
    """Bytes on a fresh connection that are not valid HTTP; ``status`` None = may just close."""

    id: str
    data: bytes
    status: tuple[int, ...] | None = (400,)
    expect: tuple[str, ...] = ()
    bug: str = ""


@dataclass(frozen=True)
class Answer:
    status: int | None  # None: the connection closed without an answer
    content_type: str = ""
    text: str = ""

    def json(self) -> Any:
        try:
            return json.loads(self.text)
        except ValueError:
            return None


def error_text(answer: Answer) -> str:
    """Everything an answer says about the problem, lowercased (JSON error + problems, or text)."""
    body = answer.json()
    if isinstance(body, dict):
        return " ".join([str(body.get("error", "")), json.dumps(body.get("problems", []))]).lower()
    return answer.text.lower()


def verdict(case: HttpCase | RawCase, answer: Answer) -> list[str]:
    """Why ``answer`` is not an acceptable reply to ``case`` (empty = acceptable). Pure."""
    problems: list[str] = []
    if answer.status is None:
        if case.status is not None:
            problems.append(f"no answer, expected HTTP {'/'.join(map(str, case.status))}")
        return problems
    if answer.status >= 500:
        problems.append(f"server error HTTP {answer.status}: {answer.text[:200]!r}")
    elif case.status is not None and answer.status not in case.status:
        problems.append(f"HTTP {answer.status}, expected {'/'.join(map(str, case.status))}: "
                        f"{answer.text[:200]!r}")
    if isinstance(case, HttpCase) and case.json_error:
        body = answer.json()
        if "json" not in answer.content_type or not isinstance(body, dict) or not body.get("error"):
            problems.append(f"answer is not a JSON error object ({answer.content_type or 'no type'}): "
                            f"{answer.text[:120]!r}")
    said = error_text(answer)
    problems += [f"error does not name {word!r}: {said[:200]!r}" for word in case.expect if word not in said]
    if "traceback" in answer.text.lower():
        problems.append("answer contains a traceback")
    return problems


# --- senders ------------------------------------------------------------------------------


def _pieces(body: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


def send_http(client: httpx.Client, base_url: str, case: HttpCase, timeout: float = 30.0) -> Answer:
    content: Any = _pieces(case.body) if case.stream else case.body
    try:
        response = client.request(case.method, base_url.rstrip("/") + case.path, headers=list(case.headers),
                                  content=content, timeout=timeout)
    except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError):
        return Answer(None)  # the server closed the connection: no answer, no crash
    return Answer(response.status_code, response.headers.get("content-type", ""),
                  response.content.decode("utf-8", "replace"))


def send_raw(base_url: str, data: bytes, *, half_close: bool = False, timeout: float = 5.0) -> Answer:
    """Write ``data`` (then half-close: "no more is coming") and read one response, or none.

    aiohttp drops a half-closed connection without answering, so half-close only
    to tell the server that a cut-off request will not be completed.
    """
    parts = urlsplit(base_url)
    received = b""
    with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=timeout) as sock:
        try:
            sock.sendall(data)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and not _complete(received):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                received += chunk
        except (ConnectionError, TimeoutError):
            pass
    return _parse_response(received)


def _complete(raw: bytes) -> bool:
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            try:
                return len(body) >= int(value.strip())
            except ValueError:
                return True
    return False  # no length: read until the server closes


def _parse_response(raw: bytes) -> Answer:
    if not raw.startswith(b"HTTP/"):
        return Answer(None, text=raw.decode("latin-1"))
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    try:
        status = int(lines[0].split()[1])
    except (IndexError, ValueError):
        return Answer(None, text=raw.decode("latin-1"))
    content_type = next((line.split(":", 1)[1].strip() for line in lines[1:]
                         if line.lower().startswith("content-type:")), "")
    return Answer(status, content_type, body.decode("utf-8", "replace"))


# --- after-checks ---------------------------------------------------------------------------


def unhealthy_parts(target: Any) -> dict[str, str]:
    """Parts of ``target`` that do not answer ``/healthz`` (services included where known)."""
    report = dict(target.health())
    builder_url = getattr(target.settings, "builder_url", "")
    if builder_url and "builder" not in report:
        try:
            response = httpx.get(builder_url.rstrip("/") + "/healthz", timeout=5)
            report["builder"] = (response.is_success, f"HTTP {response.status_code}")
        except httpx.HTTPError as exc:
            report["builder"] = (False, type(exc).__name__)
    return {name: detail for name, (ok, detail) in report.items() if not ok}


class Canary:
    """Valid events published between hostile ones; all of them must arrive at a tap."""

    def __init__(self, target: Any, *, publish_timeout: float = 15.0) -> None:
        self.target = target
        self.prefix = target.settings.event_prefix
        self.publish_timeout = publish_timeout
        self.sent: list[str] = []
        self.tap = EventTap(
            target.settings.broker_url,
            [{"exact": {"type": event_type(EventKind.PARSER_START, self.prefix),
                        "source": f"network.notifi.{CANARY_TP}"}}],
            token=target.settings.token, namespace=target.settings.namespace,
        )

    def __enter__(self) -> Canary:
        self.tap.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.tap.stop()

    def publish(self) -> str:
        """Publish one canary; a 503 (RabbitMQ reconnecting) is retried as a client would."""
        event = new_event(EventKind.PARSER_START, {"canary": len(self.sent)},
                          source=f"network.notifi.{CANARY_TP}", subject="canary", prefix=self.prefix,
                          extensions={"thirdpartyid": CANARY_TP, "parserid": "canary"})
        deadline = time.monotonic() + self.publish_timeout
        status = 0
        while time.monotonic() < deadline:
            try:
                status = self.target.publish(event)
            except httpx.HTTPError:
                status = 0
            if status == 202:
                self.sent.append(str(event.get_id()))
                return str(event.get_id())
            time.sleep(0.2)
        raise AssertionError(f"canary not accepted within {self.publish_timeout:g}s (last HTTP {status})")

    def wait_all(self, timeout: float = 20.0) -> list[str]:
        """Ids of canaries not delivered within ``timeout`` (empty = none lost)."""
        deadline = time.monotonic() + timeout
        while True:
            got = {str(e.get_id()) for e in self.tap.events}
            missing = [i for i in self.sent if i not in got]
            if not missing or time.monotonic() > deadline:
                return missing
            time.sleep(0.05)


def new_id() -> str:
    return uuid.uuid4().hex[:8]
