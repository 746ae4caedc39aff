"""The shared lean HTTP/1.1 client (platform/upstream.py) against real servers.

aiohttp serves the well-behaved cases; a raw asyncio server writes exactly the
bytes a test scripts, for the framing corners (chunk extensions, trailers,
interim responses, close-delimited bodies) and for broken servers.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
from aiohttp import web

from knative_lambda.platform import upstream
from knative_lambda.platform.upstream import Pool, UpstreamError


def upstream_app() -> web.Application:
    async def echo(request: web.Request) -> web.Response:
        body = await request.read()
        resp = web.Response(body=b"echo:" + body, headers={"X-Host": request.host, "X-Path": request.path_qs,
                                                           "X-Seen": request.headers.get("X-Custom", "")})
        resp.headers.add("Set-Cookie", "a=1")
        resp.headers.add("Set-Cookie", "b=2")
        return resp

    async def chunked(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Ce-Id": "r1"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        for part in (b"one,", b"two,", b"three"):
            await resp.write(part)
        await resp.write_eof()
        return resp

    async def close(_: web.Request) -> web.Response:
        return web.Response(body=b"bye", headers={"Connection": "close"})

    async def empty(_: web.Request) -> web.Response:
        return web.Response(status=204)

    async def slow(_: web.Request) -> web.Response:
        await asyncio.sleep(0.5)
        return web.Response(body=b"late")

    app = web.Application()
    app.router.add_route("*", "/echo", echo)
    app.router.add_get("/chunked", chunked)
    app.router.add_get("/close", close)
    app.router.add_get("/empty", empty)
    app.router.add_get("/slow", slow)
    return app


@pytest.fixture
async def app_port(serve_app) -> int:
    url = await serve_app(upstream_app())
    return int(url.rsplit(":", 1)[1])


@pytest.fixture
async def port_and_unix(tmp_path) -> AsyncIterator[tuple[int, str]]:
    """The gateway's two address forms for an instance: a 127.0.0.1 port and a unix socket."""
    runner = web.AppRunner(upstream_app())
    await runner.setup()
    path = str(tmp_path / "s.sock")
    tcp = web.TCPSite(runner, "127.0.0.1", 0)
    await tcp.start()
    await web.UnixSite(runner, path).start()
    yield tcp._server.sockets[0].getsockname()[1], path  # type: ignore[union-attr]
    await runner.cleanup()


Script = Callable[[bytes], bytes | None]  # request bytes -> raw response (None: close without answer)


class RawServer:
    """Answers each request with the bytes ``script`` returns; counts connections."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.connections = 0
        self.requests: list[bytes] = []
        self.close_after = False  # close each connection after its first response
        self.port = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                request = head + await reader.readexactly(length)
                self.requests.append(request)
                answer = self.script(request)
                if answer is None:
                    break
                for part in answer.split(b"|"):  # "|" splits the answer into separate writes
                    writer.write(part)
                    await writer.drain()
                    await asyncio.sleep(0)
                if self.close_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def raw() -> AsyncIterator[Callable[[Script], RawServer]]:
    servers: list[asyncio.Server] = []

    async def start(script: Script) -> RawServer:
        rs = RawServer(script)
        server = await asyncio.start_server(rs.handle, "127.0.0.1", 0)
        rs.port = server.sockets[0].getsockname()[1]
        servers.append(server)
        return rs

    yield start  # type: ignore[misc]
    for server in servers:
        server.close()


async def test_remote_host_port_sends_host_and_returns_headers_in_order(app_port: int) -> None:
    pool = Pool()
    for address in (("localhost", app_port), ("127.0.0.1", app_port)):
        status, headers, body = await pool.request(address, "POST", "/echo?x=1", [("X-A", "b")], b"hi", 5)
        assert (status, body) == (200, b"echo:hi")
        got = dict(headers)
        assert got["X-Host"] == f"{address[0]}:{app_port}" and got["X-Path"] == "/echo?x=1"
        assert [v for k, v in headers if k == "Set-Cookie"] == ["a=1", "b=2"]  # repeated headers kept
    status, headers, _ = await pool.request(("localhost", app_port), "GET", "/echo", [], b"", 5, host="sub.example")
    assert dict(headers)["X-Host"] == "sub.example"
    pool.close()


async def test_chunked_response_with_headers(app_port: int) -> None:
    pool = Pool()
    status, headers, body = await pool.request(("127.0.0.1", app_port), "GET", "/chunked", [], b"", 5)
    assert (status, body, dict(headers)["Ce-Id"]) == (200, b"one,two,three", "r1")
    pool.close()


async def test_head_response_has_no_body_and_keeps_the_connection(app_port: int) -> None:
    pool = Pool()
    address = ("127.0.0.1", app_port)
    status, headers, body = await pool.request(address, "HEAD", "/echo", [], b"", 5)
    assert status == 200 and body == b"" and int(dict(headers)["Content-Length"]) > 0
    assert (await pool.request(address, "POST", "/echo", [], b"x", 5))[2] == b"echo:x"
    assert len(pool._idle[address]) == 1
    pool.close()


async def test_connections_are_reused_and_stale_ones_are_not(raw, monkeypatch) -> None:
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    server = await raw(lambda _: ok)
    pool = Pool()
    address = ("127.0.0.1", server.port)
    for _ in range(3):
        assert (await pool.request(address, "POST", "/", [], b"x", 5))[2] == b"ok"
    assert server.connections == 1
    monkeypatch.setattr(upstream, "IDLE_SECONDS", 0.0)  # every idle connection counts as too old
    assert (await pool.request(address, "POST", "/", [], b"x", 5))[2] == b"ok"
    assert server.connections == 2
    pool.close()


async def test_a_connection_the_server_closed_while_idle_is_not_reused(raw) -> None:
    server = await raw(lambda _: b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    server.close_after = True  # as a server whose keep-alive timeout passed
    pool = Pool()
    address = ("127.0.0.1", server.port)
    assert (await pool.request(address, "GET", "/", [], b"", 5))[2] == b"ok"
    for _ in range(200):  # until the client has seen the FIN
        if pool._idle[address][0].closed:
            break
        await asyncio.sleep(0.01)
    assert (await pool.request(address, "GET", "/", [], b"", 5))[2] == b"ok"
    assert server.connections == 2
    pool.close()


@pytest.mark.parametrize(
    ("answer", "body"),
    [
        # chunk extensions, a trailer, the answer split over writes
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\nab|cd\r\n3\r\nefg\r\n0\r\nX-T: 1\r\n\r\n",
         b"abcdefg"),
        # an interim 103 before the real response
        (b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc", b"abc"),
        # a head split in the middle of a line
        (b"HTTP/1.1 200 OK\r\nContent-Le|ngth: 3\r\n\r|\nab|c", b"abc"),
    ],
)
async def test_framing_corners(raw, answer: bytes, body: bytes) -> None:
    server = await raw(lambda _: answer)
    pool = Pool()
    status, _, got = await pool.request(("127.0.0.1", server.port), "GET", "/", [], b"", 5)
    assert (status, got) == (200, body)
    pool.close()


async def test_a_body_delimited_by_the_close(raw) -> None:
    server = await raw(lambda _: b"HTTP/1.1 200 OK\r\nX: y\r\n\r\nto the end")
    server.close_after = True
    pool = Pool()
    address = ("127.0.0.1", server.port)
    assert (await pool.request(address, "GET", "/", [], b"", 5))[2] == b"to the end"
    assert not pool._idle.get(address)  # a closed connection is not kept
    pool.close()


@pytest.mark.parametrize(
    "answer",
    [
        None,  # closed before answering
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",  # closed mid-body
        b"garbage\r\n\r\n",  # not a status line
        b"HTTP/1.1 200 OK\r\nContent-Length: many\r\n\r\n",  # a length that is not a number
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",  # a chunk size that is not hex
    ],
)
async def test_broken_servers_raise_upstream_error(raw, answer: bytes | None) -> None:
    server = await raw(lambda _: answer)
    server.close_after = True
    pool = Pool()
    with pytest.raises(UpstreamError):
        await pool.request(("127.0.0.1", server.port), "GET", "/", [], b"", 5)
    pool.close()


async def test_errors_are_oserror_or_timeout(app_port: int) -> None:
    pool = Pool()
    with pytest.raises(OSError):
        await pool.request(("127.0.0.1", 9), "GET", "/", [], b"", 5)  # nothing listens on the discard port
    with pytest.raises(OSError):
        await pool.request(("no-such-host.invalid", 80), "GET", "/", [], b"", 5)
    with pytest.raises(TimeoutError):
        await pool.request(("127.0.0.1", app_port), "GET", "/slow", [], b"", 0.1)
    assert not pool._idle.get(("127.0.0.1", app_port))  # a timed-out connection is dropped
    pool.close()


async def test_a_line_break_in_a_header_is_refused(raw) -> None:
    server = await raw(lambda _: b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    pool = Pool()
    for headers in ([("X-A", "v\r\nX-Evil: 1")], [("X-A", "v\nX-Evil: 1")], [("X-A\r", "v")]):
        with pytest.raises(ValueError, match="line break"):
            await pool.request(("127.0.0.1", server.port), "POST", "/", headers, b"", 5)
    assert server.requests == []
    pool.close()


async def test_limit_bounds_requests_in_flight(app_port: int) -> None:
    pool = Pool(limit=1)
    address = ("127.0.0.1", app_port)
    first = asyncio.ensure_future(pool.request(address, "GET", "/slow", [], b"", 5))
    await asyncio.sleep(0.05)  # the first holds the only slot
    with pytest.raises(TimeoutError):  # waiting for the slot counts in the timeout
        await pool.request(address, "POST", "/echo", [], b"x", 0.1)
    assert (await first)[2] == b"late"
    assert (await pool.request(address, "POST", "/echo", [], b"x", 5))[2] == b"echo:x"
    pool.close()


async def test_framing_and_keep_alive(port_and_unix):
    port, path = port_and_unix
    pool = Pool()
    for address in (port, path):
        status, headers, body = await pool.request(address, "POST", "/echo", [("X-Custom", "v")], b"hi", 5)
        assert (status, body, dict(headers)["X-Seen"]) == (200, b"echo:hi", "v")
        await pool.request(address, "POST", "/echo", [], b"", 5)
        assert len(pool._idle[address]) == 1  # the connection was reused
        assert (await pool.request(address, "GET", "/chunked", [], b"", 5))[2] == b"one,two,three"
        assert (await pool.request(address, "GET", "/empty", [], b"", 5))[:1] == (204,)
        assert (await pool.request(address, "GET", "/close", [], b"", 5))[2] == b"bye"
    pool.close()


async def test_timeout_and_refused(port_and_unix):
    port, _ = port_and_unix
    pool = Pool()
    with pytest.raises(TimeoutError):
        await pool.request(port, "GET", "/slow", [], b"", 0.2)
    with pytest.raises(OSError):
        await pool.request(1, "GET", "/", [], b"", 1)  # nothing listens on port 1
    pool.close()
