"""A lean HTTP/1.1 client with keep-alive pools per address: gateway -> instance, broker -> subscriber.

An address is a TCP port on 127.0.0.1 (``int``), a unix socket path (``str``) or
a ``(host, port)`` pair. Plain HTTP only: TLS stays with aiohttp.

The gateway and the broker's dispatcher need far less than a general client:
write one request, read one response framed by Content-Length (or chunked, or
the close), keep the connection. Doing it on a bare asyncio Protocol costs a
fraction of aiohttp's ClientSession per request, and the CPU per request is
what bounds their throughput on a small machine.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from urllib.parse import urlsplit

Address = int | str | tuple[str, int]
MAX_HEAD = 65536  # bytes of status line + headers; more is not an HTTP server we talk to
IDLE_SECONDS = 15.0  # an idle connection older than this is closed, not reused (servers drop them)


class UpstreamError(ConnectionError):
    """The server closed or reset the connection before a full response, or sent garbage."""


class _Conn(asyncio.Protocol):
    __slots__ = ("transport", "buf", "waiter", "closed", "head", "length", "chunked", "keep_alive",
                 "no_body", "idle_since")

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.waiter: asyncio.Future | None = None
        self.closed = False
        self.head: tuple[int, list[tuple[str, str]]] | None = None
        self.length = -1
        self.chunked = False
        self.keep_alive = True
        self.no_body = False  # a HEAD request: the response has headers only
        self.idle_since = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        w = self.waiter
        if w is not None and not w.done():
            if self.head is not None and self.length < 0 and not self.chunked:
                self._finish(bytes(self.buf))  # body delimited by close
            else:
                w.set_exception(UpstreamError(f"server closed the connection: {exc or 'EOF'}"))

    def data_received(self, data: bytes) -> None:
        if self.waiter is None:  # bytes nobody asked for: the connection is out of step
            self._fail("unexpected data from the server")
            return
        self.buf += data
        try:
            self._parse()
        except (ValueError, IndexError) as exc:  # a bad length or chunk size
            self._fail(f"malformed response: {exc}")

    def _fail(self, reason: str) -> None:
        self.closed = True
        w = self.waiter
        if w is not None and not w.done():
            w.set_exception(UpstreamError(reason))
        if self.transport is not None:
            self.transport.close()

    def _parse(self) -> None:
        buf = self.buf
        while self.head is None:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > MAX_HEAD:
                    self._fail(f"response head over {MAX_HEAD} bytes")
                return
            lines = bytes(buf[:end]).decode("latin-1").split("\r\n")
            del buf[: end + 4]
            try:
                status = int(lines[0].split(" ", 2)[1])
            except (IndexError, ValueError):
                self._fail(f"bad status line {lines[0][:100]!r}")
                return
            if 100 <= status < 200 and status != 101:
                continue  # an interim response (100 Continue, 103 Early Hints): the real one follows
            headers = []
            length, chunked, keep = -1, False, not lines[0].startswith("HTTP/1.0")
            for line in lines[1:]:
                k, _, v = line.partition(":")
                v = v.strip()
                lk = k.lower()
                if lk == "content-length":
                    length = int(v)
                    if length < 0:
                        raise ValueError(f"negative Content-Length {v}")
                elif lk == "transfer-encoding":
                    chunked = "chunked" in v.lower()
                elif lk == "connection":
                    keep = v.lower() != "close"
                headers.append((k, v))
            self.head, self.length, self.chunked, self.keep_alive = (status, headers), length, chunked, keep
            if status in (204, 304) or self.no_body:
                self.length, self.chunked = 0, False
        if self.chunked:
            body = self._dechunk()
            if body is not None:
                self._finish(body)
        elif self.length >= 0 and len(buf) >= self.length:
            body = bytes(buf[: self.length])
            del buf[: self.length]
            self._finish(body)

    def _dechunk(self) -> bytes | None:
        buf, pos, out = self.buf, 0, bytearray()
        while True:
            nl = buf.find(b"\r\n", pos)
            if nl < 0:
                return None
            size = int(bytes(buf[pos:nl]).split(b";")[0], 16)
            if size < 0:
                raise ValueError("negative chunk size")
            if size == 0:
                end = buf.find(b"\r\n\r\n", nl)
                if end < 0:
                    if buf[nl + 2 : nl + 4] == b"\r\n":
                        end = nl
                    else:
                        return None
                del buf[: end + 4]
                return bytes(out)
            if len(buf) < nl + 2 + size + 2:
                return None
            out += buf[nl + 2 : nl + 2 + size]
            pos = nl + 2 + size + 2

    def _finish(self, body: bytes) -> None:
        w, head = self.waiter, self.head
        self.waiter, self.head = None, None
        if w is not None and not w.done():
            w.set_result((head[0], head[1], body))  # type: ignore[index]


def host_header(address: Address) -> str:
    """The Host header for ``address``: ``host:port`` of a pair, ``localhost`` otherwise."""
    if isinstance(address, tuple):
        host, port = address
        host = f"[{host}]" if ":" in host else host
        return host if port == 80 else f"{host}:{port}"
    return "localhost"


def http_target(url: str) -> tuple[tuple[str, int], str, str] | None:
    """((host, port), request path, Host header) of a plain ``http://`` URL the pool can reach.

    None for anything else (https, credentials in the URL, non-ASCII): those go
    through a general client. Pure.
    """
    if not url.isascii():
        return None
    try:
        parts = urlsplit(url)
        port = 80 if parts.port is None else parts.port
    except ValueError:
        return None
    if parts.scheme.lower() != "http" or not parts.hostname or "@" in parts.netloc:
        return None
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return (parts.hostname, port), path, parts.netloc


class Pool:
    """Idle keep-alive connections per address; ``limit``: requests in flight at once (None = no bound)."""

    def __init__(self, limit: int | None = None) -> None:
        self._idle: dict[Address, list[_Conn]] = {}
        self._slots = asyncio.Semaphore(limit) if limit else None

    async def request(
        self,
        address: Address,
        method: str,
        path: str,
        headers: Iterable[tuple[str, str]],
        body: bytes,
        timeout: float,
        host: str | None = None,
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """(status, headers, body); UpstreamError/OSError when the server fails, TimeoutError.

        ``timeout`` covers waiting for a slot and the connect too. ``host``: the Host header
        (default :func:`host_header`). A header name or value with a line break is refused
        (ValueError): it would smuggle a header.
        """
        slots = self._slots
        if slots is None:
            return await self._request(address, method, path, headers, body, timeout, host)
        loop = asyncio.get_running_loop()
        start = loop.time()
        if slots.locked():
            async with asyncio.timeout(timeout):
                await slots.acquire()
        else:
            await slots.acquire()  # free: returns at once
        try:
            left = timeout - (loop.time() - start)
            return await self._request(address, method, path, headers, body, left, host)
        finally:
            slots.release()

    async def _request(
        self,
        address: Address,
        method: str,
        path: str,
        headers: Iterable[tuple[str, str]],
        body: bytes,
        timeout: float,
        host: str | None,
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        loop = asyncio.get_running_loop()
        lines = [f"{k}: {v}\r\n" for k, v in headers]
        data = (
            f"{method} {path} HTTP/1.1\r\nHost: {host or host_header(address)}\r\n"
            f"Content-Length: {len(body)}\r\n{''.join(lines)}\r\n"
        ).encode("utf-8", "surrogateescape")
        breaks = len(lines) + 4  # the request line, Host, Content-Length, each header, the blank line
        if data.count(b"\n") != breaks or data.count(b"\r") != breaks:
            raise ValueError("a header or the path contains a line break")
        now = loop.time()
        idle = self._idle.get(address)
        conn = None
        while idle:
            c = idle.pop()
            if not c.closed and now - c.idle_since < IDLE_SECONDS:
                conn = c
                break
            c.closed = True
            if c.transport is not None:
                c.transport.close()
        if conn is None:
            async with asyncio.timeout(timeout):  # a host that never answers the SYN must not hang us
                conn = await _connect(loop, address)
            timeout = max(0.0, timeout - (loop.time() - now))
        conn.no_body = method == "HEAD"
        waiter = loop.create_future()
        conn.waiter = waiter
        conn.transport.write(data + body if body else data)  # type: ignore[union-attr]
        timer = loop.call_later(timeout, _expire, waiter, conn)
        try:
            result = await waiter
        except BaseException:
            conn.closed = True
            if conn.transport is not None:
                conn.transport.close()
            raise
        finally:
            timer.cancel()
        if conn.keep_alive and not conn.closed and not conn.buf:  # leftover bytes: out of step
            conn.idle_since = loop.time()
            self._idle.setdefault(address, []).append(conn)
        else:
            conn.transport.close()  # type: ignore[union-attr]
        return result

    def forget(self, address: Address) -> None:
        for c in self._idle.pop(address, []):
            if c.transport is not None:
                c.transport.close()

    def close(self) -> None:
        for address in list(self._idle):
            self.forget(address)


async def _connect(loop: asyncio.AbstractEventLoop, address: Address) -> _Conn:
    if isinstance(address, str):
        _, conn = await loop.create_unix_connection(_Conn, address)
    elif isinstance(address, tuple):
        _, conn = await loop.create_connection(_Conn, address[0], address[1])
    else:
        _, conn = await loop.create_connection(_Conn, "127.0.0.1", address)
    return conn


def _expire(waiter: asyncio.Future, conn: _Conn) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())
