"""Broker throughput and latency: ingress -> RabbitMQ -> one trigger (parallelism 50) -> HTTP receiver.

A script, not a test. It starts a private RabbitMQ node (or uses KL_AMQP_URL),
the broker as a real subprocess, and a trivial receiver subprocess; then sends
``--events`` CloudEvents from ``--concurrency`` concurrent HTTP producers and
prints one JSON object:

    events_per_s    delivered events / (first send .. last receipt)
    ingress_per_s   accepted (202) events / sending time
    latency_ms      p50/p90/p99/max from the producer's send to the receiver's receipt

    .venv/bin/python benchmarks/broker_throughput.py --events 20000            # saturation
    .venv/bin/python benchmarks/broker_throughput.py --events 6000 --rate 300  # latency at a set load

``cpu_ms_per_event`` (CPU per delivered event, per process) is the figure to
compare across runs on a busy shared machine. KL_BROKER_QUEUE_TYPE=classic
compares classic queues; KL_TRACE_SAMPLE=0 leaves out span recording (reported
as ``trace_sample``); KL_BENCH_PROFILE=path profiles the broker.
Goal on a 2-core box: >= 2000 events/s and p99 < 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

RECEIVER = r"""
import asyncio, json, sys, time
from aiohttp import web
try:
    import uvloop; uvloop.install()
except ImportError:
    pass
lat, first, last = [], [None], [None]
async def event(request):
    await request.read()
    now = time.time()
    lat.append(now - float(request.headers["ce-sentat"]))
    first[0] = first[0] or now
    last[0] = now
    return web.Response(status=202)
async def stats(request):
    return web.json_response({"count": len(lat), "first": first[0], "last": last[0], "lat": lat})
app = web.Application()
app.router.add_post("/", event)
app.router.add_get("/stats", stats)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
"""


PROFILED_BROKER = r"""
import cProfile, sys, time
from knative_lambda.platform.broker.app import main
prof = cProfile.Profile(time.process_time)
prof.runcall(main)
prof.dump_stats(sys.argv[1])
"""


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))]


def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} not up in {timeout}s")


accept_lat: list[float] = []  # producer send -> 202 (includes the publisher confirm)


async def produce(
    ingress: str, total: int, concurrency: int, deadline: float, rate: float = 0.0
) -> tuple[int, int, float]:
    import aiohttp

    from knative_lambda.contract.bindings import to_http
    from knative_lambda.contract.events import EventKind
    from knative_lambda.contract.factory import new_event

    template = new_event(EventKind.PARSER_START, {"n": 1}, source="network.notifi.bench", subject="p1")
    base_headers, body = to_http(template, "binary")
    base_headers = {k: v for k, v in base_headers.items() if k != "ce-id"}
    ok = failed = 0
    accept_lat.clear()
    counter = iter(range(total))
    start = time.perf_counter()

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal ok, failed
        for i in counter:
            if time.monotonic() > deadline:
                return
            if rate > 0:  # open loop: event i is due at start + i/rate
                wait = start + i / rate - time.perf_counter()
                if wait > 0:
                    await asyncio.sleep(wait)
            sent = time.time()
            headers = {**base_headers, "ce-id": f"bench-{i}", "ce-sentat": repr(sent)}
            async with session.post(ingress, data=body, headers=headers) as resp:
                await resp.read()
                accept_lat.append(time.time() - sent)
                if resp.status == 202:
                    ok += 1
                else:
                    failed += 1

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    return ok, failed, time.perf_counter() - start


def cpu_seconds(procs: list[subprocess.Popen[bytes]], work: Path) -> dict[str, float]:
    """CPU time used so far by the broker, the receiver and RabbitMQ (where it can be found)."""
    import psutil

    out: dict[str, float] = {}
    for name, p in zip(("broker", "receiver"), procs, strict=False):
        with contextlib.suppress(psutil.Error):
            t = psutil.Process(p.pid).cpu_times()
            out[name] = t.user + t.system
            out[name + "_sys"] = t.system
    for proc in psutil.process_iter(["name", "cmdline"]):
        # The private node's command line names its data directory under ``work``.
        if proc.info["name"] == "beam.smp" and str(work) in " ".join(proc.info["cmdline"] or []):
            with contextlib.suppress(psutil.Error):
                t = proc.cpu_times()
                out["rabbitmq"] = t.user + t.system
    with contextlib.suppress(psutil.Error):
        t = psutil.Process().cpu_times()
        out["producer"] = t.user + t.system
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=20000)
    ap.add_argument("--concurrency", type=int, default=64, help="concurrent producer requests")
    ap.add_argument("--parallelism", type=int, default=50)
    ap.add_argument("--rate", type=float, default=0.0,
                    help="offered load in events/s (0 = as fast as the broker accepts)")
    ap.add_argument("--work-dir", default=None,
                    help="where RabbitMQ keeps its data (e.g. /dev/shm to take the disk's fsync out)")
    ap.add_argument("--max-seconds", type=float, default=120, help="hard bound on the run")
    args = ap.parse_args()

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    with contextlib.suppress(ImportError):  # the producer must not be the bottleneck
        import uvloop

        uvloop.install()
    from knative_lambda.harness.services import free_ports, resolve_rabbitmq
    from knative_lambda.platform.broker.client import BrokerClient
    from knative_lambda.platform.broker.triggers import trigger_object
    from knative_lambda.settings import Settings

    work = Path(tempfile.mkdtemp(prefix="kl-bench-broker-", dir=args.work_dir))
    # Erlang schedulers busy-wait by default; on a small shared box that spinning
    # steals the CPU the broker and receiver need (set the variable to override).
    os.environ.setdefault("RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS", "+sbwt none +sbwtdcpu none +sbwtdio none")
    mq = resolve_rabbitmq(os.environ, work / "rabbitmq")
    procs: list[subprocess.Popen[bytes]] = []
    mq.start()
    try:
        port, rport = free_ports(2)
        settings = Settings(amqp_url=mq.url(), data_dir=work / "data", port=port,
                            broker_url=f"http://127.0.0.1:{port}")
        log = (work / "broker.log").open("wb")
        # KL_BENCH_PROFILE=path: profile the broker's CPU time (pstats file at path).
        prof = os.environ.get("KL_BENCH_PROFILE")
        cmd = ["-c", PROFILED_BROKER, prof] if prof else ["-m", "knative_lambda.platform.broker"]
        procs.append(subprocess.Popen([sys.executable, *cmd],
                                      env={**os.environ, **settings.to_env()}, stdout=log, stderr=log))
        procs.append(subprocess.Popen([sys.executable, "-c", RECEIVER, str(rport)]))
        wait_http(f"{settings.broker_url}/healthz")
        wait_http(f"http://127.0.0.1:{rport}/stats")
        client = BrokerClient(settings.broker_url)
        client.put_trigger(trigger_object("bench", f"http://127.0.0.1:{rport}/",
                                          attributes={"type": "network.notifi.lambda.parser.start"},
                                          parallelism=args.parallelism))
        deadline = time.monotonic() + args.max_seconds
        cpu0 = cpu_seconds(procs, work)
        t0 = time.time()
        ok, failed, send_s = asyncio.run(produce(f"{settings.broker_url}/default/default",
                                                 args.events, args.concurrency, deadline, args.rate))
        stats: dict = {}
        while time.monotonic() < deadline:
            stats = httpx.get(f"http://127.0.0.1:{rport}/stats", timeout=10).json()
            if stats["count"] >= ok:
                break
            time.sleep(0.2)
        trig = client.get_trigger("bench") or {}
        cpu = {k: round(v - cpu0.get(k, 0), 2) for k, v in cpu_seconds(procs, work).items()}
        acc_ms = [x * 1000 for x in accept_lat]
        lat_ms = [x * 1000 for x in stats.get("lat", [])]
        span = (stats["last"] - t0) if stats.get("last") else float("nan")
        print(json.dumps({
            "events": args.events, "accepted": ok, "rejected": failed,
            "delivered": stats.get("count", 0),
            "concurrency": args.concurrency, "parallelism": args.parallelism, "rate": args.rate,
            "trigger": {k: trig.get(k) for k in ("delivered", "retried", "dead_lettered", "queue_depth")},
            "events_per_s": round(stats.get("count", 0) / span, 1) if span == span else None,
            "ingress_per_s": round(ok / send_s, 1),
            "latency_ms": {"p50": round(percentile(lat_ms, 50), 2), "p90": round(percentile(lat_ms, 90), 2),
                           "p99": round(percentile(lat_ms, 99), 2), "max": round(max(lat_ms, default=0), 2)},
            "accept_latency_ms": {"p50": round(percentile(acc_ms, 50), 2),
                                  "p99": round(percentile(acc_ms, 99), 2)},
            "cpu_seconds": cpu,
            # CPU per delivered event: what the rate would be with a dedicated core each,
            # a figure that holds up better than events/s on a busy shared machine.
            "cpu_ms_per_event": {k: round(v * 1000 / max(1, stats.get("count", 0)), 3)
                                 for k, v in cpu.items() if not k.endswith("_sys")},
            "load_average": [round(x, 2) for x in os.getloadavg()],
            "cpus": os.cpu_count(),
            "queue_type": os.environ.get("KL_BROKER_QUEUE_TYPE", "quorum"),
            # Recording spans costs the broker CPU per event: compare runs with the same setting.
            "trace_sample": os.environ.get("KL_TRACE_SAMPLE") or "1",
            "work_dir": str(work),
        }, indent=2))
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        mq.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
