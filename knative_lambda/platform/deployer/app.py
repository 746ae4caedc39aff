"""The deployer process: a CloudEvent receiver at ``POST /``.

    decode + validate (400 on a contract breach: retrying cannot fix it)
    -> dedupe on (source, id) (a redelivery of an applied event answers 200)
    -> decide (pure) -> execute (HTTP) -> 200, or 503 when a part failed,
       so that the broker retries and nothing is lost.

Events for one service are handled one at a time (a lock per service name), so
two quick rebuilds reach the gateway in the order they arrived. At start the
deployer registers its own triggers (build.complete, service.delete -> itself).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from prometheus_client import Counter

from knative_lambda.contract import bindings
from knative_lambda.contract.dedupe import Dedupe
from knative_lambda.contract.errors import ContractError
from knative_lambda.contract.validation import validate
from knative_lambda.errors import ConfigError, PlatformError, ServiceUnavailable
from knative_lambda.platform import logs, tracing
from knative_lambda.platform.deployer import manifests
from knative_lambda.platform.deployer.decide import (
    ApplyService,
    DeleteService,
    DeployerConfig,
    Reject,
    decide,
)
from knative_lambda.platform.deployer.service import (
    DownstreamRejected,
    Executor,
    LocalExecutor,
    execute,
)
from knative_lambda.settings import Settings

log = logging.getLogger("kl.deployer")

EVENTS = Counter("kl_deployer_events_total", "Events handled by the deployer", ["outcome"])

EXECUTOR_KEY = web.AppKey("executor", object)
STATE_KEY = web.AppKey("state", object)


MODES = ("local", "kubernetes")


@dataclass(frozen=True)
class DeployerOptions:
    """The deployer's own knobs (``KL_DEPLOYER_*``), beside the shared Settings."""

    register_timeout: float = 30.0  # how long to keep trying to register the triggers
    register_triggers: bool = True
    mode: str = "local"  # local: gateway + broker HTTP APIs; kubernetes: Knative objects
    self_url: str = ""  # where the broker reaches this process; default http://127.0.0.1:<port>/
    # the functions' trigger delivery backoff (ISO-8601); DESIGN's PT1S unless tests shorten it
    backoff_delay: str = manifests.DEFAULT_DELIVERY.backoff_delay
    # the functions' autoscaling.knative.dev/window (DESIGN: 10s); "none" leaves it to the
    # gateway's stable-window, which a bench profile may set below Knative's 6 s minimum
    window: str | None = manifests.DEFAULT_AUTOSCALING.window

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> DeployerOptions:
        env = dict(os.environ if env is None else env)
        try:
            timeout = float(env.get("KL_DEPLOYER_REGISTER_TIMEOUT", "30") or 30)
        except ValueError:
            raise ConfigError("KL_DEPLOYER_REGISTER_TIMEOUT must be a number of seconds") from None
        mode = env.get("KL_DEPLOYER_MODE", "local") or "local"
        if mode not in MODES:
            raise ConfigError(f"KL_DEPLOYER_MODE={mode!r}: use one of {', '.join(MODES)}")
        return cls(
            mode=mode,
            register_timeout=timeout,
            register_triggers=env.get("KL_DEPLOYER_REGISTER", "1") not in ("0", "false", "no"),
            self_url=env.get("KL_DEPLOYER_URL", ""),
            backoff_delay=env.get("KL_DEPLOYER_BACKOFF_DELAY") or cls.backoff_delay,
            window=_window(env.get("KL_DEPLOYER_WINDOW") or cls.window),
        )


def _window(value: str | None) -> str | None:
    return None if value is None or value.lower() == "none" else value


class _State:
    def __init__(self, settings: Settings, config: DeployerConfig) -> None:
        self.settings = settings
        self.config = config
        self.dedupe = Dedupe(capacity=10_000)
        self.locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self.handled = 0


def deployer_config(settings: Settings, mode: str = "local",
                    options: DeployerOptions | None = None) -> DeployerConfig:
    options = options or DeployerOptions()
    # On Kubernetes the function's trigger references its Knative Service.
    return DeployerConfig(
        prefix=settings.event_prefix,
        namespace=settings.namespace,
        gateway_url=settings.gateway_url if mode == "local" else "",
        delivery=dataclasses.replace(manifests.DEFAULT_DELIVERY, backoff_delay=options.backoff_delay),
        autoscaling=dataclasses.replace(manifests.DEFAULT_AUTOSCALING, window=options.window),
    )


def own_triggers(settings: Settings, self_url: str) -> list[dict[str, Any]]:
    """build.complete and service.delete -> this process."""
    return manifests.deployer_triggers(
        manifests.uri_subscriber(self_url),
        namespace=settings.namespace,
        prefix=settings.event_prefix,
    )


def _service_of(actions: list[Any]) -> str:
    for action in actions:
        if isinstance(action, ApplyService | DeleteService):
            return f"{action.namespace}/{action.name}"
    return ""


async def receive(request: web.Request) -> web.Response:
    """A delivered event; traced as ``deploy`` when the broker sent a traceparent."""
    if "traceparent" not in request.headers:
        return await _receive(request)
    span = tracing.start_span(request.headers, "deploy", request.headers.get("ce-correlationid", ""),
                              type=request.headers.get("ce-type", ""))
    try:
        response = await _receive(request)
        span.set_attribute("http.status_code", response.status)
        return response
    finally:
        span.end()


async def _receive(request: web.Request) -> web.Response:
    state: _State = request.app[STATE_KEY]  # type: ignore[assignment]
    executor: Executor = request.app[EXECUTOR_KEY]  # type: ignore[assignment]
    body = await request.read()
    try:
        event = bindings.from_http(request.headers, body)  # the multi-dict: duplicates show
        validate(event, state.config.prefix)
    except ContractError as e:
        EVENTS.labels("rejected").inc()
        return web.json_response(e.to_dict(), status=400)
    attrs = event.get_attributes()
    source, event_id = str(attrs.get("source")), str(attrs.get("id"))
    if (source, event_id) in state.dedupe:
        EVENTS.labels("duplicate").inc()
        return web.json_response({"duplicate": True, "done": []})
    actions = decide(str(attrs.get("type")), event.get_data(), state.config)
    rejected = [a for a in actions if isinstance(a, Reject)]
    if rejected:
        EVENTS.labels("rejected").inc()
        problems = [p.to_dict() for r in rejected for p in r.problems]
        return web.json_response({"error": rejected[0].reason, "problems": problems}, status=400)
    try:
        async with state.locks[_service_of(actions)]:
            done = await execute(actions, executor)
    except DownstreamRejected as e:
        # The gateway/broker refused the object: a redelivery would be refused
        # again, so answer 400 and let the broker dead-letter it with the reason.
        EVENTS.labels("rejected").inc()
        log.warning("deployer: %s", e)
        logs.decision("deploy", type=str(attrs.get("type")), service=_service_of(actions), outcome="rejected",
                      error=str(e), correlation_id=str(attrs.get("correlationid") or ""))
        problems = e.body.get("problems", []) if isinstance(e.body, dict) else []
        return web.json_response({"error": str(e), "problems": problems}, status=400)
    except PlatformError as e:
        EVENTS.labels("failed").inc()
        log.warning("deployer: %s (the broker will redeliver)", e)
        return web.json_response({"error": str(e)}, status=503)
    state.dedupe.first_time(source, event_id)  # only once applied: a failure must be retried
    state.handled += 1
    EVENTS.labels("applied").inc()
    logs.decision("deploy", type=str(attrs.get("type")), service=_service_of(actions), done=done,
                  correlation_id=str(attrs.get("correlationid") or ""))
    return web.json_response({"done": done})


async def register_triggers(
    executor: LocalExecutor, triggers: list[dict[str, Any]], timeout: float
) -> None:
    """PUT each trigger, retrying until ``timeout`` (the broker may still be starting)."""
    deadline = time.monotonic() + timeout
    delay = 0.05
    for trigger in triggers:
        while True:
            try:
                await executor.put_trigger(trigger)
                break
            except PlatformError as e:
                if time.monotonic() + delay > deadline:
                    raise ServiceUnavailable(
                        f"deployer cannot register its triggers with the broker: {e}"
                    ) from None
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)


def create_app(
    settings: Settings,
    options: DeployerOptions | None = None,
    executor: Any | None = None,
) -> web.Application:
    """The deployer's aiohttp application (``run_app`` adds /healthz and /metrics)."""
    from knative_lambda.platform.http import auth_middleware, use_json_errors

    options = options or DeployerOptions.from_env()
    config = deployer_config(settings, options.mode, options)
    if executor is None and options.mode == "kubernetes":
        from knative_lambda.platform.deployer.kube import KubeExecutor

        executor = KubeExecutor()
    executor = executor or LocalExecutor(
        settings.gateway_url, settings.broker_url, settings.token, builder_url=settings.builder_url
    )
    # POST / takes the token too when the broker sends it (KL_RECEIVER_TOKEN=1, set by kl up;
    # see broker/auth.py): else anyone on the machine could deploy or delete services.
    protected = ("/",) if os.environ.get("KL_RECEIVER_TOKEN") == "1" else ("/apis",)
    app = web.Application(
        middlewares=[auth_middleware(settings.token, protected)], client_max_size=2 * 1024**2
    )
    use_json_errors(app)
    app[STATE_KEY] = _State(settings, config)
    app[EXECUTOR_KEY] = executor
    app.router.add_post("/", receive)

    async def on_startup(_: web.Application) -> None:
        # On Kubernetes the deployer's triggers are static manifests (kind.platform_triggers).
        if options.mode == "local" and options.register_triggers and settings.broker_url:
            self_url = options.self_url or f"http://127.0.0.1:{settings.port}/"
            await register_triggers(
                executor, own_triggers(settings, self_url), options.register_timeout
            )
            log.info("deployer: triggers registered -> %s", self_url)

    async def on_cleanup(_: web.Application) -> None:
        await executor.close()

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    return app
