"""The dispatcher's deliveries over the lean keep-alive client (platform/upstream.py), real servers.

What the dispatcher reads of an attempt (status, case-insensitive headers, body,
or the error that sends it down the connection-error retry path) must be the
same as it was with aiohttp, which still carries https:// deliveries.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from knative_lambda.contract.bindings import from_http, to_http
from knative_lambda.contract.events import EventKind, FunctionResult
from knative_lambda.contract.factory import new_event
from knative_lambda.platform.broker.dispatcher import TriggerConsumer, is_cloudevent_reply
from knative_lambda.platform.broker.metrics import TriggerCounts
from knative_lambda.platform.broker.triggers import parse_trigger, should_retry, trigger_object
from knative_lambda.platform.upstream import Pool

from .conftest import parser_event, unique_name

pytestmark = pytest.mark.asyncio(loop_scope="function")


def _reply_event() -> Any:
    return new_event(EventKind.PROCESSED, FunctionResult.ok([{"x": 1}]), source="fn", subject="p1")


@pytest.fixture
async def subscriber(serve_app) -> str:
    async def chunked_reply(request: web.Request) -> web.StreamResponse:
        event = from_http(request.headers, await request.read())  # binary mode, as delivered
        headers, body = to_http(_reply_event(), "binary")
        resp = web.StreamResponse(headers={**headers, "X-Got-Id": str(event.get_id())})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        await resp.write(body[:5])
        await resp.write(body[5:])
        await resp.write_eof()
        return resp

    async def status(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=int(request.match_info["code"]), text="nope")

    async def hang(request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.Response()

    async def reset(request: web.Request) -> web.Response:
        request.transport.close()  # type: ignore[union-attr]
        await asyncio.sleep(1)
        return web.Response()

    async def moved(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=int(request.match_info["code"]), headers={"Location": "/reply"})

    async def landed(request: web.Request) -> web.Response:  # where a 302/303 sends a POST: as a GET
        return web.Response(text=f"{request.method} {len(await request.read())}")

    app = web.Application()
    app.router.add_post("/moved/{code}", moved)
    app.router.add_get("/reply", landed)
    app.router.add_post("/reply", chunked_reply)
    app.router.add_post("/status/{code}", status)
    app.router.add_post("/hang", hang)
    app.router.add_post("/reset", reset)
    return await serve_app(app)


@pytest.fixture
async def consumer() -> Any:
    spec = parse_trigger(trigger_object("t", "http://127.0.0.1:1/", delivery={"timeout": "PT0.3S"}), "default", "t")
    async with aiohttp.ClientSession() as session:
        pool = Pool()
        # Only the delivery half is used: no RabbitMQ connection or publisher needed.
        yield TriggerConsumer(spec, None, None, session, TriggerCounts(), {}, 30.0, pool=pool)  # type: ignore[arg-type]
        pool.close()


async def test_a_chunked_cloudevent_reply_reads_as_one(subscriber: str, consumer: Any) -> None:
    url = subscriber.replace("127.0.0.1", "localhost") + "/reply"  # a host name, resolved
    headers, body = to_http(parser_event(), "binary")
    attempt = await consumer._post(url, headers, body)
    assert attempt.ok and attempt.headers["x-got-id"] == headers["ce-id"]
    assert is_cloudevent_reply(attempt.headers, attempt.body)
    assert from_http(attempt.headers, attempt.body).get_type() == "network.notifi.lambda.processed"
    again = await consumer._post(url, headers, body)
    assert again.ok and len(consumer._pool._idle[("localhost", int(url.split(":")[2].split("/")[0]))]) == 1


@pytest.mark.parametrize(("code", "landed"), [(307, "POST"), (308, "POST"), (302, "GET"), (303, "GET")])
async def test_redirects_are_followed_as_aiohttp_follows_them(
    subscriber: str, consumer: Any, code: int, landed: str
) -> None:
    headers, body = to_http(parser_event(), "binary")
    attempt = await consumer._post(f"{subscriber}/moved/{code}", headers, body)
    assert attempt.ok
    if landed == "POST":  # 307/308 keep the method and the body: the reply handler answered
        assert attempt.headers["x-got-id"] == headers["ce-id"]
    else:
        assert attempt.body == b"GET 0"


@pytest.mark.parametrize(("code", "retried"), [(404, True), (409, True), (429, True), (503, True),
                                               (400, False), (413, False)])
async def test_statuses_keep_their_retry_decision(subscriber: str, consumer: Any, code: int, retried: bool) -> None:
    headers, body = to_http(parser_event(), "binary")
    attempt = await consumer._post(f"{subscriber}/status/{code}", headers, body)
    assert (attempt.status, attempt.body, should_retry(attempt.status)) == (code, b"nope", retried)


@pytest.mark.parametrize("path", ["/hang", "/reset", None])
async def test_failures_take_the_connection_error_path(subscriber: str, consumer: Any, path: str | None) -> None:
    url = f"{subscriber}{path}" if path else "http://127.0.0.1:9/"  # None: nothing listens
    headers, body = to_http(parser_event(), "binary")
    attempt = await consumer._post(url, headers, body)
    assert attempt.status is None and should_retry(None)
    want = {"/hang": "TimeoutError", "/reset": "UpstreamError", None: "ConnectionRefusedError"}[path]
    assert attempt.error.startswith(want)


async def test_https_goes_through_aiohttp(subscriber: str, consumer: Any) -> None:
    # A TLS handshake against a plain HTTP server fails: a connection error, from aiohttp.
    url = subscriber.replace("http://", "https://") + "/reply"
    headers, body = to_http(parser_event(), "binary")
    attempt = await consumer._post(url, headers, body)
    assert attempt.status is None and attempt.error.startswith("Client")
    assert not consumer._pool._idle


async def test_delivery_and_reply_through_the_broker_to_a_host_name(broker, receivers, serve_app) -> None:
    """End to end: a subscriber named by host name answers with a chunked CloudEvent reply."""

    async def fn(request: web.Request) -> web.StreamResponse:
        event = from_http(request.headers, await request.read())
        reply = new_event(EventKind.PROCESSED, FunctionResult.ok([{"x": 1}]), source="fn",
                          subject=event.get_subject())
        headers, body = to_http(reply, "binary")
        resp = web.StreamResponse(headers=headers)
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        await resp.write(body)
        await resp.write_eof()
        return resp

    app = web.Application()
    app.router.add_post("/", fn)
    fn_url = (await serve_app(app)).replace("127.0.0.1", "localhost") + "/"
    results = await receivers()
    parser = unique_name("p")
    client = broker.client()
    client.put_trigger(trigger_object(unique_name(), fn_url, filters=[
        {"exact": {"subject": parser}}, {"suffix": {"type": ".parser.start"}}]))
    client.put_trigger(trigger_object(unique_name(), results.url, filters=[
        {"all": [{"exact": {"subject": parser}}, {"prefix": {"type": "network.notifi.lambda.proc"}}]}]))
    await client.publish(parser_event(parser))
    await results.wait_for(lambda r: len(r.unique) == 1)
    assert results.unique[0].get_extension("knativebrokerttl") == "254"
    await client.aclose()
