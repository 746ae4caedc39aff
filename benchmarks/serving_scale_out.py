"""0 -> N: --requests concurrent requests on a cold function (no instance, no process).

Reports errors (goal: zero), client latency percentiles, N (the most instances
ready at once) and the time from the first buffered request to the first and
to the N-th instance ready, from the gateway timeline.

Usage: .venv/bin/python benchmarks/serving_scale_out.py [--requests 1000] [--sleep 0.05]
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
from serving_common import SLEEPY, Gateway, make_artifact, summary  # noqa: E402


async def burst(url: str, n: int, sleep: float) -> tuple[list[float], list[int]]:
    conn = aiohttp.TCPConnector(limit=n + 10)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=conn, timeout=timeout) as s:
        async def one(i: int) -> tuple[float, int]:
            t0 = time.perf_counter()
            try:
                async with s.post(url, json={"n": i, "sleep": sleep}) as r:
                    await r.read()
                    return time.perf_counter() - t0, r.status
            except aiohttp.ClientError:
                return time.perf_counter() - t0, 0

        results = await asyncio.gather(*(one(i) for i in range(n)))
    return [t for t, _ in results], [c for _, c in results]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--sleep", type=float, default=0.05, help="seconds the function waits per request")
    ap.add_argument("--max-scale", type=int, default=50)
    args = ap.parse_args()
    env = {"KL_AUTOSCALER_ALLOW_ZERO_INITIAL_SCALE": "true", "KL_AUTOSCALER_INITIAL_SCALE": "0"}
    with Gateway(**env) as gw:
        art = make_artifact(gw.tmp, "sleepy", SLEEPY)
        gw.deploy("burst", art, annotations={"autoscaling.knative.dev/max-scale": str(args.max_scale)})
        time.sleep(0.5)
        assert gw.service("burst")["revisions"][0]["instances"] == [], "not cold"
        t0 = time.perf_counter()
        latencies, codes = asyncio.run(burst(f"{gw.url}/default/burst/", args.requests, args.sleep))
        wall = time.perf_counter() - t0
        events = gw.timeline("burst")
    buffered = [e["mono"] for e in events if e["event"] == "request_buffered"]
    ready = sorted(e["mono"] for e in events if e["event"] == "instance_ready")
    decisions = [e for e in events if e["event"] == "scale_decision"]
    start = min(buffered) if buffered else None
    report = {
        "benchmark": "serving_scale_out",
        "command": f"python benchmarks/serving_scale_out.py --requests {args.requests} --sleep {args.sleep} "
                   f"--max-scale {args.max_scale}",
        "requests": args.requests,
        "errors": sum(1 for c in codes if c != 200),
        "status_counts": {str(c): codes.count(c) for c in sorted(set(codes))},
        "client_latency": summary(latencies),
        "wall_s": round(wall, 3),
        "instances_reached": len(ready),
        "max_desired": max((e["desired"] for e in decisions), default=0),
        "first_instance_ready_ms": round((ready[0] - start) * 1000, 1) if ready and start else None,
        "all_instances_ready_ms": round((ready[-1] - start) * 1000, 1) if ready and start else None,
        "goal": {"errors": 0},
    }
    report["meets_goal"] = report["errors"] == 0
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
