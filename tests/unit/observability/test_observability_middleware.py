"""The management middleware: 413 past the body limit, 429 + Retry-After past the rate,
reads never limited (in-process aiohttp server, real HTTP)."""

from __future__ import annotations

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from knative_lambda.platform.limits import RateLimiter, management_middleware


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def _ok(_: web.Request) -> web.Response:
    return web.json_response({"ok": True})


def _app(limiter: RateLimiter, body_limit: int = 100) -> web.Application:
    app = web.Application(middlewares=[management_middleware(limiter, body_limit=body_limit)])
    app.router.add_route("*", "/apis/v1/x", _ok)
    app.router.add_route("*", "/data", _ok)
    return app


async def test_changes_are_rate_limited_and_reads_are_not() -> None:
    clock = Clock()
    limiter = RateLimiter({"manage": (1.0, 2)}, clock=clock)
    async with TestClient(TestServer(_app(limiter))) as client:
        assert [(await client.put("/apis/v1/x")).status for _ in range(2)] == [200, 200]
        refused = await client.delete("/apis/v1/x")
        assert refused.status == 429
        assert refused.headers["Retry-After"] == "1"
        assert "'manage'" in (await refused.json())["error"]
        assert (await client.get("/apis/v1/x")).status == 200  # reads: never limited
        assert (await client.post("/data")).status == 200  # outside /apis: not this middleware's
        clock.now += 1.0  # one token back
        assert (await client.post("/apis/v1/x")).status == 200


async def test_a_big_management_body_gets_413() -> None:
    limiter = RateLimiter({"manage": (0.0, 1)})  # rate 0: limit disabled
    async with TestClient(TestServer(_app(limiter, body_limit=100))) as client:
        refused = await client.put("/apis/v1/x", data=b"x" * 101)
        assert refused.status == 413
        assert "limit 100 bytes" in (await refused.json())["error"]
        assert (await client.put("/apis/v1/x", data=b"x" * 100)).status == 200
        assert (await client.put("/data", data=b"x" * 1000)).status == 200
