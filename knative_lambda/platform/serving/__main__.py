"""The gateway process: ``python -m knative_lambda.platform.serving``.

Reads ``Settings.from_env()`` (``KL_PORT``, ``KL_TOKEN``, ``KL_DATA_DIR``,
``KL_EVENT_PREFIX``), autoscaler overrides ``KL_AUTOSCALER_<KEY>`` (e.g.
``KL_AUTOSCALER_TICK=0.5``, ``KL_AUTOSCALER_STABLE_WINDOW=2s``,
``KL_AUTOSCALER_SCALE_TO_ZERO_GRACE_PERIOD=1s``) and gateway options
``KL_DOMAIN``, ``KL_GATEWAY_QUEUE_LIMIT``, ``KL_GATEWAY_BUFFER_TIMEOUT``,
``KL_INSTANCE_MEMORY_MB``, ``KL_INSTANCE_MODE`` (``process`` or ``container``:
serving/containers.py).

The port is served by the front server (platform/front.py): requests for a function go
straight to the gateway; the management API, ``/healthz``, ``/readyz`` and
``/metrics`` go to the aiohttp application built here, which listens on a
private unix socket (``<KL_DATA_DIR>/gateway/run/api.sock``).
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable

from aiohttp import web

from knative_lambda.errors import KLError
from knative_lambda.platform.front import Front, Handler, HandlerFor, open_paths, serve
from knative_lambda.platform.http import add_standard_routes, auth_middleware, use_json_errors
from knative_lambda.platform.limits import management_middleware
from knative_lambda.platform.observe import setup_process
from knative_lambda.platform.serving import api
from knative_lambda.platform.serving.config import platform_config
from knative_lambda.platform.serving.gateway import MAX_BODY, Gateway, GatewayOptions
from knative_lambda.platform.serving.instances import Launcher
from knative_lambda.settings import Settings


def build_app(settings: Settings, env: dict[str, str] | None = None) -> web.Application:
    env = dict(os.environ if env is None else env)
    gateway = Gateway(
        platform_config(env),
        Launcher(settings.data_dir, settings.event_prefix),
        GatewayOptions.from_env(env),
        settings.data_dir,
    )
    app = web.Application(
        middlewares=[auth_middleware(settings.token, ("/apis",)), management_middleware(gateway.limiter)],
        client_max_size=MAX_BODY,
    )
    use_json_errors(app)
    app["gateway"] = gateway
    add_standard_routes(app)
    api.add_routes(app, gateway)  # the data plane is the front server's (front.py)

    async def on_startup(_: web.Application) -> None:
        await gateway.start()
        api.restore(gateway)

    async def on_cleanup(_: web.Application) -> None:
        await gateway.close()

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    return app


def main() -> int:
    settings = Settings.from_env()
    setup_process("gateway", settings)
    try:
        app = build_app(settings)
    except KLError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:  # pragma: no cover
        pass
    asyncio.run(serve(app, "gateway", settings.port, settings.data_dir, MAX_BODY, routes(app["gateway"], app)))
    return 0


def routes(gateway: Gateway, app: web.Application) -> Callable[[Front], HandlerFor]:
    """The front's routing: the management API (``/apis``), and GET/HEAD of the aiohttp app's
    other fixed paths (``/healthz``, ``/metrics``, ...) go to the app; every other request is
    the gateway's."""
    handle = gateway.handle

    def make(_: Front) -> HandlerFor:
        fixed = open_paths(app)  # once the app is set up: every route is in

        def handler_for(method: str, path: str) -> Handler | None:
            if path.startswith("/apis") and (len(path) == 5 or path[5] == "/") or (
                path in fixed and method in ("GET", "HEAD")
            ):
                return None
            return handle

        return handler_for

    return make


if __name__ == "__main__":
    sys.exit(main())
