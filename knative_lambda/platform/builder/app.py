"""The builder process: a CloudEvent receiver plus a small read-only API.

    POST /                        build.start | job.start | rebuild.start (binary or structured);
                                  202 at once, the build runs in the background and its result
                                  is emitted through the broker. ``?wait=true`` answers with the
                                  result instead (direct callers, benchmarks).
    GET  /apis/v1/builds          builds in flight and recent ones (?correlation_id=, ?parser_id=)
    GET  /apis/v1/builds/{cid}    one build
    GET  /apis/v1/artifacts/{ref} an artifact's manifest by key, image tag or image URI

On start it registers trigger ``kl-builder`` with the broker (retried in the
background until the broker answers). ``/apis/`` is token-protected; ``POST /``
too when ``KL_RECEIVER_TOKEN=1`` (``kl up`` sets it and has the broker send the
token to this receiver, see broker/auth.py), else open for brokers that cannot.

Refusals: 429 with Retry-After past the build rate (``KL_BUILD_RATE``) or the
tenant's concurrent-build quota (``KL_QUOTA_CONCURRENT_BUILDS``, the message
names the tenant); the broker retries both, so the event is not lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from typing import Any

from aiohttp import web
from prometheus_client import Counter, Histogram

from knative_lambda.contract.bindings import from_http
from knative_lambda.contract.dedupe import Dedupe
from knative_lambda.contract.errors import ContractError
from knative_lambda.contract.events import (
    BUILD_REQUEST_KINDS,
    STATUS_SUCCEEDED,
    EventKind,
    event_type,
)
from knative_lambda.contract.validation import validate
from knative_lambda.errors import KLError
from knative_lambda.platform import logs, tracing
from knative_lambda.platform.broker.client import BrokerClient
from knative_lambda.platform.broker.triggers import trigger_object
from knative_lambda.platform.builder import metrics
from knative_lambda.platform.builder.artifact import absolute
from knative_lambda.platform.builder.config import BuilderConfig
from knative_lambda.platform.builder.emitter import Emitter, result_kind
from knative_lambda.platform.builder.service import Builder
from knative_lambda.platform.http import auth_middleware, use_json_errors
from knative_lambda.platform.limits import Quotas, TokenBucket, quota_problem, retry_after_header
from knative_lambda.settings import Settings

log = logging.getLogger("kl.builder")
TRIGGER_NAME = "kl-builder"
DEDUPE_KEEP = 10_000

QUOTA_RETRY_AFTER = 5.0  # seconds: about one short build
BUILDS = Counter("kl_builder_builds_total", "Build results", ["status", "cached"])
DURATION = Histogram(
    "kl_builder_build_seconds", "build.start to result", buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 120, 600, 1800)
)


def builder_trigger(settings: Settings, subscriber: str) -> dict[str, Any]:
    """Trigger kl-builder: any of the three request types, retried like the original platform."""
    kinds = sorted(k.value for k in BUILD_REQUEST_KINDS)
    return trigger_object(
        TRIGGER_NAME,
        subscriber,
        namespace=settings.namespace,
        filters=[{"any": [{"exact": {"type": event_type(EventKind(k), settings.event_prefix)}} for k in kinds]}],
        delivery={"retry": 5, "backoffPolicy": "exponential", "backoffDelay": "PT1S"},
        parallelism=50,
    )


class BuilderService:
    def __init__(self, settings: Settings, config: BuilderConfig, builder: Builder | None = None) -> None:
        self.settings = settings
        self.config = config
        self.builder = builder or Builder(settings, config)
        self.emitter = Emitter(settings)
        self.bucket = TokenBucket(config.rate_per_s, config.burst)
        self.quotas = Quotas.from_env()
        self.in_flight: dict[str, int] = {}  # accepted and not finished, per tenant (the quota)
        metrics.BUILD_QUEUE.set_function(lambda: self.builder.gate.waiting)
        metrics.BUILDS_RUNNING.set_function(lambda: self.builder.gate.running)
        self.seen = Dedupe(capacity=DEDUPE_KEEP)
        self.tasks: set[asyncio.Task[Any]] = set()
        self.trigger_state = "not registered"

    # ---------------------------------------------------------------- receiver

    async def receive(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            validated = validate(from_http(request.headers, body), self.settings.event_prefix)
        except ContractError as exc:
            metrics.CLOUDEVENTS.labels("invalid", "rejected").inc()
            return web.json_response(exc.to_dict(), status=400)
        etype = validated.event.get_type()
        if validated.kind not in BUILD_REQUEST_KINDS:
            metrics.CLOUDEVENTS.labels(etype, "rejected").inc()
            return web.json_response(
                {"error": f"the builder takes build.start, job.start and rebuild.start, not {validated.event.get_type()}"},
                status=400,
            )
        event = validated.event
        dedupe_key = (event.get_source(), event.get_id())
        if dedupe_key in self.seen:
            metrics.CLOUDEVENTS.labels(etype, "duplicate").inc()
            return web.json_response({"accepted": True, "duplicate": True}, status=202)
        wait = self.bucket.take(time.monotonic())
        if wait > 0:  # 429 is retried by the broker's delivery: the event is not lost
            metrics.CLOUDEVENTS.labels(etype, "rate_limited").inc()
            return web.json_response(
                {"error": f"build rate limit reached (KL_BUILD_RATE={self.config.rate_per_s:g}/s); retry later"},
                status=429,
                headers={"Retry-After": retry_after_header(wait)},
            )
        tenant = validated.model.third_party_id
        if problem := quota_problem(self.quotas, "concurrent_builds", tenant, self.in_flight.get(tenant, 0)):
            metrics.CLOUDEVENTS.labels(etype, "quota").inc()
            return web.json_response({"error": f"{problem}; retry later"}, status=429,
                                     headers={"Retry-After": retry_after_header(QUOTA_RETRY_AFTER)})
        metrics.CLOUDEVENTS.labels(etype, "accepted").inc()
        metrics.BUILD_REQUESTS.labels(validated.kind.value).inc()
        self.seen.first_time(*dedupe_key)  # only once accepted: a 429 must be redelivered
        cid = validated.correlation_id or ""
        self.in_flight[tenant] = self.in_flight.get(tenant, 0) + 1  # _run gives it back
        trace_ctx: dict[str, str] = {}
        with tracing.span_from(request.headers, "build.start", cid, tenant=tenant,
                               parser=validated.model.parser_id):
            tracing.inject(trace_ctx)  # the build continues this trace, in the background
        job = self._run(validated.model, validated.kind.value, cid, trace_ctx)
        if request.query.get("wait", "").lower() in ("1", "true", "yes"):
            return web.json_response(await job, status=200)
        task = asyncio.create_task(job)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return web.json_response({"accepted": True, "correlation_id": cid}, status=202)

    async def _run(self, request: Any, kind: str, cid: str, trace_ctx: dict[str, str] | None = None
                   ) -> dict[str, Any]:
        try:
            with tracing.span_from(trace_ctx or {}, "build", cid, kind=kind):
                result = await self.builder.handle(request, kind, cid or None)
        finally:
            left = self.in_flight.get(request.third_party_id, 1) - 1
            if left > 0:
                self.in_flight[request.third_party_id] = left
            else:
                self.in_flight.pop(request.third_party_id, None)
        data = result.to_dict()
        BUILDS.labels(result.status, str(result.cached).lower()).inc()
        DURATION.observe(result.duration)
        metrics.BUILD_DURATION.labels(result.status).observe(result.duration)
        if result.status == STATUS_SUCCEEDED:
            metrics.BUILD_SUCCESS.labels(str(result.cached).lower()).inc()
        else:
            metrics.BUILD_FAILURE.labels(result.status).inc()
        record = self.builder.log.get(result.correlation_id)
        kind_out = result_kind(result.status).value
        try:
            # the result event's ingress and delivery continue this trace (the client sends traceparent)
            with tracing.span_from(trace_ctx or {}, kind_out, result.correlation_id, status=result.status):
                data["event_type"] = await self.emitter.emit(result.to_dict())
            metrics.CLOUDEVENTS.labels(data["event_type"], "emitted").inc()
        except KLError as exc:
            log.error("build result for %s/%s not emitted: %s", result.third_party_id, result.parser_id, exc)
            data["emit_error"] = str(exc)
            metrics.CLOUDEVENTS.labels(kind_out, "emit_failed").inc()
        logs.decision("build", outcome=result.status, tenant=result.third_party_id, parser=result.parser_id,
                      content_hash=result.content_hash, cached=result.cached, duration=result.duration,
                      error=result.error_message or None, emitted=data.get("event_type"),
                      correlation_id=result.correlation_id)
        if record is not None and record.result is not None:
            record.result.update({k: data[k] for k in ("event_type", "emit_error") if k in data})
        log.info("%s %s/%s %s %.3fs%s", data.get("event_type", result.status), result.third_party_id,
                 result.parser_id, result.content_hash, result.duration, " (cached)" if result.cached else "")
        return data

    # ---------------------------------------------------------------- read API

    async def builds(self, request: web.Request) -> web.Response:
        items = self.builder.log.list()
        for field in ("correlation_id", "parser_id", "third_party_id"):
            if value := request.query.get(field):
                items = [i for i in items if i[field] == value]
        gate = self.builder.gate
        return web.json_response(
            {"running": gate.running, "queued": gate.waiting, "peak": gate.peak, "limit": gate.limit,
             "builds_done": self.builder.builds_done, "trigger": self.trigger_state, "items": items}
        )

    async def build(self, request: web.Request) -> web.Response:
        record = self.builder.log.get(request.match_info["cid"])
        if record is None:
            return web.json_response({"error": "no such build (finished builds are kept for a while)"}, status=404)
        return web.json_response(record.to_dict())

    async def artifact(self, request: web.Request) -> web.Response:
        ref = request.match_info["ref"]
        found = self.builder.store.resolve(ref)
        if found is None:
            return web.json_response({"error": f"no artifact {ref!r}: build it first (kl build)"}, status=404)
        key, manifest = found
        return web.json_response(absolute(manifest, self.builder.store.path(key)))

    # ---------------------------------------------------------------- lifecycle

    async def register_trigger(self, attempts: int = 120, delay: float = 0.5) -> None:
        if not self.settings.broker_url:
            self.trigger_state = "no broker URL"
            return
        subscriber = (self.settings.builder_url or f"http://127.0.0.1:{self.settings.port}").rstrip("/") + "/"
        client = BrokerClient(self.settings.broker_url, self.settings.token, namespace=self.settings.namespace, retries=1)
        try:
            for _ in range(attempts):
                try:
                    await asyncio.to_thread(client.put_trigger, builder_trigger(self.settings, subscriber))
                    self.trigger_state = "registered"
                    log.info("trigger %s registered -> %s", TRIGGER_NAME, subscriber)
                    return
                except KLError as exc:
                    self.trigger_state = f"not registered: {exc}"
                await asyncio.sleep(delay)
            log.error("trigger %s not registered: %s", TRIGGER_NAME, self.trigger_state)
        finally:
            client.close()

    async def readyz(self, _: web.Request) -> web.Response:
        """Ready once its trigger is registered: before that, build events would be lost."""
        ready = self.trigger_state == "registered"
        return web.json_response({"ready": ready, "trigger": self.trigger_state},
                                 status=200 if ready else 503)

    async def on_startup(self, _: web.Application) -> None:
        task = asyncio.create_task(self.register_trigger())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def on_cleanup(self, _: web.Application) -> None:
        for task in list(self.tasks):
            task.cancel()
        for task in list(self.tasks):
            with contextlib.suppress(BaseException):
                await task
        await self.emitter.aclose()


SERVICE_KEY = web.AppKey("builder", BuilderService)


def make_app(settings: Settings, config: BuilderConfig | None = None, builder: Builder | None = None) -> web.Application:
    service = BuilderService(settings, config or BuilderConfig.from_env(), builder)
    protected = ("/",) if os.environ.get("KL_RECEIVER_TOKEN") == "1" else ("/apis/",)
    app = web.Application(middlewares=[auth_middleware(settings.token, protected)], client_max_size=16 * 1024 * 1024)
    use_json_errors(app)
    app[SERVICE_KEY] = service
    app.router.add_post("/", service.receive)
    app.router.add_get("/readyz", service.readyz)
    app.router.add_get("/apis/v1/builds", service.builds)
    app.router.add_get("/apis/v1/builds/{cid}", service.build)
    app.router.add_get("/apis/v1/artifacts/{ref:.+}", service.artifact)
    app.on_startup.append(service.on_startup)
    app.on_cleanup.append(service.on_cleanup)
    return app
