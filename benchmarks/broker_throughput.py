"""Broker throughput and latency: ingress -> RabbitMQ -> one trigger (parallelism 50) -> HTTP receiver.

A script, not a test. It starts a private RabbitMQ node (or uses KL_AMQP_URL),
the broker as a real subprocess, and a trivial receiver subprocess; then sends
``--events`` CloudEvents from ``--concurrency`` concurrent HTTP producers and
prints one JSON object:

    events_per_s    delivered events / (first send .. last receipt)
    accepted        events the broker published (answered: 202s the producer counted)
    ingress_per_s   answered events / sending time
    latency_ms      p50/p90/p99/max from the producer's send to the receiver's receipt

    .venv/bin/python benchmarks/broker_throughput.py --events 20000            # saturation
    .venv/bin/python benchmarks/broker_throughput.py --events 6000 --rate 300  # latency at a set load
    .venv/bin/python benchmarks/broker_throughput.py --events 20000 --producer wrk  # saturation, light client
    .venv/bin/python benchmarks/broker_throughput.py --events 30000 --rate 2000 --producer wrk  # the goal's load

The receiver is a bare httptools server and ``--producer wrk`` a C client, so
that on a small machine the CPU goes to what is measured (broker and RabbitMQ);
the Python producer costs about 0.19 ms of CPU per event, wrk a fraction of it.

``cpu_ms_per_event`` (CPU per delivered event, per process) is the figure to
compare across runs on a busy shared machine. KL_BROKER_QUEUE_TYPE=classic
compares classic queues; KL_TRACE_SAMPLE (default 0.1) is the share of events whose
spans are recorded (reported as ``trace_sample``); KL_BENCH_PROFILE=path profiles the
broker process (not its ingress workers: ``broker_ingress``, KL_BROKER_INGRESS_WORKERS).
Goal on a 2-core box: >= 2000 events/s and p99 < 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

# The trivial receiver: httptools on a bare asyncio Protocol, so that on a 2-core box it takes
# as little as possible of the CPU the broker and RabbitMQ need (aiohttp's server: ~3x more).
RECEIVER = r"""
import asyncio, json, sys, time
import httptools
try:
    import uvloop; uvloop.install()
except ImportError:
    pass
lat, first, last = [], [None], [None]
ACCEPTED = b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n"

class Receiver(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport, self.parser, self.sent = transport, httptools.HttpRequestParser(self), None
    def data_received(self, data):
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.transport.close()
    def on_url(self, url):
        self.url = url
    def on_header(self, name, value):
        if name.lower() == b"ce-sentat":
            self.sent = float(value)
    def on_message_complete(self):
        if self.parser.get_method() == b"GET":  # /count while sending, /stats at the end
            stats = {"count": len(lat)} if self.url == b"/count" else {
                "count": len(lat), "first": first[0], "last": last[0], "lat": lat}
            body = json.dumps(stats).encode()
            self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                                 % len(body) + body)
            return
        now = time.time()
        if self.sent is not None:
            lat.append(now - self.sent)
            self.sent = None
        first[0] = first[0] or now
        last[0] = now
        self.transport.write(ACCEPTED)

async def main():
    server = await asyncio.get_running_loop().create_server(Receiver, "127.0.0.1", int(sys.argv[1]), backlog=1024)
    await server.serve_forever()
asyncio.run(main())
"""

# wrk as the producer: a unique ce-id per event and the send time (CLOCK_REALTIME, through
# LuaJIT's ffi) in ce-sentat. It stops sending after TOTAL accepted answers; wrk itself runs
# until the SIGINT sent once the receiver has them all (then it prints its summary).
# RATE > 0 paces it: event i is due at start + i/RATE, and a connection free before its
# event is due waits (wrk's delay()), so up to its connections the load is open loop.
WRK_PRODUCER = r"""
local ffi = require("ffi")
ffi.cdef[[ typedef struct { long tv_sec; long tv_nsec; } kl_timespec; int clock_gettime(int, kl_timespec*); ]]
local ts = ffi.new("kl_timespec")
local total, sent, answered = TOTAL, 0, 0
local base = BASE_HEADERS
local body = BODY
local rate, start, slot = RATE, nil, 0
local function now()
  ffi.C.clock_gettime(1, ts)
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) / 1e9
end
if rate > 0 then
  delay = function()
    local t = now()
    start = start or t
    local wait = (start + slot / rate - t) * 1000
    slot = slot + 1
    if wait > 0 then return wait end
    return 0
  end
end
request = function()
  sent = sent + 1
  ffi.C.clock_gettime(0, ts)
  base["ce-id"] = "bench-" .. sent
  base["ce-sentat"] = string.format("%d.%06d", tonumber(ts.tv_sec), tonumber(ts.tv_nsec) / 1000)
  return wrk.format("POST", nil, base, body)
end
response = function(status, headers, body)
  if status == 202 then answered = answered + 1 end
  if answered >= total then wrk.thread:stop() end
end
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


def published(broker_url: str) -> int:
    """Events the broker published (its ``cloudevents_total{outcome="published"}``): with wrk
    these include the requests still in flight when wrk stopped, which it does not count."""
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"{broker_url}/metrics", timeout=10).text
    return int(sum(sample.value for family in text_string_to_metric_families(text)
                   for sample in family.samples
                   if sample.name == "cloudevents_total" and sample.labels.get("outcome") == "published"))


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


def produce_wrk(
    ingress: str, receiver: str, total: int, concurrency: int, max_seconds: float, rate: float = 0.0
) -> tuple[int, int, float]:
    """Send ``total`` events with wrk (``concurrency`` connections; closed loop, or paced at
    ``rate`` events/s) until ``receiver`` has them; (accepted, rejected, seconds). The accept
    latency percentiles go to ``accept_lat_wrk``."""
    import resource

    from knative_lambda.contract.bindings import to_http
    from knative_lambda.contract.events import EventKind
    from knative_lambda.contract.factory import new_event

    template = new_event(EventKind.PARSER_START, {"n": 1}, source="network.notifi.bench", subject="p1")
    headers, body = to_http(template, "binary")
    lua_headers = "{" + ", ".join(f"[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items()
                                  if k != "ce-id") + "}"
    script = (WRK_PRODUCER.replace("TOTAL", str(total)).replace("RATE", repr(float(rate)))
              .replace("BASE_HEADERS", lua_headers)
              .replace("BODY", json.dumps(body.decode())))
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as f:
        f.write(script)
        f.flush()
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        wrk = subprocess.Popen(
            ["wrk", "-t1", f"-c{concurrency}", f"-d{int(max_seconds)}s", "--timeout", "10s", "--latency",
             "-s", f.name, ingress], stdout=subprocess.PIPE, text=True,
        )
        deadline = time.monotonic() + max_seconds
        while wrk.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
            if httpx.get(f"{receiver}/count", timeout=10).json()["count"] >= total:
                wrk.send_signal(signal.SIGINT)  # wrk stops and prints its summary
                break
        out = wrk.communicate(timeout=30)[0]
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = re.search(r"(\d+) requests in ([\d.]+)(ms|s|m)", out)
    if done is None:
        raise SystemExit(f"wrk printed no summary:\n{out}")
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    rejected = int(bad.group(1)) if bad else 0
    took = float(done.group(2)) * {"ms": 0.001, "s": 1.0, "m": 60.0}[done.group(3)]
    accept_lat_wrk.clear()
    accept_lat_wrk.update({p: _wrk_ms(v, unit) for p, v, unit in re.findall(r"\s(50|99)%\s+([\d.]+)(us|ms|s)", out)})
    wrk_cpu[0] = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return int(done.group(1)) - rejected, rejected, took


accept_lat_wrk: dict[str, float] = {}
wrk_cpu = [0.0]


def _wrk_ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def cpu_seconds(procs: list[subprocess.Popen[bytes]], work: Path) -> dict[str, float]:
    """CPU time used so far by the broker, the receiver and RabbitMQ (where it can be found)."""
    import psutil

    out: dict[str, float] = {}
    for name, p in zip(("broker", "receiver"), procs, strict=False):
        with contextlib.suppress(psutil.Error):
            proc = psutil.Process(p.pid)
            t = proc.cpu_times()
            out[name] = t.user + t.system
            out[name + "_sys"] = t.system
            if name == "broker":  # and its ingress workers (workers.py), also on their own
                kids = [c.cpu_times() for c in proc.children()]
                out["broker_ingress"] = sum(c.user + c.system for c in kids)
                out["broker"] += out["broker_ingress"]
                out["broker_sys"] += sum(c.system for c in kids)
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
    ap.add_argument("--producer", choices=("python", "wrk"), default="python",
                    help="python: this script's aiohttp producers; wrk: a C client that "
                         "leaves the broker more of a small machine's CPU")
    args = ap.parse_args()
    if args.producer == "wrk" and not shutil.which("wrk"):
        ap.error("--producer wrk needs wrk on PATH (apt-get install wrk)")

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    with contextlib.suppress(ImportError):  # the producer must not be the bottleneck
        import uvloop

        uvloop.install()
    from knative_lambda.harness.services import free_ports, resolve_rabbitmq
    from knative_lambda.platform import tracing
    from knative_lambda.platform.broker.client import BrokerClient
    from knative_lambda.platform.broker.triggers import trigger_object
    from knative_lambda.settings import Settings

    work = Path(tempfile.mkdtemp(prefix="kl-bench-broker-", dir=args.work_dir))
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
        ingress = f"{settings.broker_url}/default/default"
        if args.producer == "wrk":
            ok, failed, send_s = produce_wrk(ingress, f"http://127.0.0.1:{rport}", args.events,
                                             args.concurrency, args.max_seconds, args.rate)
        else:
            ok, failed, send_s = asyncio.run(produce(ingress, args.events, args.concurrency, deadline, args.rate))
        stats: dict = {}
        accepted = ok
        while time.monotonic() < deadline:
            accepted = published(settings.broker_url)  # read again: late confirms still count
            stats = httpx.get(f"http://127.0.0.1:{rport}/stats", timeout=10).json()
            if stats["count"] >= accepted:
                break
            time.sleep(0.2)
        trig = client.get_trigger("bench") or {}
        cpu = {k: round(v - cpu0.get(k, 0), 2) for k, v in cpu_seconds(procs, work).items()}
        if args.producer == "wrk":
            cpu["producer"] = round(wrk_cpu[0], 2)
        acc_ms = [x * 1000 for x in accept_lat]
        lat_ms = [x * 1000 for x in stats.get("lat", [])]
        span = (stats["last"] - t0) if stats.get("last") else float("nan")
        print(json.dumps({
            "events": args.events, "accepted": accepted, "answered": ok,
            "rejected": failed,
            "delivered": stats.get("count", 0),
            "concurrency": args.concurrency, "parallelism": args.parallelism, "rate": args.rate,
            "trigger": {k: trig.get(k) for k in ("delivered", "retried", "dead_lettered", "queue_depth")},
            "events_per_s": round(stats.get("count", 0) / span, 1) if span == span else None,
            "ingress_per_s": round(ok / send_s, 1),
            "latency_ms": {"p50": round(percentile(lat_ms, 50), 2), "p90": round(percentile(lat_ms, 90), 2),
                           "p99": round(percentile(lat_ms, 99), 2), "max": round(max(lat_ms, default=0), 2)},
            "producer": args.producer,
            "accept_latency_ms": {"p50": round(percentile(acc_ms, 50), 2), "p99": round(percentile(acc_ms, 99), 2)}
            if args.producer == "python" else {f"p{k}": round(v, 2) for k, v in accept_lat_wrk.items()},
            "cpu_seconds": cpu,
            # CPU per delivered event: what the rate would be with a dedicated core each,
            # a figure that holds up better than events/s on a busy shared machine.
            "cpu_ms_per_event": {k: round(v * 1000 / max(1, stats.get("count", 0)), 3)
                                 for k, v in cpu.items() if not k.endswith("_sys")},
            "load_average": [round(x, 2) for x in os.getloadavg()],
            "cpus": os.cpu_count(),
            "queue_type": os.environ.get("KL_BROKER_QUEUE_TYPE", "quorum"),
            # Recording spans costs the broker CPU per event: compare runs with the same setting.
            "trace_sample": os.environ.get("KL_TRACE_SAMPLE") or str(tracing.DEFAULT_SAMPLE),
            "work_dir": str(work),
        }, indent=2))
    except BaseException:
        # The work dir goes below: show why the broker failed before it does.
        broker_log = work / "broker.log"
        if broker_log.exists():
            tail = broker_log.read_text(errors="replace").splitlines()[-20:]
            print("broker.log (last lines):", *tail, sep="\n  ", file=sys.stderr)
        raise
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
