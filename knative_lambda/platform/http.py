"""What every platform HTTP process shares: auth, health, metrics, startup.

Each platform process is an aiohttp application built by its own module and
run with :func:`run_app`, which adds ``GET /healthz`` and ``GET /metrics``
(Prometheus text format) and JSON error answers (:func:`json_errors`); the
bearer-token check for management routes is :func:`auth_middleware`.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import signal
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
    multiprocess,
)

from knative_lambda.settings import Settings

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
OPEN_PATHS = ("/healthz", "/readyz", "/metrics")


def token_ok(header: str | None, token: str) -> bool:
    """Constant-time check of an ``Authorization: Bearer <token>`` header."""
    if not token:
        return True
    if not header or not header.startswith("Bearer "):
        return False
    return hmac.compare_digest(header[len("Bearer ") :].encode(), token.encode())


def auth_middleware(token: str, protected_prefixes: tuple[str, ...] = ("/",)):
    """Reject requests without the token on the given path prefixes (401, JSON body)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        if (
            token
            and not path.startswith(OPEN_PATHS)
            and path.startswith(protected_prefixes)
            and not token_ok(request.headers.get("Authorization"), token)
        ):
            return web.json_response(
                {"error": "unauthorized: send 'Authorization: Bearer <token>' (see kl status)"},
                status=401,
            )
        return await handler(request)

    return middleware


def _http_error_message(request: web.Request, exc: web.HTTPException) -> str:
    where = f"{request.method} {request.path[:200]}"
    if exc.status == 404:
        return f"not found: {where}"
    if exc.status == 405:
        allowed = ", ".join(sorted(getattr(exc, "allowed_methods", ()) or ()))
        return f"method not allowed: {where}" + (f"; allowed: {allowed}" if allowed else "")
    if exc.status == 413:
        return f"request body too large: {exc.text or exc.reason}"
    detail = exc.text if exc.text and not exc.text.startswith(f"{exc.status}:") else ""
    return f"{exc.reason.lower()}: {detail or where}"


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """aiohttp's own error answers (router 404/405, body too large, undecodable body) as JSON.

    Clients of every platform API parse ``{"error": ...}``; aiohttp answers these
    in text/plain, and a body that fails its Content-Encoding is even a 500.
    The happy path pays one try block.
    """
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400 or (exc.content_type or "").endswith("json"):
            raise
        headers = {k: v for k, v in exc.headers.items() if k.lower() not in _BODY_HEADERS}
        return web.json_response(
            {"error": _http_error_message(request, exc)}, status=exc.status, headers=headers
        )
    except web.RequestPayloadError as exc:  # e.g. a body that is not the gzip it claims to be
        cause = exc.__cause__ or exc
        detail = getattr(cause, "message", "") or str(cause)
        return unreadable_body(
            request,
            web.json_response(
                {"error": f"body: cannot be read: {' '.join(str(detail).split())}; "
                          "check its Content-Encoding"},
                status=400,
            ),
        )


def unreadable_body(request: web.Request, response: web.Response) -> web.Response:
    """``response`` to a request whose body raised ``web.RequestPayloadError``.

    The rest of the body cannot be read: end the stream so aiohttp does not
    re-raise while draining it (it would reset the connection before the answer
    is read), and close the connection after answering.
    """
    request.content.feed_eof()
    response.force_close()
    return response


_BODY_HEADERS = frozenset(("content-type", "content-length", "content-encoding"))


def use_json_errors(app: web.Application) -> web.Application:
    """Put :func:`json_errors` outermost in ``app`` (once); call before the app starts."""
    if json_errors not in app.middlewares:
        app.middlewares.insert(0, json_errors)
    return app


async def _healthz(_: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _metrics(_: web.Request) -> web.Response:
    return web.Response(body=generate_latest(metrics_registry()), headers={"Content-Type": CONTENT_TYPE_LATEST})


def metrics_registry() -> CollectorRegistry:
    """The process's registry; in prometheus_client's multiprocess mode (PROMETHEUS_MULTIPROC_DIR:
    the broker with its ingress workers) one that sums the values of every process."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


def add_standard_routes(app: web.Application) -> None:
    """``/healthz`` and ``/metrics`` unless the application defined its own."""
    existing = {r.resource.canonical for r in app.router.routes() if r.resource is not None}
    if "/healthz" not in existing:
        app.router.add_get("/healthz", _healthz)
    if "/metrics" not in existing:
        app.router.add_get("/metrics", _metrics)


def run_app(app: web.Application, settings: Settings, host: str = "127.0.0.1") -> None:
    """Serve ``app`` on ``settings.port`` until SIGTERM/SIGINT, then shut down cleanly."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    add_standard_routes(app)
    use_json_errors(app)

    async def serve() -> None:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, settings.port, backlog=4096, reuse_address=True)
        await site.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await runner.cleanup()

    asyncio.run(serve())
