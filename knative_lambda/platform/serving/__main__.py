"""The gateway process: ``python -m knative_lambda.platform.serving``.

Reads ``Settings.from_env()`` (``KL_PORT``, ``KL_TOKEN``, ``KL_DATA_DIR``,
``KL_EVENT_PREFIX``), autoscaler overrides ``KL_AUTOSCALER_<KEY>`` (e.g.
``KL_AUTOSCALER_TICK=0.5``, ``KL_AUTOSCALER_STABLE_WINDOW=2s``,
``KL_AUTOSCALER_SCALE_TO_ZERO_GRACE_PERIOD=1s``) and gateway options
``KL_DOMAIN``, ``KL_GATEWAY_QUEUE_LIMIT``, ``KL_GATEWAY_BUFFER_TIMEOUT``,
``KL_INSTANCE_MEMORY_MB``, ``KL_INSTANCE_MODE`` (``process`` or ``container``:
serving/containers.py).
"""

from __future__ import annotations

import asyncio
import os
import sys

from aiohttp import web

from knative_lambda.errors import KLError
from knative_lambda.platform.http import (
    add_standard_routes,
    auth_middleware,
    run_app,
    use_json_errors,
)
from knative_lambda.platform.limits import management_middleware
from knative_lambda.platform.observe import setup_process
from knative_lambda.platform.serving import api
from knative_lambda.platform.serving.config import platform_config
from knative_lambda.platform.serving.gateway import Gateway, GatewayOptions
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
        client_max_size=32 * 1024 * 1024,
    )
    use_json_errors(app)
    app["gateway"] = gateway
    add_standard_routes(app)  # before the catch-all route of the data plane
    api.add_routes(app, gateway)
    app.router.add_route("*", "/{tail:.*}", gateway.handle)

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
    run_app(app, settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
