"""The gateway: Knative's ingress, activator and queue-proxy roles in one asyncio process.

Per request (the hot path): route by Host ``<service>.<namespace>.<domain>`` or
path ``/<namespace>/<service>/...``, take a slot on the least-loaded ready
instance of the serving revision (containerConcurrency per instance), proxy over
a pooled keep-alive connection, release the slot.

When no slot is free the request waits in the revision's bounded FIFO buffer
(past the bound: 503; past the buffer timeout: 504; JSON bodies saying which)
and the autoscaler is poked at once instead of at the next tick, so 0 -> 1
costs a fork, not a tick. Slots freed and instances becoming ready release the
buffer in order. A request whose instance dies before answering is retried
once on another instance.

Scaling: every tick (and on a poke) the revision's concurrency average since
the last sample goes into its MetricWindow, :func:`autoscaler.decide` returns
the desired count, and :meth:`Gateway._reconcile` starts or drains instances.
A draining instance gets no new requests and is stopped when idle.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import aiohttp

from knative_lambda.platform import logs, tracing
from knative_lambda.platform.front import HEAD_DROP, HOP_BY_HOP, RESP_DROP, Reply, error_reply
from knative_lambda.platform.limits import Quotas, RateLimiter, quota_problem
from knative_lambda.platform.runtime import loader
from knative_lambda.platform.serving import metrics, tenancy
from knative_lambda.platform.serving.autoscaler import Sample, decide
from knative_lambda.platform.serving.config import AutoscalerConfig
from knative_lambda.platform.serving.instances import Launcher, LaunchError
from knative_lambda.platform.serving.model import (
    DRAINING,
    READY,
    STARTING,
    STOPPED,
    Instance,
    Revision,
    RevisionSpec,
    Service,
    Timeline,
)
from knative_lambda.platform.store import JsonStore
from knative_lambda.platform.upstream import Pool

log = logging.getLogger("kl.gateway")

MAX_BODY = 32 * 1024 * 1024  # a request body, as aiohttp's client_max_size was


@dataclass(frozen=True)
class GatewayOptions:
    domain: str = "127.0.0.1.sslip.io"
    queue_limit: int = 5000  # buffered requests per revision
    buffer_timeout: float = 60.0  # seconds a request may wait for an instance
    memory_limit_mb: int | None = None  # override for every revision (None: the revision's)
    poke_interval: float = 0.02  # at most one out-of-tick autoscaler run per revision per this
    # The wrapper reports ready in-band after loading the function and listening;
    # an extra HTTP GET /readyz costs a round trip on every cold start, so it is opt-in.
    http_probe: bool = False

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> GatewayOptions:
        env = dict(os.environ if env is None else env)
        mem = env.get("KL_INSTANCE_MEMORY_MB")
        return cls(
            domain=env.get("KL_DOMAIN", cls.domain),
            queue_limit=int(env.get("KL_GATEWAY_QUEUE_LIMIT", cls.queue_limit)),
            buffer_timeout=float(env.get("KL_GATEWAY_BUFFER_TIMEOUT", cls.buffer_timeout)),
            memory_limit_mb=int(mem) if mem else None,
            http_probe=env.get("KL_GATEWAY_READINESS_PROBE", "") in ("1", "true"),
        )


class BufferFull(Exception):
    pass


class BufferTimeout(Exception):
    pass


class RevisionFailed(Exception):
    pass


class Gateway:
    def __init__(
        self,
        base_config: AutoscalerConfig,
        launcher: Launcher,
        options: GatewayOptions | None = None,
        data_dir: Path | None = None,
    ) -> None:
        self.base_config = base_config
        self.launcher = launcher
        self.options = options or GatewayOptions()
        self.data_dir = data_dir or Path(".kl")
        self.services: dict[tuple[str, str], Service] = {}
        # the PUT documents of live services, replayed by api.restore after a restart
        self.store = JsonStore(self.data_dir / "gateway" / "services")
        self.timeline = Timeline()
        self.session: aiohttp.ClientSession | None = None  # management-side calls (readiness probe)
        self.pool = Pool()  # the data plane's keep-alive connections to instances
        self._ids = itertools.count(1)
        self._rid = itertools.count(1)
        self._rid_prefix = f"{os.getpid():x}"
        self._tasks: set[asyncio.Task] = set()
        self._ticker: asyncio.Task | None = None
        self.quotas = Quotas.from_env()
        self.limiter = RateLimiter()
        self.tenants: dict[tuple[str, str], str] = {}  # (namespace, service) -> third_party_id
        self._capped: set[str] = set()  # revisions held back by their tenant's instance quota
        metrics.register(self)

    # --- lifecycle -----------------------------------------------------------

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=30.0, enable_cleanup_closed=True)
        self.session = aiohttp.ClientSession(
            connector=connector, auto_decompress=False, skip_auto_headers=("User-Agent",)
        )
        with contextlib.suppress(LaunchError):
            await self.launcher.zygote.ensure()  # so the first cold start is a fork, not a boot
        self._ticker = asyncio.get_running_loop().create_task(self._tick_loop())
        gc.collect()
        gc.freeze()  # long-lived startup objects out of the collector's way: shorter GC pauses on requests

    async def close(self) -> None:
        if self._ticker:
            self._ticker.cancel()
        for svc in list(self.services.values()):
            self._remove_service(svc, "gateway stopping", force=True)
        await asyncio.sleep(0)
        for t in list(self._tasks):
            t.cancel()
        await self.launcher.close()
        self.pool.close()
        if self.session:
            await self.session.close()

    def _spawn(self, coro: Any) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # --- management (called by api.py) ---------------------------------------

    def resolve_artifact(self, ref: str) -> tuple[Path | None, str | None]:
        """An artifact directory from a path or a builder artifact key."""
        for candidate in (Path(ref), self.data_dir / "artifacts" / ref):
            try:
                if candidate.is_dir():
                    return candidate.resolve(), loader.read_artifact(candidate).runtime
            except (loader.FunctionLoadError, OSError, ValueError):  # e.g. a name too long
                return None, None
        return None, None

    def apply(self, namespace: str, name: str, spec: RevisionSpec, config: AutoscalerConfig) -> tuple[Service, bool]:
        """Create or update a service; a new revision unless the spec equals the latest's."""
        svc = self.services.get((namespace, name))
        if svc is None:
            svc = Service(namespace, name)
            self.services[(namespace, name)] = svc
        latest = svc.revisions.get(svc.latest or "")
        if latest is not None and ((spec.name and latest.spec.name == spec.name) or latest.spec.same_as(spec)):
            return svc, False
        if not spec.name:  # Knative's naming: <service>-<generation, 5 digits>
            spec = RevisionSpec(**{**spec.__dict__, "name": f"{name}-{svc.generation + 1:05d}"})
        if spec.name in svc.revisions:  # same name, different content: keep names unique
            spec = RevisionSpec(**{**spec.__dict__, "name": f"{spec.name}-{svc.generation + 1}"})
        rev = Revision(namespace, name, spec, config)
        for other in svc.revisions.values():  # a superseded revision that never got traffic is not routed
            if other.name != svc.traffic:
                other.routable = False
        svc.revisions[spec.name] = rev
        svc.latest = spec.name
        svc.generation += 1
        self.timeline.record("revision_created", name, namespace=namespace, revision=spec.name)
        self._scale(rev, time.monotonic(), sample=False)  # initial scale starts the first instance
        return svc, True

    def admit(self, namespace: str, name: str, tenant: str) -> tuple[int, str, float]:
        """May ``tenant`` create or update this service now? ``(0, "", 0)`` if so, else
        (status, one-line reason, Retry-After seconds): 429 past the deploy rate, 403 past
        the services quota. Records the tenant when admitted."""
        wait = self.limiter.check("deploy", tenant or namespace)
        if wait > 0:
            return 429, "", wait
        if tenant and (namespace, name) not in self.services:
            in_use = tenancy.services_of(self.tenants, tenant, self.services)
            if problem := quota_problem(self.quotas, "services", tenant, in_use):
                return 403, problem, 0.0
        if tenant:
            self.tenants[(namespace, name)] = tenant
        return 0, "", 0.0

    def _instance_room(self, rev: Revision, wanted: int) -> tuple[int, str]:
        """How many new instances the revision's tenant may start, and why not all."""
        tenant = self.tenants.get((rev.namespace, rev.service), "")
        if not tenant or not self.quotas.instances:
            return wanted, ""
        services = (self.services.get(key) for key, t in self.tenants.items() if t == tenant)
        in_use = sum(len(r.live()) for svc in services if svc is not None for r in svc.revisions.values())
        room = tenancy.instance_room(self.quotas.instances, in_use, wanted)
        if room == wanted:
            return room, ""
        # at the limit: quota_problem's words; below it: only some of the wanted fit
        return room, quota_problem(self.quotas, "instances", tenant, in_use) or (
            f"quota: tenant {tenant!r} may start {room} of {wanted} instances (limit {self.quotas.instances})")

    def delete(self, namespace: str, name: str) -> bool:
        self.tenants.pop((namespace, name), None)
        svc = self.services.pop((namespace, name), None)
        if svc is None:
            return False
        self._remove_service(svc, "service deleted")
        return True

    def _remove_service(self, svc: Service, why: str, force: bool = False) -> None:
        self.services.pop((svc.namespace, svc.name), None)
        for rev in svc.revisions.values():
            rev.deleted = True
            rev.desired = 0
            while rev.waiters:
                fut = rev.waiters.popleft()
                if not fut.done():
                    fut.set_exception(RevisionFailed(why))
            for inst in list(rev.instances.values()):
                self._drain(inst, force=force)

    # --- data plane ----------------------------------------------------------

    def route(self, host: str, target: str) -> tuple[Service | None, str]:
        """(service, path to forward) for a Host header and a raw request target (path and query):
        Host first, then ``/<namespace>/<service>/...``."""
        if host and "." in host:
            labels = host.split(":", 1)[0].split(".")
            if len(labels) >= 3:
                svc = self.services.get((labels[1], labels[0]))
                if svc is not None:
                    return svc, target
        parts = target.split("/", 3)
        if len(parts) >= 3:
            svc = self.services.get((parts[1], parts[2].split("?", 1)[0]))
            if svc is not None:
                rest = parts[3] if len(parts) > 3 else ""
                if len(parts) == 3 and "?" in parts[2]:
                    rest = "?" + parts[2].split("?", 1)[1]
                return svc, "/" + rest
        return None, ""

    async def handle(self, method: str, host: str, target: str, headers: list[tuple[str, str]],
                     body: bytes) -> Reply:
        """The data path: one request (raw target, headers as sent, whole body) -> (status, headers, body).

        The front server (front.py) calls it for every request that is not the management API's.
        """
        svc, path = self.route(host, target)
        if svc is None:
            where = unquote(target.split("?", 1)[0])
            return error_reply(
                404,
                f"no function at {host}{where}: use /<namespace>/<service>/ "
                f"or Host <service>.<namespace>.{self.options.domain}",
            )
        rev = svc.serving()
        if rev is None:
            return error_reply(503, f"service {svc.namespace}/{svc.name} has no revision")
        return await self.proxy(rev, method, path, headers, body)

    async def proxy(self, rev: Revision, method: str, path: str, headers: list[tuple[str, str]],
                    body: bytes) -> Reply:
        rid = tp = cid = None
        fwd = []
        # one pass: what the hop drops, and the few headers the gateway reads; the body and its
        # Content-Encoding go on untouched, as Knative's activator passes them (the instance decodes)
        for k, v in headers:
            lk = k.lower()
            if lk in HOP_BY_HOP:
                continue
            if lk == "x-request-id":
                rid = v if rid is None else rid
            elif lk == "traceparent":
                tp = v if tp is None else tp
            elif lk == "ce-correlationid":
                cid = v if cid is None else cid
            fwd.append((k, v))
        if rid is None:
            rid = f"{self._rid_prefix}-{next(self._rid)}"
            fwd.append(("X-Request-Id", rid))
        span = None
        # broker deliveries and benchmarks send a traceparent; a well-formed unsampled one is never
        # recorded (the sampler follows its parent), so it costs no span (12 us) and goes on as it came
        if tp is not None and tracing.parent_sampled(tp) is not False:
            carrier_in = {k.lower(): v for k, v in reversed(headers) if k.lower() in ("traceparent", "tracestate")}
            span = tracing.start_span(carrier_in, "gateway.request", cid or "", service=rev.key, request_id=rid)
            carrier: dict[str, str] = {}
            tracing.inject_span(span, carrier)
            fwd = [(k, v) for k, v in fwd if k.lower() not in ("traceparent", "tracestate")]
            fwd.extend(carrier.items())
        # concurrency accounting (in-flight + buffered), time-weighted for the autoscaler
        now = time.monotonic()
        rev.area += rev.concurrency * (now - rev.area_last)
        rev.area_last = now
        rev.concurrency += 1
        rev.requests += 1
        rev.tick_requests += 1
        buffered = False
        try:
            failed: Instance | None = None
            for attempt in (0, 1):
                inst = None if rev.waiters else self._pick(rev, failed)
                if inst is None:
                    buffered = True
                    try:
                        inst = await self._wait(rev, rid)
                    except BufferFull:
                        rev.errors += 1
                        return error_reply(
                            503,
                            f"{rev.service}: {len(rev.waiters)} requests already waiting for an instance "
                            f"(limit {self.options.queue_limit}); retry later",
                            request_id=rid,
                        )
                    except BufferTimeout:
                        rev.errors += 1
                        return error_reply(
                            504,
                            f"{rev.service}: no instance became ready within "
                            f"{self.options.buffer_timeout:g} s",
                            request_id=rid,
                        )
                    except RevisionFailed as exc:
                        rev.errors += 1
                        return error_reply(502 if "start" in str(exc) else 503, f"{rev.service}: {exc}", request_id=rid)
                try:
                    status, rheaders, data = await self.pool.request(
                        inst.address, method, path, fwd, body, rev.spec.timeout
                    )
                except TimeoutError:
                    self._release(inst)
                    rev.errors += 1
                    return error_reply(
                        504, f"{rev.service}: no answer within the revision timeout {rev.spec.timeout:g} s",
                        request_id=rid,
                    )
                except OSError as exc:  # refused, reset, closed before the whole response
                    self._release(inst)
                    self._suspect(inst)
                    if attempt == 0:
                        failed = inst  # retry elsewhere: the process may not be gone yet
                        continue
                    rev.errors += 1
                    return error_reply(502, f"{rev.service}: instance failed before answering: {exc}", request_id=rid)
                except BaseException:  # cancelled (client gone, shutdown): give the slot back
                    self._release(inst)
                    raise
                if buffered:
                    self.timeline.record(
                        "first_byte", rev.service, namespace=rev.namespace, revision=rev.name,
                        instance=inst.id, request_id=rid,
                    )
                self._release(inst)
                if status >= 500:
                    rev.errors += 1
                drop = RESP_DROP if method != "HEAD" else HEAD_DROP
                return status, [(k, v) for k, v in rheaders if k.lower() not in drop], data
            raise AssertionError("unreachable")
        finally:
            now = time.monotonic()
            rev.area += rev.concurrency * (now - rev.area_last)
            rev.area_last = now
            rev.concurrency -= 1
            if span is not None:
                span.set_attribute("kl.buffered", buffered)  # True: waited for an instance (cold start)
                span.end()

    @staticmethod
    def _pick(rev: Revision, exclude: Instance | None = None) -> Instance | None:
        """Least-loaded ready instance with a free slot; the slot is taken."""
        cc = rev.spec.container_concurrency or 1 << 30
        best = None
        for inst in rev.instances.values():
            if (
                inst.state is READY
                and inst.inflight < cc
                and (best is None or inst.inflight < best.inflight)
                and inst is not exclude
            ):
                best = inst
                if inst.inflight == 0:
                    break
        if best is not None:
            best.inflight += 1
            best.requests += 1
            if best.inflight > best.max_inflight:
                best.max_inflight = best.inflight
        return best

    async def _wait(self, rev: Revision, rid: str) -> Instance:
        if rev.deleted:
            raise RevisionFailed("service deleted")
        if len(rev.waiters) >= self.options.queue_limit:
            raise BufferFull()
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Instance] = loop.create_future()
        rev.waiters.append(fut)
        self.timeline.record(
            "request_buffered", rev.service, namespace=rev.namespace, revision=rev.name, request_id=rid,
            ready=len(rev.ready()), buffered=len(rev.waiters),
        )
        self._poke(rev)
        timer = loop.call_later(self.options.buffer_timeout, self._expire, rev, fut)
        try:
            return await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                self._release(fut.result())  # handed a slot just as the client went away
            with contextlib.suppress(ValueError):
                rev.waiters.remove(fut)
            raise
        finally:
            timer.cancel()

    @staticmethod
    def _expire(rev: Revision, fut: asyncio.Future) -> None:
        if not fut.done():
            with contextlib.suppress(ValueError):
                rev.waiters.remove(fut)
            fut.set_exception(BufferTimeout())

    def _dispatch(self, rev: Revision) -> None:
        """Hand free slots to buffered requests, oldest first."""
        waiters = rev.waiters
        while waiters:
            if waiters[0].done():
                waiters.popleft()
                continue
            inst = self._pick(rev)
            if inst is None:
                return
            waiters.popleft().set_result(inst)

    def _release(self, inst: Instance) -> None:
        inst.inflight -= 1
        rev = inst.revision
        if inst.state is DRAINING:
            if inst.inflight == 0:
                self._stop(inst)
        elif rev.waiters:
            self._dispatch(rev)

    def _suspect(self, inst: Instance) -> None:
        """A connection to ``inst`` failed: if its process is gone, take it out at once."""
        if inst.handle is not None and not inst.handle.alive() and inst.state in (READY, DRAINING):
            inst.state = STOPPED
            inst.error = "died while serving"

    # --- scaling ---------------------------------------------------------------

    def _poke(self, rev: Revision) -> None:
        """Run the autoscaler now when the buffer shows more demand than starting capacity."""
        now = time.monotonic()
        live = rev.live()
        cc = rev.spec.container_concurrency or 1 << 30
        if not live or (rev.concurrency > len(live) * cc and now - rev.last_poke >= self.options.poke_interval):
            rev.last_poke = now
            self._scale(rev, now, sample=True, point=True)

    def _scale(self, rev: Revision, now: float, sample: bool = True, point: bool = False) -> None:
        cfg = rev.config
        if sample:
            if point:  # a poke: the instantaneous demand, like the activator's first stat
                value, rps = float(rev.concurrency), 0.0
            else:
                rev.area += rev.concurrency * (now - rev.area_last)
                span = max(now - rev.area_since, 1e-6)
                value, rps = rev.area / span, rev.tick_requests / span
                rev.area, rev.area_since, rev.area_last, rev.tick_requests = 0.0, now, now, 0
            rev.metrics = rev.metrics.add(Sample(now, value, rps), keep=cfg.stable_window + cfg.tick)
        ready = sum(1 for i in rev.instances.values() if i.state is READY)
        decision, rev.scaler = decide(cfg, rev.scaler, rev.metrics, now, ready, routable=rev.routable)
        desired = 0 if rev.deleted else decision.desired
        if desired != rev.desired:
            metrics.SCALE_DECISIONS.labels(rev.namespace, rev.service).inc()
            self.timeline.record(
                "scale_decision", rev.service, namespace=rev.namespace, revision=rev.name,
                desired=desired, previous=rev.desired, ready=ready, reason=decision.reason,
                stable=round(decision.stable_value, 3), panic=round(decision.panic_value, 3),
                panicking=decision.panicking,
            )
            logs.decision("scale", service=rev.key, revision=rev.name, desired=desired,
                          previous=rev.desired, ready=ready, reason=decision.reason,
                          panicking=decision.panicking)
        rev.desired = desired
        self._reconcile(rev)

    def _reconcile(self, rev: Revision) -> None:
        live = rev.live()
        want = 0 if rev.deleted else rev.desired
        if len(live) < want:
            if rev.start_failures and time.monotonic() < rev.retry_at:
                return  # backing off after failed starts
            room, problem = self._instance_room(rev, want - len(live))
            if problem and rev.key not in self._capped:  # one line when the cap starts to bite
                self._capped.add(rev.key)
                logs.decision("scale", service=rev.key, revision=rev.name, desired=want,
                              started=room, reason=problem)
            elif not problem:
                self._capped.discard(rev.key)
            if problem and not live and room == 0:
                # nothing will serve the buffer: answer now, saying why
                while rev.waiters:
                    fut = rev.waiters.popleft()
                    if not fut.done():
                        fut.set_exception(RevisionFailed(problem))
            for _ in range(room):
                self._start(rev)
        elif len(live) > want:
            # starting ones first (no load yet), then the least loaded
            for inst in sorted(live, key=lambda i: (i.state is READY, i.inflight))[: len(live) - want]:
                self._drain(inst)

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(self.base_config.tick)
            now = time.monotonic()
            for svc in list(self.services.values()):
                for rev in list(svc.revisions.values()):
                    try:
                        self._scale(rev, now)
                    except Exception:  # one bad revision must not stop scaling for all
                        log.exception("autoscaler tick failed for %s", rev.key)

    # --- instances -------------------------------------------------------------

    def _start(self, rev: Revision) -> Instance:
        inst = Instance(id=f"{rev.name}-{next(self._ids)}", revision=rev)
        rev.instances[inst.id] = inst
        self._spawn(self._run(inst))
        return inst

    async def _run(self, inst: Instance) -> None:
        rev = inst.revision
        spec = rev.spec
        tl = self.timeline

        def on_pid(pid: int, at: float) -> None:
            inst.pid = pid
            tl.record("process_started", rev.service, mono=at, namespace=rev.namespace, revision=rev.name,
                      instance=inst.id, pid=pid)

        try:
            handle = await self.launcher.launch(
                rev.namespace, rev.service, rev.name, spec.artifact,
                self.options.memory_limit_mb if self.options.memory_limit_mb is not None else spec.memory_limit_mb,
                spec.container_concurrency or 16, on_pid,
            )
        except (LaunchError, OSError) as exc:
            self._failed(inst, str(exc))
            return
        inst.handle, inst.port = handle, handle.port
        inst.address = handle.unix or handle.port
        inst.url = f"http://127.0.0.1:{handle.port}"
        if inst.state is DRAINING or rev.deleted:
            handle.kill()
        else:
            try:
                if self.options.http_probe:
                    await self._probe(inst)
            except Exception as exc:
                handle.kill()
                self._failed(inst, f"readiness check failed: {exc}")
                return
            if inst.state is STARTING:
                inst.state = READY
                inst.ready_at = time.monotonic()
                rev.start_failures = 0
                took = inst.ready_at - inst.started
                metrics.COLD_START.labels(rev.namespace, rev.service).observe(took)
                rev.cold_starts += 1
                tl.record("instance_ready", rev.service, namespace=rev.namespace, revision=rev.name,
                          instance=inst.id, pid=handle.pid, port=handle.port, startup=round(took, 6))
                self._on_ready(rev)
                self._dispatch(rev)
            elif inst.state is DRAINING:
                handle.kill()
        reason = await handle.wait()
        self.pool.forget(inst.address)
        was = inst.state
        inst.state = STOPPED
        rev.instances.pop(inst.id, None)
        expected = was is DRAINING or rev.deleted
        tl.record("instance_stopped", rev.service, namespace=rev.namespace, revision=rev.name,
                  instance=inst.id, pid=handle.pid, reason=reason if not expected else "scaled down",
                  expected=expected, served=inst.requests)
        if not expected:
            log.warning("instance %s (pid %s) of %s died: %s; replacing it", inst.id, handle.pid, rev.key, reason)
            self._reconcile(rev)

    async def _probe(self, inst: Instance) -> None:
        """GET /readyz over the pool: checks the wrapper and leaves a warm connection behind."""
        deadline = time.monotonic() + 10
        while True:
            try:
                async with self.session.get(inst.url + "/readyz", timeout=aiohttp.ClientTimeout(total=2)) as r:  # type: ignore[union-attr]
                    if r.status == 200:
                        await r.read()
                        return
            except aiohttp.ClientError:
                if time.monotonic() > deadline:
                    raise
            if time.monotonic() > deadline:
                raise TimeoutError("not ready in 10 s")
            await asyncio.sleep(0.005)

    def _failed(self, inst: Instance, error: str) -> None:
        rev = inst.revision
        inst.state = STOPPED
        inst.error = error
        rev.instances.pop(inst.id, None)
        log.warning("instance %s of %s failed to start: %s", inst.id, rev.key, error)
        self.timeline.record("instance_failed", rev.service, namespace=rev.namespace, revision=rev.name,
                             instance=inst.id, error=error)
        if not rev.ever_ready:
            # a revision that never started cannot serve its buffer: fail it now, clearly
            while rev.waiters:
                fut = rev.waiters.popleft()
                if not fut.done():
                    fut.set_exception(RevisionFailed(f"instance failed to start: {error}"))
        # retry later, backing off, rather than in a hot loop (like a crash-looping pod)
        rev.start_failures += 1
        delay = min(30.0, 0.5 * 2 ** min(rev.start_failures, 6))
        rev.retry_at = time.monotonic() + delay
        asyncio.get_running_loop().call_later(delay, self._reconcile, rev)

    def _on_ready(self, rev: Revision) -> None:
        """The first ready instance of the latest revision moves the traffic to it."""
        if rev.ever_ready:
            return
        rev.ever_ready = True
        svc = self.services.get((rev.namespace, rev.service))
        if svc is None or svc.latest != rev.name:
            return
        old = svc.revisions.get(svc.traffic or "")
        svc.traffic = rev.name
        self.timeline.record("traffic_switched", rev.service, namespace=rev.namespace, revision=rev.name,
                             previous=old.name if old else None)
        if old is not None and old is not rev:
            old.routable = False
            # requests buffered on the old revision go to the new one
            while old.waiters:
                fut = old.waiters.popleft()
                if not fut.done():
                    rev.waiters.append(fut)
        for other in svc.revisions.values():
            if other is not rev:
                other.routable = False

    def _drain(self, inst: Instance, force: bool = False) -> None:
        if inst.state in (STOPPED, DRAINING) and not force:
            return
        inst.state = DRAINING
        if inst.handle is not None and (inst.inflight == 0 or force):
            self._stop(inst)

    @staticmethod
    def _stop(inst: Instance) -> None:
        if inst.handle is not None:
            inst.handle.kill()

    # --- views -----------------------------------------------------------------

    def view(self) -> dict[str, Any]:
        return {
            "services": [
                {**svc.view(), "url": f"http://{svc.name}.{svc.namespace}.{self.options.domain}"}
                for svc in self.services.values()
            ],
            "runtimes": {"python": {"zygote_pid": self.launcher.zygote.pid}},
        }

    def find(self, namespace: str, name: str) -> Service | None:
        return self.services.get((namespace, name))

    def each_revision(self) -> Callable[[], list[Revision]]:
        return lambda: [r for s in self.services.values() for r in s.revisions.values()]
