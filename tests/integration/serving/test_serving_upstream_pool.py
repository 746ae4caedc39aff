"""The gateway's lean upstream client against a real aiohttp server: framing, keep-alive, failures."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web

from knative_lambda.platform.upstream import Pool


@pytest.fixture
async def server(tmp_path):
    async def plain(request: web.Request) -> web.Response:
        body = await request.read()
        return web.Response(body=b"echo:" + body, headers={"X-Seen": request.headers.get("X-Custom", "")})

    async def chunked(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
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
        await asyncio.sleep(1)
        return web.Response(body=b"late")

    app = web.Application()
    app.router.add_post("/plain", plain)
    app.router.add_get("/chunked", chunked)
    app.router.add_get("/close", close)
    app.router.add_get("/empty", empty)
    app.router.add_get("/slow", slow)
    runner = web.AppRunner(app)
    await runner.setup()
    path = str(tmp_path / "s.sock")
    tcp = web.TCPSite(runner, "127.0.0.1", 0)
    await tcp.start()
    await web.UnixSite(runner, path).start()
    port = tcp._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield port, path
    await runner.cleanup()


async def test_framing_and_keep_alive(server):
    port, path = server
    pool = Pool()
    for address in (port, path):
        status, headers, body = await pool.request(address, "POST", "/plain", [("X-Custom", "v")], b"hi", 5)
        assert (status, body, dict(headers)["X-Seen"]) == (200, b"echo:hi", "v")
        await pool.request(address, "POST", "/plain", [], b"", 5)
        assert len(pool._idle[address]) == 1  # the connection was reused
        assert (await pool.request(address, "GET", "/chunked", [], b"", 5))[2] == b"one,two,three"
        assert (await pool.request(address, "GET", "/empty", [], b"", 5))[:1] == (204,)
        assert (await pool.request(address, "GET", "/close", [], b"", 5))[2] == b"bye"
    pool.close()


async def test_timeout_and_refused(server):
    port, _ = server
    pool = Pool()
    with pytest.raises(TimeoutError):
        await pool.request(port, "GET", "/slow", [], b"", 0.2)
    with pytest.raises(OSError):
        await pool.request(1, "GET", "/", [], b"", 1)  # nothing listens on port 1
    pool.close()
