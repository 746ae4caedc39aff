"""The gateway's HTTP/1.1 front server: the data path without aiohttp's server.

Why it exists (issue #5, warm overhead): on the 2-core machine the gateway spent
105-150 us CPU per proxied request, 60-73 us of it in aiohttp's server alone, and
its throughput was ~0.5 of calling the instance directly (goal: >= 0.8, added
p50 <= 0.5 ms). This server parses with httptools (llhttp, as uvicorn does) on a
bare asyncio Protocol and hands a request straight to :meth:`Gateway.handle`.

Everything else -- the management API under ``/apis``, ``/healthz``, ``/readyz``,
``/metrics`` -- goes unchanged (auth, rate limits, JSON errors) to the aiohttp
application, served on a private unix socket and reached through upstream.Pool:
low volume, so that local hop does not matter.

Per connection: keep-alive and pipelining (answers in order), chunked bodies,
HTTP/1.0 and ``Connection: close``, HEAD, ``Expect: 100-continue``, a body limit
(413 before reading past it), malformed requests (400 JSON, then close), flow
control (reading pauses while the client does not read its answers or has many
requests queued), a client gone mid-request cancels its request (the gateway
gives the instance slot back), idle connections closed after ``KEEPALIVE`` s.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from email.utils import formatdate
from http import HTTPStatus
from typing import Any

import httptools

from knative_lambda.platform.serving.gateway import (
    HEAD_DROP,
    HOP_BY_HOP,
    MAX_BODY,
    RESP_DROP,
    Gateway,
    Reply,
    error_reply,
)
from knative_lambda.platform.upstream import Pool

log = logging.getLogger("kl.gateway")

MANAGEMENT_PREFIX = "/apis"  # the management API: /apis and /apis/...
MAX_HEAD = 64 * 1024  # request line + headers
MAX_PIPELINE = 32  # requests queued on one connection before reading pauses
KEEPALIVE = 75.0  # seconds an idle (or stalled) connection is kept, as aiohttp's server did
LINGER = 2.0  # seconds to let a client read an error answer sent before its body was read
MANAGEMENT_TIMEOUT = 300.0
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_METHODS = {m.encode(): m for m in ("GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", "OPTIONS")}
_LINES: dict[tuple[str, int], bytes] = {}
# what the front reads in a header; names as clients usually spell them map to their str at once
_PLAIN, _HOST, _LENGTH, _EXPECT, _CHUNKED = range(5)
_SPECIAL = {"host": _HOST, "content-length": _LENGTH, "expect": _EXPECT, "transfer-encoding": _CHUNKED}
_KNOWN: dict[bytes, tuple[str, int]] = {
    spelled.encode(): (spelled, _SPECIAL.get(spelled.lower(), _PLAIN))
    for name in ("Host", "Content-Length", "Content-Type", "Expect", "Transfer-Encoding", "User-Agent", "Accept",
                 "Accept-Encoding", "Connection", "Authorization", "X-Request-Id", "traceparent", "tracestate",
                 "Ce-Id", "Ce-Source", "Ce-Type", "Ce-Specversion", "ce-correlationid")
    for spelled in (name, name.lower())
}


def _status_line(version: str, status: int) -> bytes:
    line = _LINES.get((version, status))
    if line is None:
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = "Unknown"
        line = _LINES[(version, status)] = f"HTTP/{'1.0' if version == '1.0' else '1.1'} {status} {reason}\r\n".encode()
    return line


class _Reject(Exception):
    """Stops the parser: the request is answered with this error and the connection closed."""


class _Req:
    __slots__ = ("method", "version", "target", "host", "headers", "body", "keep_alive", "reply")

    def __init__(self, method: str, version: str, keep_alive: bool, reply: Reply | None = None) -> None:
        self.method, self.version, self.keep_alive, self.reply = method, version, keep_alive, reply
        self.target = self.host = ""
        self.headers: list[tuple[str, str]] = []
        self.body = b""


class Front:
    """Listens on the gateway's port; see the module docstring."""

    def __init__(self, gateway: Gateway, management: str, open_paths: frozenset[str] = frozenset(),
                 max_body: int = MAX_BODY) -> None:
        self.gateway = gateway
        self.management = management  # the aiohttp app's unix socket
        # GET/HEAD paths of the aiohttp app besides /apis (/healthz, /metrics): they win over routing
        self.open_paths = open_paths
        self.max_body = max_body
        self.pool = Pool()
        self.conns: set[_Conn] = set()
        self.closing = False
        self._server: asyncio.AbstractServer | None = None
        self._sweeper: asyncio.Task | None = None
        self._second = 0
        self._date = b""
        self.loop: asyncio.AbstractEventLoop | None = None

    async def start(self, host: str, port: int, backlog: int = 4096) -> None:
        loop = self.loop = asyncio.get_running_loop()  # kept: get_running_loop costs a getpid() on 3.11
        self._server = await loop.create_server(
            lambda: _Conn(self), host, port, backlog=backlog, reuse_address=True
        )
        self._sweeper = loop.create_task(self._sweep())

    async def stop(self, grace: float = 10.0) -> None:
        """Stop accepting; answer what is in flight (at most ``grace`` s), then close every connection."""
        self.closing = True
        if self._server is not None:
            self._server.close()
        if self._sweeper is not None:
            self._sweeper.cancel()
        for conn in list(self.conns):
            conn.shutdown()
        deadline = time.monotonic() + grace
        while self.conns and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        for conn in list(self.conns):  # past the bound: cancelled requests give their slots back
            conn.abort()
        await asyncio.sleep(0)
        self.pool.close()

    def date(self) -> bytes:
        """``Date`` and ``Server`` header lines, formatted once a second."""
        now = int(time.time())
        if now != self._second:
            self._second = now
            self._date = f"Date: {formatdate(now, usegmt=True)}\r\nServer: kl-gateway\r\n".encode()
        return self._date

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(KEEPALIVE / 5)
            cutoff = time.monotonic() - KEEPALIVE
            for conn in list(self.conns):
                if conn.task is None and conn.last < cutoff and conn.transport is not None:
                    conn.transport.close()

    async def management_call(self, req: _Req) -> Reply:
        """A request for the aiohttp application, over the private unix socket."""
        headers = [(k, v) for k, v in req.headers if k.lower() not in HOP_BY_HOP]
        try:
            status, rheaders, body = await self.pool.request(
                self.management, req.method, req.target, headers, req.body, MANAGEMENT_TIMEOUT,
                host=req.host or None,
            )
        except (OSError, TimeoutError, ValueError) as exc:
            log.warning("management API unreachable on %s: %s", self.management, exc)
            return error_reply(502, f"gateway management API unreachable: {exc or type(exc).__name__}")
        drop = RESP_DROP if req.method != "HEAD" else HEAD_DROP
        return status, [(k, v) for k, v in rheaders if k.lower() not in drop], body


class _Conn(asyncio.Protocol):
    """One client connection: httptools callbacks queue requests; one task answers them in order."""

    def __init__(self, front: Front) -> None:
        self.front = front
        self.gateway = front.gateway
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.queue: deque[_Req] = deque()  # complete requests, the first one being answered
        self.task: asyncio.Task | None = None
        self.last = time.monotonic()
        self.reading = True
        self.write_paused = False
        self.broken = False  # parsing stopped: the rest of the input is discarded
        self.closing = False  # close after the answer in progress
        self.continue_due = False  # a 100 Continue to send once the answers before it are out
        self.reject: tuple[int, str] | None = None
        self.complete = True  # no request half-parsed
        self.declared_body = False  # the request being parsed has Content-Length > 0 or Transfer-Encoding
        # the request being parsed
        self.url = b""
        self.headers: list[tuple[str, str]] = []
        self.host = ""
        self.length = 0
        self.expect: str | None = None
        self.chunks: list[bytes] = []
        self.size = 0
        self.head = 0

    # --- asyncio.Protocol ------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.front.conns.add(self)
        if self.front.closing:
            transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.front.conns.discard(self)
        self.transport = None
        self.queue.clear()
        if self.task is not None:  # the client is gone: stop proxying, the slot is given back
            self.task.cancel()

    def data_received(self, data: bytes) -> None:
        self.last = time.monotonic()
        if self.broken:
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # Upgrade (websocket, h2c) or CONNECT: no protocol switch here. A complete request is
            # answered as a plain one (on_message_complete) and the connection closes after it;
            # llhttp stops at the headers, so the input after them is not parsed
            if not self.complete:
                self._fail(405, f"{self.parser.get_method().decode('latin-1')} is not supported here")
            else:
                self.broken = True
                self._flow()
        except httptools.HttpParserError as exc:
            if self.reject is not None:
                self._fail(*self.reject)
            else:
                detail = " ".join(str(exc).split()) or type(exc).__name__
                self._fail(400, f"bad request: {detail}")

    def pause_writing(self) -> None:
        self.write_paused = True
        self._flow()

    def resume_writing(self) -> None:
        self.write_paused = False
        self._flow()

    def _flow(self) -> None:
        """Read while the client reads its answers and has few requests queued (or while
        discarding the rest of an input that will not be parsed)."""
        want = self.broken or (not self.write_paused and len(self.queue) <= MAX_PIPELINE)
        if want != self.reading and self.transport is not None:
            self.reading = want
            if want:
                self.transport.resume_reading()
            else:
                self.transport.pause_reading()

    def shutdown(self) -> None:
        """Graceful stop: close when idle; a connection with an answer in progress closes after it."""
        self.closing = True
        if self.task is None and self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        if self.task is not None:
            self.task.cancel()
        if self.transport is not None:
            self.transport.abort()

    # --- httptools callbacks ------------------------------------------------------

    def on_message_begin(self) -> None:
        self.complete = False
        self.declared_body = False
        self.url = b""
        self.headers = []
        self.host = ""
        self.length = 0
        self.expect = None
        self.chunks = []
        self.size = 0
        self.head = 0

    def on_url(self, url: bytes) -> None:
        self.url += url
        self.head += len(url)
        if self.head > MAX_HEAD:
            self._stop(414, f"request target longer than {MAX_HEAD} bytes")

    def on_header(self, name: bytes, value: bytes) -> None:
        self.head += len(name) + len(value) + 4
        if self.head > MAX_HEAD:
            self._stop(431, f"request headers larger than {MAX_HEAD} bytes")
        known = _KNOWN.get(name)
        if known is None:
            k = name.decode("latin-1")
            kind = _SPECIAL.get(k.lower(), _PLAIN)
        else:
            k, kind = known
        v = value.decode("utf-8", "surrogateescape")
        self.headers.append((k, v))
        if kind:
            if kind == _HOST:
                self.host = self.host or v
            elif kind == _LENGTH:
                self.length = int(v)  # llhttp has checked it is a number
                self.declared_body = self.length > 0
            elif kind == _EXPECT:
                self.expect = v.strip().lower()
            else:
                self.declared_body = True

    def on_headers_complete(self) -> None:
        if self.length > self.front.max_body:
            self._stop(413, f"request body too large: {self.length} bytes, limit {self.front.max_body} "
                            f"bytes ({self.front.max_body // (1024 * 1024)} MiB)")
        expect = self.expect
        if expect is not None:
            if expect != "100-continue":
                self._stop(417, f"expectation not supported: {expect!r}")
            elif self.queue or self.task is not None:
                self.continue_due = True
            elif self.transport is not None:
                self.transport.write(CONTINUE)

    def on_body(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.front.max_body:
            self._stop(413, f"request body too large: more than {self.front.max_body} bytes "
                            f"({self.front.max_body // (1024 * 1024)} MiB)")
        self.chunks.append(chunk)

    def on_message_complete(self) -> None:
        self.complete = True
        self.continue_due = False  # the body came without it
        parser = self.parser
        method = parser.get_method()
        req = _Req(_METHODS.get(method) or method.decode("latin-1"), parser.get_http_version(),
                   parser.should_keep_alive())
        if parser.should_upgrade():  # see data_received: the last request on this connection
            req.keep_alive = False
            if self.declared_body:  # llhttp does not read the body of an Upgrade request
                req.reply = error_reply(400, "a request with Upgrade and a body is not supported: "
                                             "send it without the Upgrade header")
        req.target = self.url.decode("utf-8", "surrogateescape")
        req.headers = self.headers
        req.host = self.host
        chunks = self.chunks
        req.body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        self._queue(req)

    # --- answering ------------------------------------------------------------------

    def _stop(self, status: int, message: str) -> None:
        self.reject = (status, message)
        raise _Reject(message)

    def _fail(self, status: int, message: str) -> None:
        """Answer ``status`` after the requests before it, then close; the rest of the input is not parsed."""
        self.broken = True
        self.continue_due = False
        self._queue(_Req("", "1.1", False, error_reply(status, message)))
        self._flow()

    def _queue(self, req: _Req) -> None:
        self.queue.append(req)
        if self.task is None:
            self.task = self.front.loop.create_task(self._run())  # type: ignore[union-attr]
        elif len(self.queue) > MAX_PIPELINE:
            self._flow()

    async def _run(self) -> None:
        try:
            queue = self.queue
            while queue:
                req = queue[0]
                reply = req.reply
                if reply is None:
                    try:
                        reply = await self._answer(req)
                    except asyncio.CancelledError:
                        raise
                    except Exception:  # a bug must cost one 500, never the connection's other requests
                        log.exception("gateway: unexpected error answering %s %s", req.method, req.target[:200])
                        reply = error_reply(500, "gateway: internal error (see the gateway log)")
                if self.transport is None:
                    return
                queue.popleft()
                keep = req.keep_alive and not self.closing
                self._write(req, reply, keep)
                if not keep:
                    self._close()
                    return
                if not self.reading:
                    self._flow()
            if self.continue_due and self.transport is not None:
                self.continue_due = False
                self.transport.write(CONTINUE)
        finally:
            self.task = None

    def _answer(self, req: _Req) -> Any:
        target = req.target
        q = target.find("?")
        path = target if q < 0 else target[:q]
        if path.startswith(MANAGEMENT_PREFIX) and (len(path) == 5 or path[5] == "/") or (
            path in self.front.open_paths and req.method in ("GET", "HEAD")
        ):
            return self.front.management_call(req)
        return self.gateway.handle(req.method, req.host, target, req.headers, req.body)

    def _write(self, req: _Req, reply: Reply, keep: bool) -> None:
        status, headers, body = reply
        head = "".join([f"{k}: {v}\r\n" for k, v in headers]).encode("latin-1", "replace")
        if keep:
            conn = b"Connection: keep-alive\r\n" if req.version == "1.0" else b""
        else:
            conn = b"Connection: close\r\n"
        if status < 200 or status in (204, 304):
            length = b""
        elif req.method == "HEAD" and any(k.lower() == "content-length" for k, _ in headers):
            length = b""  # the length of the body a GET would get, passed on
        else:
            length = b"Content-Length: %d\r\n" % len(body)
        data = b"".join((_status_line(req.version, status), head, length, self.front.date(), conn, b"\r\n"))
        transport = self.transport
        if req.method == "HEAD" or not body or status < 200 or status in (204, 304):
            transport.write(data)  # type: ignore[union-attr]
        elif len(body) < 65536:
            transport.write(data + body)  # type: ignore[union-attr]
        else:  # no copy of a large body
            transport.writelines((data, body))  # type: ignore[union-attr]

    def _close(self) -> None:
        transport = self.transport
        if transport is None:
            return
        if self.broken and transport.can_write_eof():
            # the client may still be sending what we did not read: closing now could reset the
            # connection before it reads the answer; end our side, discard its input for a while
            transport.write_eof()
            asyncio.get_running_loop().call_later(LINGER, transport.close)
        else:
            transport.close()
