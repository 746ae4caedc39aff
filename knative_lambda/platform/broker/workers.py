"""Ingress workers: processes beside the broker that serve its port, so that ingress and
dispatch each have a core (issue #3: one process capped the broker near 1/0.55 ms per event).

With ``KL_BROKER_INGRESS_WORKERS`` above 0 (by default 1 on a machine with two CPUs or
more) the broker process keeps all the state -- triggers, dispatchers, the management
API on its unix socket -- and serves no TCP port itself. Each worker:

- listens on the broker's port (SO_REUSEPORT: the kernel spreads connections among workers);
- answers ``POST /<namespace>/<broker>`` with an Ingress of its own, publishing on a
  RabbitMQ connection of its own (202 after the confirm, as in the broker);
- passes every other request (trigger API, /healthz, /metrics, targets the ingress
  leaves to the aiohttp route) to the broker's socket, as the broker's own front would;
- knows the default broker and those of the stored triggers (:class:`KnownBrokers`);
- counts into prometheus_client's multiprocess directory, which the broker's /metrics sums;
- writes its spans to ``traces/broker-ingress-<n>.jsonl``; dies with the broker (PDEATHSIG).

:class:`IngressWorkers` (in the broker) starts them once the broker's socket listens,
restarts one that exits, and on shutdown lets them drain before the dispatchers stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import shutil
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from knative_lambda.errors import ConfigError, ServiceUnavailable
from knative_lambda.platform.broker import topology
from knative_lambda.platform.broker.config import BrokerConfig
from knative_lambda.platform.broker.store import TriggerStore
from knative_lambda.platform.broker.triggers import TriggerSpecError, parse_trigger
from knative_lambda.settings import Settings

# front, ingress and publisher are imported where used: broker/__main__.py imports this
# module before it sets PROMETHEUS_MULTIPROC_DIR, and they import prometheus_client.
log = logging.getLogger("kl.broker.workers")
START_TIMEOUT = 90.0  # seconds a worker gets to reach RabbitMQ and listen (connect retries ~60 s)
RESTART_DELAY = 1.0  # seconds before a worker that exited soon after its start is started again
STEADY = 10.0  # seconds of running after which a worker that exits is started again at once
READY = b"ready\n"  # a worker's one line on stdout once it listens
HOST = "127.0.0.1"


def shutdown_grace(config: BrokerConfig) -> float:
    """Seconds in-flight requests get on SIGTERM: a publish gets its confirm (or its timeout)."""
    from knative_lambda.platform.front import SHUTDOWN_GRACE

    return max(SHUTDOWN_GRACE, config.publish_timeout + 5)


def metrics_dir(data_dir: Path) -> Path:
    """prometheus_client's multiprocess directory of a broker with workers, emptied at start
    (values of an earlier run must not add up). Set before prometheus_client is imported."""
    path = Path(data_dir).resolve() / "broker" / "run" / "metrics"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


class KnownBrokers:
    """The brokers a worker accepts events for: the default one and those of the stored
    triggers, re-read when the store's directory changes (the broker declares a broker's
    exchange before it stores the trigger). Like the broker, it never forgets one: the
    exchange of a deleted trigger's broker stays."""

    def __init__(self, store: TriggerStore) -> None:
        self._store = store
        self._stamp: int | None = None
        self._known = {topology.DEFAULT_BROKER}

    def __call__(self, namespace: str, broker: str) -> bool:
        key = (namespace, broker)
        if key in self._known:
            return True
        try:
            stamp = self._store.root.stat().st_mtime_ns
        except OSError:
            return False
        if stamp != self._stamp:
            self._stamp = stamp
            self._known.update(self._stored())
        return key in self._known

    def _stored(self) -> list[tuple[str, str]]:
        out = []
        for namespace, name, obj in self._store.load():
            with contextlib.suppress(TriggerSpecError):
                out.append((namespace, parse_trigger(obj, namespace, name).broker))
        return out


class IngressWorkers:
    """Runs ``count`` worker processes for the broker (see the module docstring)."""

    def __init__(self, count: int, grace: float) -> None:
        self.count = count
        self.grace = grace
        self.procs: dict[int, asyncio.subprocess.Process] = {}
        self._tasks: list[asyncio.Task] = []
        self._stopping = False

    async def start(self, sock: Path) -> Callable[[float], Awaitable[None]]:
        """Start every worker and wait until each listens (a :data:`front.Delegate`)."""
        ready = [asyncio.get_running_loop().create_future() for _ in range(self.count)]
        self._tasks = [asyncio.create_task(self._keep(i, sock, ready[i])) for i in range(self.count)]
        try:
            await asyncio.gather(*ready)
        except BaseException:
            await self.stop(0)
            raise
        log.info("%d ingress worker(s) serving the port", self.count)
        return self.stop

    async def _keep(self, index: int, sock: Path, ready: asyncio.Future) -> None:
        """Run worker ``index``; start it again whenever it exits, until :meth:`stop`."""
        while not self._stopping:
            try:
                proc = await self._spawn(index, sock)
            except ServiceUnavailable as exc:
                if not ready.done():
                    ready.set_exception(exc)
                    return
                log.warning("%s; retrying in %.0f s", exc, RESTART_DELAY)
                await asyncio.sleep(RESTART_DELAY)
                continue
            if not ready.done():
                ready.set_result(None)
            started = time.monotonic()
            code = await proc.wait()
            if self._stopping:
                return
            log.warning("ingress worker %d (pid %d) exited with code %s; starting it again", index, proc.pid, code)
            if time.monotonic() - started < STEADY:  # a crash loop: do not spin
                await asyncio.sleep(RESTART_DELAY)

    async def _spawn(self, index: int, sock: Path) -> asyncio.subprocess.Process:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "knative_lambda.platform.broker.workers", str(sock), str(index), str(os.getpid()),
            stdout=asyncio.subprocess.PIPE,
        )
        self.procs[index] = proc
        assert proc.stdout is not None
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), START_TIMEOUT)
        except TimeoutError:
            line = b""
        if line != READY:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            code = await proc.wait()
            raise ServiceUnavailable(f"ingress worker {index} did not start (exit code {code}; see the broker log)")
        return proc

    async def stop(self, grace: float) -> None:
        """SIGTERM every worker: each stops listening and answers what is in flight (at most
        ``grace`` s, then its own bound), then is killed if still there."""
        self._stopping = True
        live = [p for p in self.procs.values() if p.returncode is None]
        for proc in live:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.gather(*(p.wait() for p in live)), max(grace, self.grace) + 5)
        except TimeoutError:
            for proc in live:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


# --- the worker process ------------------------------------------------------------------


async def _serve(sock: Path, index: int, settings: Settings, config: BrokerConfig) -> None:
    from knative_lambda.platform.broker.ingress import Ingress, routes
    from knative_lambda.platform.broker.publisher import Publisher
    from knative_lambda.platform.front import Front, too_large

    connection = await topology.connect(settings.amqp_url, config.reconnect_interval)
    publisher = Publisher(connection, config.publish_channels, config.publish_timeout)
    await publisher.start()
    limit = config.max_event_bytes
    ingress = Ingress(lambda: publisher, KnownBrokers(TriggerStore(settings.data_dir)),
                      settings.event_prefix, limit)
    ingress.token = settings.token
    front = Front(lambda method, path: None, str(sock), limit, "broker", ingress.too_large(too_large(limit)))
    front.handler_for = routes(ingress)(front)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await front.start(HOST, settings.port, reuse_port=True)
        gc.collect()
        gc.freeze()  # as the broker: start-up objects out of the collector's way
        log.info("ingress worker %d ready on port %d", index, settings.port)
        os.write(1, READY)
        os.dup2(2, 1)  # later stdout output to the log, not to a pipe the broker no longer reads
        await stop.wait()
        await front.stop(shutdown_grace(config))
    finally:
        with contextlib.suppress(Exception):
            await publisher.close()
        with contextlib.suppress(Exception):
            await connection.close()


def main() -> None:
    """``python -m knative_lambda.platform.broker.workers SOCKET INDEX BROKER_PID`` (started by the broker)."""
    from knative_lambda.platform.observe import setup_process
    from knative_lambda.platform.runtime.server import die_with_parent

    die_with_parent(signal.SIGTERM)  # here rather than between fork and exec: the broker has threads
    try:
        sock, index, broker = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
        settings = Settings.from_env()
        config = BrokerConfig.from_env()
    except (IndexError, ValueError, ConfigError) as exc:
        sys.exit(f"ingress worker: {exc}")
    if os.getppid() != broker:  # the broker died before PDEATHSIG was set
        sys.exit(f"ingress worker {index}: the broker (pid {broker}) is gone")
    setup_process("broker", settings, file_stem=f"broker-ingress-{index}")
    try:
        import uvloop

        run = uvloop.run
    except ImportError:  # pragma: no cover
        run = asyncio.run
    try:
        run(_serve(sock, index, settings, config))
    except (OSError, ServiceUnavailable) as exc:  # port taken, RabbitMQ away: the broker logs and retries
        log.error("ingress worker %d cannot serve: %s", index, exc)
        sys.exit(1)


if __name__ == "__main__":
    main()
