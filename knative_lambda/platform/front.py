"""The lean HTTP/1.1 front server of the gateway and the broker: their data paths without aiohttp's server.

Why it exists (issue #5, warm overhead; issue #3, broker CPU per event): aiohttp's
server cost the gateway 60-73 us CPU per proxied request and the broker ~13% of
its CPU per event. This server parses with httptools (llhttp, as uvicorn does) on
a bare asyncio Protocol and hands a data-path request straight to its handler:
``handler_for(method, path)`` picks one (the gateway's ``Gateway.handle``, the
broker's ingress), or None.

Everything else (None) -- a management API under ``/apis``, ``/healthz``,
``/readyz``, ``/metrics`` -- goes unchanged (auth, rate limits, JSON errors) to
the process's aiohttp application, served on a private unix socket
(:func:`management_socket`) and reached through upstream.Pool: low volume, so
that local hop does not matter. :func:`serve` runs both until SIGTERM/SIGINT.

Per connection: keep-alive and pipelining (answers in order), chunked bodies,
HTTP/1.0 and ``Connection: close``, HEAD, ``Expect: 100-continue``, a body limit
(413 before reading past it), malformed requests (400 JSON, then close), flow
control (reading pauses while the client does not read its answers or has many
requests queued), a client gone mid-request cancels its request (the gateway
gives the instance slot back), idle connections closed after ``KEEPALIVE`` s.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import tempfile
import time
from collections import deque
from collections.abc import Awaitable, Callable
from email.utils import formatdate
from http import HTTPStatus
from pathlib import Path
from typing import Any

import httptools
from aiohttp import web

from knative_lambda.platform.http import add_standard_routes, use_json_errors
from knative_lambda.platform.upstream import Pool

HOP_BY_HOP = frozenset(
    h.lower()
    for h in (
        "Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "TE", "Trailer",
        "Transfer-Encoding", "Upgrade", "Host", "Content-Length",
    )
)
RESP_DROP = HOP_BY_HOP | {"date", "server"}
HEAD_DROP = RESP_DROP - {"content-length"}  # a HEAD answer's length is the one of the body it has not
JSON = "application/json"
Reply = tuple[int, list[tuple[str, str]], bytes]  # status, headers (hop-by-hop dropped), body
# a data-path handler: (method, host, target, headers, body) -> its answer
Handler = Callable[[str, str, str, list[tuple[str, str]], bytes], Awaitable[Reply]]
HandlerFor = Callable[[str, str], "Handler | None"]  # (method, path) -> its handler, None: the aiohttp app
# (method, target, headers, declared length or None when chunked) -> the answer to a body over the limit
TooLarge = Callable[[str, str, list[tuple[str, str]], "int | None"], Reply]


def error_reply(status: int, message: str, **extra: Any) -> Reply:
    return status, [("Content-Type", JSON)], json.dumps({"error": message, **extra}).encode()


def too_large(max_body: int) -> TooLarge:
    """The default answer to a body over ``max_body``."""

    def reply(method: str, target: str, headers: list[tuple[str, str]], size: int | None) -> Reply:
        limit = f"{max_body} bytes ({max_body // (1024 * 1024)} MiB)"
        if size is None:  # chunked: past the limit while reading
            return error_reply(413, f"request body too large: more than {limit}")
        return error_reply(413, f"request body too large: {size} bytes, limit {limit}")

    return reply


MAX_HEAD = 64 * 1024  # request line + headers
# as aiohttp's parser, which served these ports before: a request line or one header's name and
# value at most 8190 bytes, at most 128 headers, and no second value for a header that has one
MAX_LINE = 8190
MAX_HEADERS = 128
_SINGLETONS = frozenset(("content-length", "content-location", "content-range", "content-type", "etag",
                         "host", "max-forwards", "server", "transfer-encoding", "user-agent"))
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
_KNOWN: dict[bytes, tuple[str, int, str]] = {
    spelled.encode(): (spelled, _SPECIAL.get(spelled.lower(), _PLAIN), spelled.lower())
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
    """Listens on a process's port; see the module docstring. ``name`` (gateway, broker) is in the
    ``Server`` header, the log and error messages."""

    def __init__(self, handler_for: HandlerFor, management: str, max_body: int, name: str = "gateway",
                 oversize: TooLarge | None = None) -> None:
        self.handler_for = handler_for
        self.management = management  # the aiohttp app's unix socket
        self.max_body = max_body
        self.oversize = oversize or too_large(max_body)
        self.name = name
        self.log = logging.getLogger(f"kl.{name}")
        self.pool = Pool()
        self.conns: set[_Conn] = set()
        self.closing = False
        self._server: asyncio.AbstractServer | None = None
        self._sweeper: asyncio.Task | None = None
        self._second = 0
        self._date = b""
        self.loop: asyncio.AbstractEventLoop | None = None

    async def start(self, host: str, port: int, backlog: int = 4096, reuse_port: bool = False) -> None:
        """Listen; ``reuse_port``: beside other processes on the same port (the kernel spreads connections)."""
        loop = self.loop = asyncio.get_running_loop()  # kept: get_running_loop costs a getpid() on 3.11
        self._server = await loop.create_server(
            lambda: _Conn(self), host, port, backlog=backlog, reuse_address=True, reuse_port=reuse_port or None
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
            self._date = f"Date: {formatdate(now, usegmt=True)}\r\nServer: kl-{self.name}\r\n".encode()
        return self._date

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(KEEPALIVE / 5)
            cutoff = time.monotonic() - KEEPALIVE
            for conn in list(self.conns):
                if conn.task is None and conn.last < cutoff and conn.transport is not None:
                    conn.transport.close()

    async def forward(self, method: str, host: str, target: str, headers: list[tuple[str, str]],
                      body: bytes) -> Reply:
        """A request for the aiohttp application, over the private unix socket (a :data:`Handler`)."""
        headers = [(k, v) for k, v in headers if k.lower() not in HOP_BY_HOP]
        try:
            status, rheaders, body = await self.pool.request(
                self.management, method, target, headers, body, MANAGEMENT_TIMEOUT, host=host or None,
            )
        except (OSError, TimeoutError, ValueError) as exc:
            self.log.warning("management API unreachable on %s: %s", self.management, exc)
            return error_reply(502, f"{self.name} management API unreachable: {exc or type(exc).__name__}")
        drop = RESP_DROP if method != "HEAD" else HEAD_DROP
        return status, [(k, v) for k, v in rheaders if k.lower() not in drop], body


class _Conn(asyncio.Protocol):
    """One client connection: httptools callbacks queue requests; one task answers them in order."""

    def __init__(self, front: Front) -> None:
        self.front = front
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
        self.reject: Reply | None = None
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
        self.singletons: set[str] = set()  # of _SINGLETONS, seen in this request

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
                self._fail_with(self.reject)
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
        self.singletons = set()

    def on_url(self, url: bytes) -> None:
        self.url += url
        self.head += len(url)
        if len(self.url) > MAX_LINE:
            self._stop(400, f"bad request: request target longer than {MAX_LINE} bytes")

    def on_header(self, name: bytes, value: bytes) -> None:
        self.head += len(name) + len(value) + 4
        if self.head > MAX_HEAD:
            self._stop(431, f"request headers larger than {MAX_HEAD} bytes")
        if len(name) + len(value) > MAX_LINE:
            self._stop(400, f"bad request: header {name.decode('latin-1')[:100]!r} longer than {MAX_LINE} bytes")
        if len(self.headers) >= MAX_HEADERS:
            self._stop(400, f"bad request: too many headers (more than {MAX_HEADERS})")
        known = _KNOWN.get(name)
        if known is None:
            k = name.decode("latin-1")
            lk = k.lower()
            kind = _SPECIAL.get(lk, _PLAIN)
        else:
            k, kind, lk = known
        if lk in _SINGLETONS:
            if lk in self.singletons:
                self._stop(400, f"bad request: duplicate {lk!r} header")
            self.singletons.add(lk)
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
            self._too_large(self.length)
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
            self._too_large(None)
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
        self._stop_with(error_reply(status, message))

    def _stop_with(self, reply: Reply) -> None:
        self.reject = reply
        raise _Reject(reply[0])

    def _too_large(self, size: int | None) -> None:
        method = self.parser.get_method()
        self._stop_with(self.front.oversize(_METHODS.get(method) or method.decode("latin-1"),
                                            self.url.decode("utf-8", "surrogateescape"), self.headers, size))

    def _fail(self, status: int, message: str) -> None:
        self._fail_with(error_reply(status, message))

    def _fail_with(self, reply: Reply) -> None:
        """Answer ``reply`` after the requests before it, then close; the rest of the input is not parsed."""
        self.broken = True
        self.continue_due = False
        self._queue(_Req("", "1.1", False, reply))
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
                        name = self.front.name
                        self.front.log.exception("%s: unexpected error answering %s %s", name, req.method,
                                                 req.target[:200])
                        reply = error_reply(500, f"{name}: internal error (see the {name} log)")
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

    def _answer(self, req: _Req) -> Awaitable[Reply]:
        target = req.target
        q = target.find("?")
        handler = self.front.handler_for(req.method, target if q < 0 else target[:q]) or self.front.forward
        return handler(req.method, req.host, target, req.headers, req.body)

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


SHUTDOWN_GRACE = 10.0  # seconds in-flight requests get to finish on SIGTERM/SIGINT


def management_socket(data_dir: Path, name: str) -> Path:
    """Where process ``name``'s aiohttp application listens: a 0700 directory of its own
    (a temporary one when the data dir's path is too long for a unix socket)."""
    run = Path(data_dir).resolve() / name / "run"
    if len(str(run / "api.sock")) > 100:  # sun_path holds 108 bytes
        run = Path(tempfile.mkdtemp(prefix=f"kl-{name}-"))
    run.mkdir(parents=True, exist_ok=True)
    run.chmod(0o700)
    sock = run / "api.sock"
    sock.unlink(missing_ok=True)  # left by a process that was killed
    return sock


def open_paths(app: web.Application) -> frozenset[str]:
    """The fixed paths of ``app`` outside ``/apis`` (``/healthz``, ``/metrics``, ...)."""
    return frozenset(
        r.resource.canonical for r in app.router.routes()
        if isinstance(r.resource, web.PlainResource) and not r.resource.canonical.startswith("/apis")
    )


# Starts other processes that serve the port, given the app's socket; returns their stop(grace).
Delegate = Callable[[Path], Awaitable[Callable[[float], Awaitable[None]]]]


async def serve(app: web.Application, name: str, port: int, data_dir: Path, max_body: int,
                routes: Callable[[Front], HandlerFor], oversize: TooLarge | None = None,
                host: str = "127.0.0.1", grace: float = SHUTDOWN_GRACE, delegate: Delegate | None = None) -> None:
    """``app`` on its unix socket, the front on ``port`` (``routes(front)`` is its ``handler_for``),
    until SIGTERM/SIGINT; then stop accepting, let in-flight requests finish (at most ``grace`` s),
    and clean ``app`` up (its on_cleanup / cleanup_ctx: the process's own shutdown).

    With ``delegate``, other processes serve the port instead (the broker's ingress workers):
    they are started once the app listens and stopped before it is cleaned up."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    add_standard_routes(app)
    use_json_errors(app)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()  # on_startup / cleanup_ctx: the process starts
    sock = management_socket(data_dir, name)
    try:
        await web.UnixSite(runner, str(sock)).start()
        if delegate is None:
            front = Front(lambda method, path: None, str(sock), max_body, name, oversize)
            front.handler_for = routes(front)
            await front.start(host, port)
            stop_serving = front.stop
        else:
            stop_serving = await delegate(sock)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await stop_serving(grace)
    finally:
        await runner.cleanup()
        sock.unlink(missing_ok=True)
