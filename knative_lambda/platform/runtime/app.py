"""The HTTP face of a function instance (the in-instance wrapper of DESIGN §2).

Routes: ``GET /healthz``, ``GET /readyz``, ``POST /`` and ``POST /events``.

- A plain JSON body calls ``handle(body)`` and answers the FunctionResult:
  ``{"succeeded": true, "contextId", "eventEntries"}`` (200) or
  ``{"succeeded": false, "errorMessage"}`` (500).
- A CloudEvent (binary or structured mode) calls ``handle(data)``; with
  ``responsetype=sync`` the reply is a ``P.result`` event inline (500 when the
  function failed), otherwise a ``P.processed`` / ``P.error`` event in binary
  mode with 200, which the broker re-publishes.

A handler returning a dict with a boolean ``succeeded`` is taken as a
FunctionResult already; anything else becomes ``eventEntries`` (a list as is,
``None`` as ``[]``, one value as a one-item list).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError

from knative_lambda.contract.bindings import from_http, to_http
from knative_lambda.contract.dedupe import Dedupe
from knative_lambda.contract.errors import ContractError
from knative_lambda.contract.events import (
    EXT_CORRELATION_ID,
    EXT_JOB_NAME,
    EXT_PARSER_ID,
    EXT_RESPONSE_TYPE,
    EXT_THIRD_PARTY_ID,
    RESPONSE_TYPE_SYNC,
    EventKind,
    is_uuid4,
)
from knative_lambda.contract.factory import new_correlation_id, new_event
from knative_lambda.platform import tracing
from knative_lambda.settings import DEFAULT_PREFIX

JSON = "application/json"


def normalize(result: Any, context_id: str | None) -> tuple[dict[str, Any], bool]:
    """The FunctionResult dict for a handler's return value, and whether it succeeded."""
    if isinstance(result, dict) and isinstance(result.get("succeeded"), bool):
        if context_id and "contextId" not in result:
            result = {**result, "contextId": context_id}
        return result, result["succeeded"]
    entries = result if isinstance(result, list) else [] if result is None else [result]
    return {"succeeded": True, "contextId": context_id, "eventEntries": entries}, True


def failure(exc: BaseException, context_id: str | None) -> dict[str, Any]:
    return {"succeeded": False, "contextId": context_id, "errorMessage": f"{type(exc).__name__}: {exc}"}


class Invoker:
    """Calls the user's function: coroutines on the loop, plain functions on a thread pool.

    A thread pool (sized to containerConcurrency) keeps a blocking handler from
    serialising the requests the gateway lets through concurrently.
    """

    def __init__(
        self, fn: Callable[..., Any], is_async: bool, workers: int = 16, pool: ThreadPoolExecutor | None = None
    ) -> None:
        self.fn = fn
        self.is_async = is_async
        self.pool = None if is_async else pool or ThreadPoolExecutor(max_workers=max(1, workers))

    async def call(self, data: Any, context_id: str | None) -> tuple[dict[str, Any], bool]:
        try:
            if self.is_async:
                result = await self.fn(data)
            else:
                result = await asyncio.get_running_loop().run_in_executor(self.pool, self.fn, data)
        except Exception as exc:  # the function's failure is the reply, not a crash
            return failure(exc, context_id), False
        try:
            return normalize(result, context_id)
        except Exception as exc:
            return failure(exc, context_id), False


def _context_of(data: Any, headers: Any) -> str | None:
    if isinstance(data, dict):
        cid = data.get("contextId") or data.get("context_id")
        if isinstance(cid, str):
            return cid
    return headers.get("X-Context-Id") or headers.get("X-Request-Id")


class Identity:
    """Names the replies carry; filled in when a pre-started process is given its function."""

    def __init__(self, service: str = "", parser: str = "", prefix: str = DEFAULT_PREFIX) -> None:
        self.set(service, parser, prefix)

    def set(self, service: str, parser: str, prefix: str) -> None:
        self.service, self.parser, self.prefix = service, parser, prefix or DEFAULT_PREFIX
        self.source = f"network.notifi.lambda/{service or 'function'}"

    @classmethod
    def from_env(cls) -> Identity:
        env = os.environ
        return cls(env.get("K_SERVICE", ""), env.get("KL_PARSER_ID", ""), env.get("KL_EVENT_PREFIX", DEFAULT_PREFIX))


class Slot:
    """The invoker of a process whose server may start before its function is loaded."""

    def __init__(self, invoker: Invoker | None = None) -> None:
        self.invoker = invoker


def make_app(invoker: Invoker | Slot, identity: Identity | None = None) -> web.Application:
    """The instance's aiohttp application."""
    slot = invoker if isinstance(invoker, Slot) else Slot(invoker)
    ident = identity or Identity()
    dumps = json.dumps

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(body=b'{"status":"ok"}', content_type=JSON)

    async def readyz(_: web.Request) -> web.Response:
        return web.Response(body=b'{"status":"ready"}', content_type=JSON)

    async def invoke(request: web.Request) -> web.Response:
        headers = request.headers
        if "traceparent" not in headers:  # untraced requests pay nothing
            return await serve(request, headers)
        span = tracing.start_span(headers, "instance.invoke", headers.get("ce-correlationid", ""),
                                  service=ident.service)
        try:
            response = await serve(request, headers)
            span.set_attribute("http.status_code", response.status)
            return response
        finally:
            span.end()

    async def serve(request: web.Request, headers: Any) -> web.Response:
        try:  # bodies come as the client sent them (the gateway passes Content-Encoding on)
            body = await request.read()
        except RequestPayloadError as exc:  # e.g. "gzip" that is not: the client's error, not ours
            reason = " ".join(str(exc).split()).removeprefix("400, message: ")
            return web.Response(
                body=dumps({"succeeded": False, "errorMessage": f"request body cannot be read: {reason}"}),
                status=400,
                content_type=JSON,
            )
        ctype = headers.get("Content-Type", "")
        if "ce-specversion" in headers or ctype.startswith("application/cloudevents"):
            return await on_event(headers, body)
        try:
            data = json.loads(body) if body else None
        except ValueError as exc:
            return web.Response(
                body=dumps({"succeeded": False, "errorMessage": f"request body is not JSON: {exc}"}),
                status=400,
                content_type=JSON,
            )
        result, ok = await slot.invoker.call(data, _context_of(data, headers))
        return web.Response(body=dumps(result), status=200 if ok else 500, content_type=JSON)

    seen = Dedupe(capacity=10_000)

    async def on_event(headers: Any, body: bytes) -> web.Response:
        try:
            event = from_http(headers, body)
        except ContractError as exc:
            return web.Response(
                body=dumps(
                    {"error": str(exc), "problems": [{"where": p.where, "reason": p.reason} for p in exc.problems]}
                ),
                status=400,
                content_type=JSON,
            )
        sync = event.get_extension(EXT_RESPONSE_TYPE) == RESPONSE_TYPE_SYNC
        # Delivery is at-least-once: a redelivered event is acknowledged, not processed
        # again (a sync caller waits for an answer, so it always gets one).
        if not sync and not seen.first_time(event.get_source(), event.get_id()):
            return web.Response(status=202, body=dumps({"duplicate": True}), content_type=JSON)
        cid = event.get_extension(EXT_CORRELATION_ID)
        cid = cid if is_uuid4(cid) else new_correlation_id()
        result, ok = await slot.invoker.call(event.get_data(), cid)
        kind = EventKind.RESULT if sync else EventKind.PROCESSED if ok else EventKind.ERROR
        ext = {k: event.get_extension(k) for k in (EXT_THIRD_PARTY_ID, EXT_PARSER_ID, EXT_JOB_NAME)}
        subject = event.get_subject() or ext.get(EXT_PARSER_ID) or ident.parser or ident.service or "function"
        reply = new_event(
            kind, result, source=ident.source, subject=subject, prefix=ident.prefix, correlation_id=cid,
            extensions=ext,
        )
        out_headers, out_body = to_http(reply, "binary")
        return web.Response(body=out_body, headers=out_headers, status=500 if (sync and not ok) else 200)

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_post("/", invoke)
    app.router.add_post("/events", invoke)
    return app


def app_for_env(invoker: Invoker) -> web.Application:
    """``make_app`` with names from the instance environment (K_SERVICE, KL_PARSER_ID, KL_EVENT_PREFIX)."""
    return make_app(invoker, Identity.from_env())
