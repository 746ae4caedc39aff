"""Chaos Toolkit actions (python provider) acting through the ``Target`` protocol.

    {"type": "action", "name": "restart-rabbitmq",
     "provider": {"type": "python", "module": "knative_lambda.chaos.actions",
                  "func": "restart_part", "arguments": {"part": "rabbitmq"}}}

Parts are what ``Target.parts()`` lists (rabbitmq, s3, broker, gateway, builder,
deployer on the local target). Links are the fault proxies ``kl up --faults``
put in front of RabbitMQ and S3. ``service`` is a service name
(``lambda-<tp>-<parser>``) or ``<tp>/<parser>``. Every action takes an optional
``state`` (state file path) and the experiment's ``configuration`` (see
:mod:`knative_lambda.chaos.context`) and returns something JSON-able for the
journal.
"""

from __future__ import annotations

import asyncio
import json
import time
from importlib import resources
from typing import Any

from knative_lambda.chaos import context
from knative_lambda.chaos.ledger import Ledger
from knative_lambda.chaos.load import LoadPlan, LoadRun
from knative_lambda.errors import ConfigError, KLError, PlatformError
from knative_lambda.harness.polling import poll

Configuration = dict[str, Any] | None
_RUNS: dict[str, LoadRun] = {}  # background loads of this process, by name
COUNTER_SOURCE = "counter_function.py"


# -- parts ----------------------------------------------------------------------

def kill_part(part: str, state: str | None = None, configuration: Configuration = None) -> str:
    """SIGKILL a platform part (no clean shutdown)."""
    with context.target(state, configuration) as target:
        target.kill(part)
    return f"killed {part}"


def pause_part(part: str, state: str | None = None, configuration: Configuration = None) -> str:
    """SIGSTOP a part: it holds its sockets but answers nothing (a hung process)."""
    with context.target(state, configuration) as target:
        target.pause(part)
    return f"paused {part}"


def resume_part(part: str, state: str | None = None, configuration: Configuration = None) -> str:
    with context.target(state, configuration) as target:
        target.resume(part)
    return f"resumed {part}"


def restart_part(part: str, timeout: float = 60.0, state: str | None = None,
                 configuration: Configuration = None) -> dict[str, Any]:
    """Restart a part on the same port and data; returns how long until it was healthy."""
    started = time.monotonic()
    with context.target(state, configuration) as target:
        target.restart(part, timeout=timeout)
    return {"part": part, "restart_s": round(time.monotonic() - started, 3)}


def kill_instances(service: str, count: int | None = 1, state: str | None = None,
                   configuration: Configuration = None) -> int:
    """SIGKILL ``count`` instances of a function (None: all); returns how many died."""
    with context.target(state, configuration) as target:
        return target.kill_instances(function_of(target, service), count)


def function_of(target: Any, service: str) -> Any:
    """The target's Function for a service name or ``tp/parser``."""
    from knative_lambda.contract import names
    from knative_lambda.harness.targets.base import Function

    if "/" in service:
        tp, parser = service.split("/", 1)
        return target.function(tp, parser) if hasattr(target, "function") else Function(
            tp, parser, names.service_name(tp, parser), target.settings.namespace,
            f"{target.settings.gateway_url}/{target.settings.namespace}/{names.service_name(tp, parser)}/")
    ns = target.settings.namespace
    return Function("", "", service, ns, f"{target.settings.gateway_url}/{ns}/{service}/")


# -- links (fault proxies) --------------------------------------------------------

def _links(link: str, state: str | None, configuration: Configuration) -> list[str]:
    if link == "all":
        return list(context.fault_links(state, configuration))
    return [link]


def _client(link: str, state: str | None, configuration: Configuration) -> Any:
    from knative_lambda.harness.faults.control import FaultProxyClient

    return FaultProxyClient(context.link_control_url(link, state, configuration))


def inject_latency(link: str, ms: float, jitter_ms: float = 0.0, direction: str = "both",
                   state: str | None = None, configuration: Configuration = None) -> dict[str, Any]:
    """Add ``ms`` (± ``jitter_ms``) to every chunk on a link ("up", "down" or "both" ways)."""
    if direction not in ("up", "down", "both"):
        raise ConfigError(f"direction must be up, down or both, got {direction!r}")
    one = {"latency_ms": ms, "jitter_ms": jitter_ms}
    faults = one if direction == "both" else {direction: one}
    with _client(link, state, configuration) as client:
        return client.update_faults(faults)


def inject_resets(link: str, fraction: float = 1.0, reset_open: bool = True,
                  state: str | None = None, configuration: Configuration = None) -> dict[str, Any]:
    """Reset ``fraction`` of new connections on a link, and (``reset_open``) every open one now."""
    with _client(link, state, configuration) as client:
        faults = client.update_faults({"reset_fraction": fraction})
        reset = client.reset_connections() if reset_open else 0
    return {"faults": faults, "reset_now": reset}


def reset_connections(link: str, state: str | None = None,
                      configuration: Configuration = None) -> int:
    """RST every open connection on a link once (new ones are unaffected)."""
    with _client(link, state, configuration) as client:
        return client.reset_connections()


def blackhole(link: str, state: str | None = None, configuration: Configuration = None) -> dict[str, Any]:
    """Partition a link: connections are accepted, nothing flows, open ones stall."""
    with _client(link, state, configuration) as client:
        return client.update_faults({"blackhole": True})


def heal(link: str = "all", state: str | None = None, configuration: Configuration = None) -> list[str]:
    """Clear every fault on a link ("all": every link); returns the links healed."""
    healed = []
    for name in _links(link, state, configuration):
        with _client(name, state, configuration) as client:
            client.heal()
        healed.append(name)
    return healed


# -- the counting function and background load ---------------------------------------

def counter_source() -> bytes:
    return resources.files("knative_lambda.chaos").joinpath(COUNTER_SOURCE).read_bytes()


def deploy_counter(tp: str = "chaos", parser: str = "counter", timeout: float = 180.0,
                   state: str | None = None, configuration: Configuration = None) -> dict[str, Any]:
    """Build and deploy the counting function (idempotent: same source, same revision)."""
    deadline = time.monotonic() + timeout
    with context.target(state, configuration) as target:
        outcome = target.build(tp, parser, counter_source(), timeout=timeout)
        if outcome.kind != "build.complete":
            raise PlatformError(f"build of the counting function ended in {outcome.kind}: "
                                f"{outcome.data.get('error_message')}")
        content_hash = outcome.data.get("content_hash", "")
        fn = function_of(target, f"{tp}/{parser}")
        if not poll(lambda: _serves(target.service(fn.service), content_hash),
                    max(0.0, deadline - time.monotonic()), interval=0.1):
            raise PlatformError(f"{fn.service} not ready with revision {content_hash} "
                                f"after {timeout:.0f}s")
    _remember_deployed(fn.service, state, configuration)
    return {"service": fn.service, "url": fn.url, "content_hash": content_hash}


def _remember_deployed(service: str, state: str | None, configuration: Configuration) -> None:
    """Services this run deployed: the hypothesis checks they survive (probes.deployed_intact)."""
    path = context.chaos_dir(state, configuration) / "deployed.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    known = json.loads(path.read_text()) if path.exists() else []
    if service not in known:
        path.write_text(json.dumps([*known, service]))


def _serves(service: dict[str, Any] | None, content_hash: str) -> bool:
    """The service is ready and routes to the revision built from ``content_hash``."""
    if not service or not service.get("ready"):
        return False
    if service.get("content_hash") == content_hash:
        return True
    traffic = service.get("traffic_revision") or service.get("latest_revision")
    return any(r.get("content_hash") == content_hash and r.get("name") == traffic
               for r in service.get("revisions", []))


def start_load(name: str = "stream", kind: str = "events", count: int = 1000, rate: float = 0.0,
               duration_s: float = 120.0, concurrency: int = 4, tp: str = "chaos",
               parser: str = "counter", ledger: str | None = None, retry_s: float = 30.0,
               work_s: float = 0.0, data: Any = None, timeout: float = 10.0,
               state: str | None = None,
               configuration: Configuration = None) -> dict[str, Any]:
    """Start a bounded background load and return at once.

    kind "events": ``count`` parser.start events for ``tp``/``parser``, each
    retried until accepted, recorded in the ledger (default: named like the
    load, emptied first). kind "http": ``count`` POSTs of ``data`` to the
    function. ``work_s`` makes the counting function sleep per event (a slow
    consumer, so a queue builds up).
    """
    from knative_lambda.chaos.senders import event_sender, http_sender

    if name in _RUNS and _RUNS[name].running:
        raise ConfigError(f"load {name!r} is already running; stop_load it first")
    plan = LoadPlan(kind, count, rate, duration_s, concurrency)
    with context.target(state, configuration) as target:
        settings = target.settings
        fn = function_of(target, f"{tp}/{parser}")
    info: dict[str, Any] = {"kind": kind, "service": fn.service}
    if kind == "events":
        book = Ledger(context.ledger_dir(ledger or name, state, configuration)).reset()
        send = event_sender(settings, tp, parser, book, retry_s=retry_s, work_s=work_s)
        info["ledger"] = str(book.directory)
    else:
        send = http_sender(fn.url, settings, data, timeout=timeout)
    _RUNS[name] = LoadRun(name, plan, send, info).start()
    return {"name": name, **info, "plan": plan.__dict__}


def stop_load(name: str = "stream", wait_s: float | None = None, stop: bool = False,
              state: str | None = None, configuration: Configuration = None) -> dict[str, Any]:
    """Wait for a load to finish (``stop``: end it now); writes and returns its result."""
    run = _RUNS.get(name)
    if run is None:
        raise ConfigError(f"no load named {name!r} in this run; start_load it first")
    result = run.stop(wait_s or 30.0) if stop else run.wait(wait_s)
    path = context.chaos_dir(state, configuration) / "loads" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2))
    return result


def loads() -> dict[str, LoadRun]:
    """The background loads of this process (for the run command's summary)."""
    return dict(_RUNS)


# -- breaking delivery on purpose (the "experiment can fail" test) -----------------------

def purge_trigger_queue(service: str, state: str | None = None,
                        configuration: Configuration = None) -> int:
    """Drop every message waiting in the queue of the service's trigger; returns how many.

    This loses events for real: it is how a test proves an experiment can fail.
    """
    with context.target(state, configuration) as target:
        fn = function_of(target, service)
        from knative_lambda.chaos.probes import triggers_of

        triggers = triggers_of(target)
        amqp_url = target.settings.amqp_url
    trigger = next((t for t in triggers if t.get("name") == fn.service
                    or fn.service in str(t.get("subscriber", ""))), None)
    if trigger is None or not trigger.get("queue"):
        raise PlatformError(f"no trigger delivers to {fn.service}; is it deployed?")

    async def purge() -> int:
        import aio_pika

        connection = await aio_pika.connect(amqp_url, timeout=10)
        async with connection:
            channel = await connection.channel()
            queue = await channel.declare_queue(trigger["queue"], passive=True)
            result = await queue.purge()
            return int(getattr(result, "message_count", 0) or 0)

    return asyncio.run(purge())


# -- builds -----------------------------------------------------------------------------

_BUILDS: dict[str, dict[str, Any]] = {}  # background builds of this process, by name


def _source(unique: bool) -> bytes:
    """The counter's source; ``unique`` adds a nonce so the content hash (and build) is new."""
    import uuid

    nonce = f"\n# build nonce {uuid.uuid4().hex}\n".encode() if unique else b""
    return counter_source() + nonce


def build_function(tp: str = "chaos", parser: str = "counter", expect: str = "build.complete",
                   unique: bool = True, timeout: float = 180.0, state: str | None = None,
                   configuration: Configuration = None) -> dict[str, Any]:
    """Build once and wait for the terminal event; fails unless it is ``expect`` ("any": any).

    Never silent: no terminal event within ``timeout`` fails the activity.
    """
    with context.target(state, configuration) as target:
        outcome = target.build(tp, parser, _source(unique), timeout=timeout)
    result = {"kind": outcome.kind, "elapsed_s": round(outcome.elapsed_s, 3),
              "error_message": outcome.data.get("error_message"),
              "content_hash": outcome.data.get("content_hash")}
    if expect != "any" and outcome.kind != expect:
        raise PlatformError(f"build of {tp}/{parser} ended in {outcome.kind}, expected {expect}: "
                            f"{outcome.data.get('error_message')}")
    return result


def start_build(name: str = "build", tp: str = "chaos", parser: str = "counter",
                unique: bool = True, timeout: float = 180.0, state: str | None = None,
                configuration: Configuration = None) -> dict[str, Any]:
    """Start a build in the background (so a part can be killed while it runs)."""
    import threading

    record: dict[str, Any] = {"name": name, "started": time.time()}

    def run() -> None:
        try:
            record["result"] = build_function(tp, parser, "any", unique, timeout, state, configuration)
        except Exception as exc:  # reported by wait_build, never lost
            record["error"] = f"{type(exc).__name__}: {exc}"

    thread = threading.Thread(target=run, name=f"build-{name}", daemon=True)
    record["thread"] = thread
    _BUILDS[name] = record
    thread.start()
    return {"name": name, "tp": tp, "parser": parser}


def wait_build(name: str = "build", expect: str = "any", timeout: float = 240.0) -> dict[str, Any]:
    """Wait for a background build's terminal event; fails when none came (stuck or silent)."""
    record = _BUILDS.get(name)
    if record is None:
        raise ConfigError(f"no build named {name!r} in this run; start_build it first")
    record["thread"].join(timeout)
    if record["thread"].is_alive():
        raise PlatformError(f"build {name!r}: no terminal event after {timeout:.0f}s (stuck)")
    if "error" in record:
        raise PlatformError(f"build {name!r}: {record['error']}")
    result = record["result"]
    if expect != "any" and result["kind"] != expect:
        raise PlatformError(f"build {name!r} ended in {result['kind']}, expected {expect}")
    return result


# -- recovery -----------------------------------------------------------------------------

def await_instances(service: str, count: int = 1, within_s: float = 2.0, state: str | None = None,
                    configuration: Configuration = None) -> float:
    """Seconds until the service has ``count`` instances; fails after ``within_s``."""
    started = time.monotonic()
    with context.target(state, configuration) as target:
        fn = function_of(target, service)
        if not poll(lambda: target.instance_count(fn) >= count,
                    max(0.0, started + within_s - time.monotonic()), interval=0.05):
            raise PlatformError(f"{fn.service}: fewer than {count} instance(s) "
                                f"{within_s:.1f}s after the kill")
        return round(time.monotonic() - started, 3)


def ensure_healthy(timeout: float = 60.0, state: str | None = None,
                   configuration: Configuration = None) -> list[str]:
    """Rollback: resume and restart every unhealthy part, heal every link; returns what was fixed."""
    fixed: list[str] = []
    with context.target(state, configuration) as target:
        for part, (ok, _) in target.health().items():
            if ok:
                continue
            try:
                target.resume(part)  # a paused part only needs SIGCONT
            except KLError:
                pass
            time.sleep(0.5)
            if not target.health().get(part, (False, ""))[0]:
                target.restart(part, timeout=timeout)
            fixed.append(part)
    try:
        fixed += [f"link:{name}" for name in heal("all", state, configuration)]
    except KLError:
        pass  # no fault proxies on this platform
    return fixed


def compare_throughput(baseline: str, faulted: str, state: str | None = None,
                       configuration: Configuration = None) -> dict[str, Any]:
    """Throughput of two finished loads; fails when the fault did not slow the second one."""
    from knative_lambda.chaos.probes import load_result

    before = load_result(baseline, state, configuration).get("throughput_per_s", 0.0)
    after = load_result(faulted, state, configuration).get("throughput_per_s", 0.0)
    ratio = after / before if before else None
    if ratio is None or ratio >= 1.0:
        raise PlatformError(f"throughput did not drop under the fault ({before}/s -> {after}/s)")
    return {"baseline_per_s": before, "faulted_per_s": after, "ratio": round(ratio, 3)}
