"""What every platform HTTP process shares: auth, health, metrics, startup.

Each platform process is an aiohttp application built by its own module and
run with :func:`run_app`, which adds ``GET /healthz`` and ``GET /metrics``
(Prometheus text format) and the bearer-token check for management routes.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import signal
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

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


async def _healthz(_: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _metrics(_: web.Request) -> web.Response:
    return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})


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
