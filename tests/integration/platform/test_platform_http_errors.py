"""platform/http.py json_errors: aiohttp's own error answers become JSON, on a real port.

Router 404/405, a body over client_max_size (413, also when only its gzip
expansion is too large), and a body that does not decode with its
Content-Encoding (400, was a 500) all answer ``{"error": ...}``; the
connection stays usable for the next request.
"""

from __future__ import annotations

import gzip
import zlib

import httpx
import pytest
from aiohttp import web

from knative_lambda.platform.http import auth_middleware, json_errors, use_json_errors

LIMIT = 1000


async def _echo(request: web.Request) -> web.Response:
    body = await request.read()
    return web.json_response({"bytes": len(body)})


async def _teapot(_: web.Request) -> web.Response:
    raise web.HTTPConflict(text='{"error": "own JSON"}', content_type="application/json")


async def _redirect(_: web.Request) -> web.Response:
    raise web.HTTPFound("/echo")


@pytest.fixture
async def served(serve_app) -> str:
    app = web.Application(middlewares=[auth_middleware("tok", ("/private",))], client_max_size=LIMIT)
    app.router.add_post("/echo", _echo)
    app.router.add_get("/conflict", _teapot)
    app.router.add_get("/redirect", _redirect)
    app.router.add_get("/private/x", _echo)
    use_json_errors(app)
    use_json_errors(app)  # idempotent: run_app calls it again
    assert list(app.middlewares).count(json_errors) == 1 and app.middlewares[0] is json_errors
    return await serve_app(app)


def _error(response: httpx.Response) -> str:
    assert response.headers["content-type"].startswith("application/json")
    return response.json()["error"]


async def test_router_errors_are_json(served: str) -> None:
    async with httpx.AsyncClient(base_url=served, timeout=10) as http:
        missing = await http.get("/nope")
        assert missing.status_code == 404 and _error(missing) == "not found: GET /nope"
        wrong = await http.put("/echo")
        assert wrong.status_code == 405
        assert _error(wrong) == "method not allowed: PUT /echo; allowed: POST"
        assert wrong.headers["Allow"] == "POST"  # the answer keeps its headers
        head = await http.head("/echo")
        assert head.status_code == 405 and head.content == b""


async def test_body_errors_are_json_and_the_connection_survives(served: str) -> None:
    async with httpx.AsyncClient(base_url=served, timeout=10) as http:
        big = await http.post("/echo", content=b"x" * (LIMIT + 1))
        assert big.status_code == 413 and "too large" in _error(big)
        bomb = await http.post("/echo", content=gzip.compress(b" " * (LIMIT * 50)),
                               headers={"Content-Encoding": "gzip"})
        assert bomb.status_code == 413 and "too large" in _error(bomb)
        for encoding, body in (("gzip", b"not gzip at all"), ("deflate", b"not deflate"), ("gzip", b"x" * 500)):
            bad = await http.post("/echo", content=body, headers={"Content-Encoding": encoding})
            assert bad.status_code == 400, bad.text
            assert _error(bad).startswith("body: cannot be read") and "content-encoding" in _error(bad).lower()
            after = await http.post("/echo", content=b"ok")  # the server is fine afterwards
            assert after.status_code == 200 and after.json() == {"bytes": 2}
        good = await http.post("/echo", content=zlib.compress(b"hello"), headers={"Content-Encoding": "deflate"})
        assert good.json() == {"bytes": 5}


async def test_answers_that_are_already_fine_pass_through(served: str) -> None:
    async with httpx.AsyncClient(base_url=served, timeout=10) as http:
        own = await http.get("/conflict")
        assert own.status_code == 409 and own.json() == {"error": "own JSON"}
        moved = await http.get("/redirect", follow_redirects=False)
        assert moved.status_code == 302 and moved.headers["Location"] == "/echo"
        denied = await http.get("/private/x")
        assert denied.status_code == 401 and "unauthorized" in _error(denied)
