"""The gateway process: ``python -m knative_lambda.platform.serving``.

Reads ``Settings.from_env()`` (``KL_PORT``, ``KL_TOKEN``, ``KL_DATA_DIR``,
``KL_EVENT_PREFIX``), autoscaler overrides ``KL_AUTOSCALER_<KEY>`` (e.g.
``KL_AUTOSCALER_TICK=0.5``, ``KL_AUTOSCALER_STABLE_WINDOW=2s``,
``KL_AUTOSCALER_SCALE_TO_ZERO_GRACE_PERIOD=1s``) and gateway options
``KL_DOMAIN``, ``KL_GATEWAY_QUEUE_LIMIT``, ``KL_GATEWAY_BUFFER_TIMEOUT``,
``KL_INSTANCE_MEMORY_MB``, ``KL_INSTANCE_MODE`` (``process`` or ``container``:
serving/containers.py).

The port is served by the front server (front.py): requests for a function go
straight to the gateway; the management API, ``/healthz``, ``/readyz`` and
``/metrics`` go to the aiohttp application built here, which listens on a
private unix socket (``<KL_DATA_DIR>/gateway/run/api.sock``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import tempfile
from pathlib import Path

from aiohttp import web

from knative_lambda.errors import KLError
from knative_lambda.platform.http import add_standard_routes, auth_middleware, use_json_errors
from knative_lambda.platform.limits import management_middleware
from knative_lambda.platform.observe import setup_process
from knative_lambda.platform.serving import api
from knative_lambda.platform.serving.config import platform_config
from knative_lambda.platform.serving.front import Front
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
    asyncio.run(serve(app, settings))
    return 0


SHUTDOWN_GRACE = 10.0  # seconds in-flight requests get to finish on SIGTERM/SIGINT


def management_socket(data_dir: Path) -> Path:
    """Where the aiohttp application listens: a 0700 directory of the gateway's (a temporary
    one when the data dir's path is too long for a unix socket)."""
    run = Path(data_dir).resolve() / "gateway" / "run"
    if len(str(run / "api.sock")) > 100:  # sun_path holds 108 bytes
        run = Path(tempfile.mkdtemp(prefix="kl-gateway-"))
    run.mkdir(parents=True, exist_ok=True)
    run.chmod(0o700)
    sock = run / "api.sock"
    sock.unlink(missing_ok=True)  # left by a gateway that was killed
    return sock


async def serve(app: web.Application, settings: Settings, host: str = "127.0.0.1") -> None:
    """The aiohttp app on its unix socket, the front on ``settings.port``, until SIGTERM/SIGINT;
    then stop accepting, let in-flight requests finish (bounded), and close the gateway."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    use_json_errors(app)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()  # on_startup: the gateway starts, services are restored
    sock = management_socket(settings.data_dir)
    await web.UnixSite(runner, str(sock)).start()
    open_paths = frozenset(
        r.resource.canonical for r in app.router.routes()
        if isinstance(r.resource, web.PlainResource) and not r.resource.canonical.startswith("/apis")
    )
    front = Front(app["gateway"], str(sock), open_paths)
    await front.start(host, settings.port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
        await front.stop(SHUTDOWN_GRACE)
    finally:
        await runner.cleanup()  # on_cleanup: instances and the zygote stop
        sock.unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main())
