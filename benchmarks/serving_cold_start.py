"""Cold start of a hello Python function through the gateway, from a true zero.

Each iteration deploys a fresh service with ``initial-scale: 0`` (so it has no
process at all: the zygote holds only the runtime), then sends one request and
measures the client-side latency; the gateway timeline gives the breakdown:

    buffered -> process_started   autoscaler poke + fork request to the zygote + fork
    process_started -> ready      import of the function, bind, first /readyz probe
    ready -> first_byte           the buffered request proxied and answered headers

Usage: .venv/bin/python benchmarks/serving_cold_start.py [--n 60]
Goal: p50 <= 20 ms, p99 <= 60 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serving_common import HELLO, Gateway, make_artifact, summary  # noqa: E402


async def measure(gw: Gateway, names: list[str], gap: float) -> list[tuple[str, float, int]]:
    out = []
    async with aiohttp.ClientSession() as session:
        async with session.get(gw.url + "/healthz") as r:  # warm the client connection
            await r.read()
        for name in names:
            rid = f"cold-{name}"
            t0 = time.perf_counter()
            async with session.post(f"{gw.url}/default/{name}/", json={"n": 1}, headers={"X-Request-Id": rid}) as r:
                await r.read()
                status = r.status
            out.append((name, time.perf_counter() - t0, status))
            await asyncio.sleep(gap)
    return out


def breakdown(events: list[dict], names: list[str]) -> dict[str, dict[str, float]]:
    by: dict[str, dict[str, float]] = {n: {} for n in names}
    for e in events:
        if e["service"] in by and e["event"] not in by[e["service"]]:
            by[e["service"]][e["event"]] = e["mono"]
    phases = {"buffered_to_process_started": [], "process_started_to_ready": [], "ready_to_first_byte": [],
              "buffered_to_first_byte": []}
    for ev in by.values():
        try:
            phases["buffered_to_process_started"].append(ev["process_started"] - ev["request_buffered"])
            phases["process_started_to_ready"].append(ev["instance_ready"] - ev["process_started"])
            phases["ready_to_first_byte"].append(ev["first_byte"] - ev["instance_ready"])
            phases["buffered_to_first_byte"].append(ev["first_byte"] - ev["request_buffered"])
        except KeyError:
            continue
    return {k: summary(v) for k, v in phases.items()}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=60)
    ap.add_argument("--gap", type=float, default=0.2, help="seconds between cold starts (spares refill)")
    args = ap.parse_args()
    env = {"KL_AUTOSCALER_ALLOW_ZERO_INITIAL_SCALE": "true", "KL_AUTOSCALER_INITIAL_SCALE": "0"}
    with Gateway(**env) as gw:
        art = make_artifact(gw.tmp, "hello", HELLO)
        names = [f"cold-{i}" for i in range(args.n)]
        for name in names:
            gw.deploy(name, art)
        time.sleep(0.5)
        zygote = gw.api.get("/apis/v1/services").json()["runtimes"]["python"]["zygote_pid"]
        results = asyncio.run(measure(gw, names, args.gap))
        events = gw.timeline()
    latencies = [t for _, t, s in results if s == 200]
    report = {
        "benchmark": "serving_cold_start",
        "command": f"python benchmarks/serving_cold_start.py --n {args.n} --gap {args.gap}",
        "errors": sum(1 for _, _, s in results if s != 200),
        "client_latency": summary(latencies),
        "breakdown": breakdown(events, names),
        "goal": {"p50_ms": 20, "p99_ms": 60},
        "zygote_pid": zygote,
    }
    report["meets_goal"] = (
        report["errors"] == 0 and report["client_latency"]["p50_ms"] <= 20 and report["client_latency"]["p99_ms"] <= 60
    )
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
