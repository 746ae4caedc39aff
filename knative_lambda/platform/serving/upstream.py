"""A lean HTTP/1.1 client for gateway -> instance hops, with keep-alive pools per instance.

An address is a TCP port on 127.0.0.1 or a unix socket path.

The instances are our own wrappers on 127.0.0.1, so the gateway needs far less
than a general client: write one request, read one response framed by
Content-Length (or chunked), keep the connection. Doing it on a bare asyncio
Protocol costs a fraction of aiohttp's ClientSession per request, and the
gateway's CPU per request is what bounds its throughput next to the instances
on a small machine.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable


class UpstreamError(ConnectionError):
    """The instance closed or reset the connection before a full response."""


class _Conn(asyncio.Protocol):
    __slots__ = ("transport", "buf", "waiter", "closed", "head", "length", "chunked", "keep_alive")

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.waiter: asyncio.Future | None = None
        self.closed = False
        self.head: tuple[int, list[tuple[str, str]]] | None = None
        self.length = -1
        self.chunked = False
        self.keep_alive = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        w = self.waiter
        if w is not None and not w.done():
            if self.head is not None and self.length < 0 and not self.chunked:
                self._finish(bytes(self.buf))  # body delimited by close
            else:
                w.set_exception(UpstreamError(f"instance closed the connection: {exc or 'EOF'}"))

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.waiter is not None:
            self._parse()

    def _parse(self) -> None:
        buf = self.buf
        if self.head is None:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            lines = bytes(buf[:end]).decode("latin-1").split("\r\n")
            del buf[: end + 4]
            try:
                status = int(lines[0].split(" ", 2)[1])
            except (IndexError, ValueError):
                self.waiter.set_exception(UpstreamError(f"bad status line {lines[0]!r}"))  # type: ignore[union-attr]
                return
            headers = []
            length, chunked, keep = -1, False, not lines[0].startswith("HTTP/1.0")
            for line in lines[1:]:
                k, _, v = line.partition(":")
                v = v.strip()
                lk = k.lower()
                if lk == "content-length":
                    length = int(v)
                elif lk == "transfer-encoding":
                    chunked = "chunked" in v.lower()
                elif lk == "connection":
                    keep = v.lower() != "close"
                headers.append((k, v))
            self.head, self.length, self.chunked, self.keep_alive = (status, headers), length, chunked, keep
            if status in (204, 304) or 100 <= status < 200:
                self.length = 0
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


class Pool:
    """Idle keep-alive connections per (host, port)."""

    def __init__(self) -> None:
        self._idle: dict[int | str, list[_Conn]] = {}

    async def request(
        self,
        address: int | str,
        method: str,
        path: str,
        headers: Iterable[tuple[str, str]],
        body: bytes,
        timeout: float,
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """(status, headers, body); UpstreamError/OSError when the instance fails, TimeoutError."""
        loop = asyncio.get_running_loop()
        idle = self._idle.get(address)
        conn = None
        while idle:
            c = idle.pop()
            if not c.closed:
                conn = c
                break
        if conn is None:
            if isinstance(address, str):
                _, conn = await loop.create_unix_connection(_Conn, address)
            else:
                _, conn = await loop.create_connection(_Conn, "127.0.0.1", address)
        head = "".join(f"{k}: {v}\r\n" for k, v in headers)
        data = (
            f"{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: {len(body)}\r\n{head}\r\n"
        ).encode("utf-8", "surrogateescape")
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
        if conn.keep_alive and not conn.closed:
            self._idle.setdefault(address, []).append(conn)
        else:
            conn.transport.close()  # type: ignore[union-attr]
        return result

    def forget(self, address: int | str) -> None:
        for c in self._idle.pop(address, []):
            if c.transport is not None:
                c.transport.close()

    def close(self) -> None:
        for address in list(self._idle):
            self.forget(address)


def _expire(waiter: asyncio.Future, conn: _Conn) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())
