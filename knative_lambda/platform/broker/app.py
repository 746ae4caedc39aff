"""The broker process: ingress + trigger API + one dispatcher per trigger, in one aiohttp app.

The port is served by the front server (platform/front.py): ``POST /{namespace}/{broker}``
is answered there by the ingress (:meth:`Ingress.handle_raw`); everything else goes to the
aiohttp application on a private unix socket (``<KL_DATA_DIR>/broker/run/api.sock``).
On a machine with two CPUs or more that front runs in ingress worker processes instead,
so that ingress and dispatch each have a core (workers.py, ``KL_BROKER_INGRESS_WORKERS``).

Routes (all behind the bearer token when ``KL_TOKEN`` is set):

    POST   /{namespace}/{broker}                          ingress (see ingress.py)
    PUT    /apis/v1/namespaces/{ns}/triggers/{name}       create/update (a Knative Trigger)
    GET    /apis/v1/namespaces/{ns}/triggers/{name}       one trigger with counts
    DELETE /apis/v1/namespaces/{ns}/triggers/{name}       stop and delete its queues
    GET    /apis/v1/triggers                              every trigger with counts

Trigger objects are stored under ``<data_dir>/broker/triggers`` and restored at
start. The RabbitMQ connection is robust: after a RabbitMQ restart it reconnects
and re-opens the publisher and consumer channels by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import sys
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aio_pika.abc import AbstractRobustConnection
from aiohttp import web

from knative_lambda.errors import KLError, ServiceUnavailable
from knative_lambda.platform.broker import topology
from knative_lambda.platform.broker.auth import delivery_headers, trusted_prefixes
from knative_lambda.platform.broker.config import BrokerConfig
from knative_lambda.platform.broker.dispatcher import TriggerConsumer
from knative_lambda.platform.broker.ingress import Ingress, routes
from knative_lambda.platform.broker.metrics import TriggerCounts
from knative_lambda.platform.broker.publisher import Publisher
from knative_lambda.platform.broker.store import TriggerStore
from knative_lambda.platform.broker.triggers import TriggerSpec, TriggerSpecError, parse_trigger
from knative_lambda.platform.broker.workers import IngressWorkers, shutdown_grace
from knative_lambda.platform.front import serve, too_large
from knative_lambda.platform.http import auth_middleware
from knative_lambda.platform.limits import RateLimiter, management_middleware
from knative_lambda.platform.upstream import Pool
from knative_lambda.settings import Settings

log = logging.getLogger("kl.broker")


@dataclass
class TriggerState:
    spec: TriggerSpec
    consumer: TriggerConsumer | None = None
    counts: TriggerCounts = field(default_factory=TriggerCounts)


class BrokerServer:
    def __init__(self, settings: Settings, config: BrokerConfig | None = None) -> None:
        self.settings = settings
        self.config = config or BrokerConfig.from_env()
        self.store = TriggerStore(settings.data_dir)
        self.token_subscribers = trusted_prefixes()  # receivers that get the token (auth.py)
        self.brokers: set[tuple[str, str]] = {topology.DEFAULT_BROKER}
        self.triggers: dict[str, TriggerState] = {}
        self.connection: AbstractRobustConnection | None = None  # consumers and declarations
        # Publishing has its own connection (RabbitMQ's advice): flow control that
        # throttles publishers then never stalls the consumers' acks, and the two
        # streams do not queue behind each other in one socket.
        self.publish_connection: AbstractRobustConnection | None = None
        self.publisher: Publisher | None = None
        self.session: aiohttp.ClientSession | None = None  # https:// deliveries
        # http:// deliveries: keep-alive connections per subscriber host
        self.pool = Pool(limit=self.config.http_connections)
        self._lock = asyncio.Lock()  # trigger changes, one at a time
        self.ingress = Ingress(
            lambda: self.publisher, self.known_broker, settings.event_prefix, self.config.max_event_bytes
        )
        self.ingress.token = settings.token

    def known_broker(self, namespace: str, broker: str) -> bool:
        return (namespace, broker) in self.brokers

    # --- lifecycle --------------------------------------------------------------

    async def start(self) -> None:
        if not self.settings.amqp_url:
            raise ServiceUnavailable("KL_AMQP_URL is not set: the broker needs RabbitMQ (run kl up)")
        self.connection = await topology.connect(self.settings.amqp_url, self.config.reconnect_interval)
        self.publish_connection = await topology.connect(self.settings.amqp_url, self.config.reconnect_interval)
        self.publisher = Publisher(
            self.publish_connection, self.config.publish_channels, self.config.publish_timeout
        )
        await self.publisher.start()
        connector = aiohttp.TCPConnector(limit=self.config.http_connections, limit_per_host=0)
        self.session = aiohttp.ClientSession(connector=connector)
        await self._declare_broker(*topology.DEFAULT_BROKER)
        for namespace, name, obj in self.store.load():
            try:
                await self.put_trigger(namespace, name, obj, persist=False)
            except TriggerSpecError as exc:
                log.warning("stored trigger %s/%s skipped: %s", namespace, name, exc)
            except Exception as exc:  # noqa: BLE001 - one bad stored trigger must never block the start
                # The file stays on disk: a PUT replaces it, a later start retries it.
                log.warning("stored trigger %s/%s skipped (%s: %s)", namespace, name, type(exc).__name__, exc)
        loop = type(asyncio.get_running_loop()).__module__.split(".")[0]
        log.info("broker ready (%s loop): %d trigger(s) restored", loop, len(self.triggers))
        # Long-lived startup objects (modules, the OpenTelemetry SDK, aio-pika) out of the
        # collector's way: a full collection scanning them paused the event loop ~30 ms.
        gc.collect()
        gc.freeze()

    async def stop(self) -> None:
        for state in self.triggers.values():
            if state.consumer is not None:
                await state.consumer.stop()
        if self.publisher is not None:
            with contextlib.suppress(Exception):
                await self.publisher.close()
        if self.session is not None:
            await self.session.close()
        self.pool.close()
        for conn in (self.publish_connection, self.connection):
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.close()

    async def _declare_broker(self, namespace: str, broker: str) -> None:
        assert self.connection is not None
        async with self.connection.channel(publisher_confirms=False) as ch:
            await topology.declare_exchange(ch, namespace, broker)
        self.brokers.add((namespace, broker))

    # --- triggers -----------------------------------------------------------------

    async def put_trigger(
        self, namespace: str, name: str, obj: Any, persist: bool = True
    ) -> tuple[TriggerState, bool]:
        """Create or update; returns (state, created). Same spec again = no change."""
        spec = parse_trigger(obj, namespace, name)
        async with self._lock:
            old = self.triggers.get(spec.key)
            if old is not None and old.spec == spec and old.consumer is not None:
                return old, False
            assert self.connection is not None and self.publisher is not None and self.session
            if old is not None and old.consumer is not None:
                await old.consumer.stop()  # unacked messages go back to the queue
                old.consumer = None  # if the rest fails (503), a repeated PUT starts it again
            if old is not None and old.spec.broker != spec.broker:
                await topology.delete_queues(
                    self.connection,
                    topology.queue_name(namespace, old.spec.broker, name),
                    topology.dlq_name(namespace, old.spec.broker, name),
                )
                old = None
            await self._declare_broker(namespace, spec.broker)
            qname = topology.queue_name(namespace, spec.broker, name)
            quorum = self.config.queue_type == "quorum"
            args = await topology.ensure_queue(self.connection, qname, quorum)
            await topology.ensure_queue(
                self.connection, topology.dlq_name(namespace, spec.broker, name), quorum
            )
            old_key = topology.binding_key(_required_type(old.spec)) if old else None
            await topology.rebind(
                self.connection,
                qname,
                topology.exchange_name(namespace, spec.broker),
                old_key,
                topology.binding_key(_required_type(spec)),
            )
            if persist:
                self.store.save(namespace, name, obj)
            state = TriggerState(spec, counts=old.counts if old else TriggerCounts())
            state.consumer = TriggerConsumer(
                spec, self.connection, self.publisher, self.session, state.counts, args,
                self.config.attempt_timeout,
                auth=delivery_headers(spec.subscriber, self.settings.token, self.token_subscribers),
                pool=self.pool,
            )
            await state.consumer.start()
            self.triggers[spec.key] = state
            log.info("trigger %s %s", spec.key, "updated" if old else "created")
            return state, old is None

    async def delete_trigger(self, namespace: str, name: str) -> bool:
        """Stop the dispatcher and delete the trigger's queues; False if there is no such trigger.

        The queues go first: if RabbitMQ is away the call fails (503), the trigger
        stays listed (without a dispatcher) and a repeated DELETE finishes the job.
        """
        async with self._lock:
            state = self.triggers.get(f"{namespace}/{name}")
            if state is None:
                self.store.delete(namespace, name)
                return False
            if state.consumer is not None:
                await state.consumer.stop()
                state.consumer = None
            assert self.connection is not None
            await topology.delete_queues(
                self.connection,
                topology.queue_name(namespace, state.spec.broker, name),
                topology.dlq_name(namespace, state.spec.broker, name),
            )
            del self.triggers[state.spec.key]
            self.store.delete(namespace, name)
            return True

    async def describe(self, state: TriggerState) -> dict[str, Any]:
        spec = state.spec
        q = topology.queue_name(spec.namespace, spec.broker, spec.name)
        dlq = topology.dlq_name(spec.namespace, spec.broker, spec.name)
        depth = dlq_depth = None
        if self.connection is not None:
            depth = await topology.queue_depth(self.connection, q)
            dlq_depth = await topology.queue_depth(self.connection, dlq)
        return {
            "namespace": spec.namespace,
            "name": spec.name,
            "broker": spec.broker,
            "subscriber": spec.subscriber,
            "filter": spec.describe_filter(),
            "parallelism": spec.parallelism,
            "delivery": spec.to_dict()["delivery"],
            "queue": q,
            "dead_letter_queue": dlq,
            "queue_depth": depth,
            "dead_letter_depth": dlq_depth,
            **state.counts.to_dict(),
        }


def _required_type(spec: TriggerSpec) -> str | None:
    from knative_lambda.platform.broker.filters import required_type

    return required_type(spec.attributes, spec.filters)


# --- HTTP ---------------------------------------------------------------------------

SERVER_KEY = web.AppKey("broker", BrokerServer)


def _problems(exc: TriggerSpecError) -> web.Response:
    return web.json_response({"error": str(exc), "problems": exc.problem_dicts()}, status=400)


async def _put_trigger(request: web.Request) -> web.Response:
    server = request.app[SERVER_KEY]
    try:
        obj = json.loads(await request.read())
    except (ValueError, RecursionError) as exc:  # RecursionError: nested deeper than Python recurses
        reason = "invalid JSON: nested too deeply" if isinstance(exc, RecursionError) else "invalid JSON"
        return web.json_response(
            {"error": f"body must be a JSON Knative Trigger object: {reason}", "problems": [
                {"where": "body", "reason": reason}]},
            status=400,
        )
    ns, name = request.match_info["namespace"], request.match_info["name"]
    try:
        state, created = await server.put_trigger(ns, name, obj)
    except TriggerSpecError as exc:
        return _problems(exc)
    except Exception as exc:  # RabbitMQ away mid-change; the caller retries (PUT is idempotent)
        log.warning("trigger %s/%s: %s", ns, name, exc)
        return web.json_response({"error": f"RabbitMQ unavailable: {exc}; retry"}, status=503)
    return web.json_response(await server.describe(state), status=201 if created else 200)


async def _get_trigger(request: web.Request) -> web.Response:
    server = request.app[SERVER_KEY]
    ns, name = request.match_info["namespace"], request.match_info["name"]
    state = server.triggers.get(f"{ns}/{name}")
    if state is None:
        return web.json_response({"error": f"no trigger {ns}/{name}"}, status=404)
    return web.json_response(await server.describe(state))


async def _delete_trigger(request: web.Request) -> web.Response:
    server = request.app[SERVER_KEY]
    ns, name = request.match_info["namespace"], request.match_info["name"]
    try:
        found = await server.delete_trigger(ns, name)
    except Exception as exc:
        return web.json_response({"error": f"RabbitMQ unavailable: {exc}; retry"}, status=503)
    if not found:
        return web.json_response({"error": f"no trigger {ns}/{name}"}, status=404)
    return web.json_response({"deleted": f"{ns}/{name}"})


async def _list_triggers(request: web.Request) -> web.Response:
    server = request.app[SERVER_KEY]
    ns = request.match_info.get("namespace")
    states = [s for s in server.triggers.values() if ns is None or s.spec.namespace == ns]
    items = [await server.describe(s) for s in sorted(states, key=lambda s: s.spec.key)]
    return web.json_response({"items": items})


def build_app(settings: Settings, config: BrokerConfig | None = None) -> web.Application:
    server = BrokerServer(settings, config)
    app = web.Application(
        # trigger changes: rate limited ("manage" in KL_RATE_LIMITS) and size limited (413)
        # (run_app puts platform.http.json_errors outermost: aiohttp's own 404/405/413 as JSON)
        middlewares=[auth_middleware(settings.token), management_middleware(RateLimiter())],
        client_max_size=server.config.max_event_bytes,
    )
    app[SERVER_KEY] = server
    base = "/apis/v1/namespaces/{namespace}/triggers"
    app.router.add_get("/apis/v1/triggers", _list_triggers)
    app.router.add_get(base, _list_triggers)
    app.router.add_put(base + "/{name}", _put_trigger)
    app.router.add_get(base + "/{name}", _get_trigger)
    app.router.add_delete(base + "/{name}", _delete_trigger)
    app.router.add_post("/{namespace}/{broker}", server.ingress.handle)

    async def lifecycle(app: web.Application):
        await server.start()
        yield
        await server.stop()

    app.cleanup_ctx.append(lifecycle)
    return app


def main() -> None:
    try:
        import uvloop  # optional: roughly doubles the event loop's throughput

        uvloop.install()
    except ImportError:
        pass
    try:
        settings = Settings.from_env()
        config = BrokerConfig.from_env()
    except KLError as exc:
        sys.exit(f"broker: {exc}")
    from knative_lambda.platform.observe import setup_process

    setup_process("broker", settings)
    app = build_app(settings, config)
    server = app[SERVER_KEY]
    limit = config.max_event_bytes
    # in-flight publishes get their confirm (or publish timeout) before the dispatchers stop
    grace = shutdown_grace(config)
    delegate = IngressWorkers(config.ingress_workers, grace).start if config.ingress_workers else None
    try:
        asyncio.run(serve(app, "broker", settings.port, settings.data_dir, limit, routes(server.ingress),
                          server.ingress.too_large(too_large(limit)), grace=grace, delegate=delegate))
    except (KLError, OSError) as exc:  # RabbitMQ away, port taken: one clear line, no traceback
        log.error("broker cannot serve: %s", exc)
        sys.exit(1)
