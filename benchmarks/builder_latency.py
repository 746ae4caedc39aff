"""Builder latency: build.start -> build.complete, for four kinds of build.

A script, not a test. It starts an S3 API server (the harness's preferred
provider: minio or the embedded moto server, or KL_S3_ENDPOINT) and the builder
as a real subprocess (`python -m knative_lambda.platform.builder`, local
backend). A small HTTP server in this process stands in for the broker: it is
the builder's ingress (`{broker_url}/{namespace}/default`) and records when each
build.complete arrives. Each sample posts one build.start (binary CloudEvent) to
the builder and waits for its build.complete, so a sample covers receipt, S3
fetch, hash, checks, context upload, the build itself and the result event.

    (a) cache hit                       the same code again (after one warm build)
    (b) uncached single-file Python     new code every time (a comment differs)
    (c) uncached Python + one small dep requirements.txt with six (uv, warm cache)
    (d) uncached single-file Node.js    new code every time

    .venv/bin/python benchmarks/builder_latency.py --samples 20

Prints one JSON object: p50/p95/max in ms per case, and the goals
(a) p95 <= 250 ms, (b) <= 2000 ms, (c) <= 5000 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from aiohttp import web

from knative_lambda.bench.functions import tar_gz
from knative_lambda.contract.bindings import from_http, to_http
from knative_lambda.contract.events import BuildRequest, EventKind, tenant_source
from knative_lambda.contract.factory import new_event
from knative_lambda.harness.services import boto3_client, resolve_s3
from knative_lambda.harness.services.ports import free_ports
from knative_lambda.settings import Settings

GOALS_MS = {"a_cache_hit": 250, "b_python_file": 2000, "c_python_one_dep": 5000, "d_node_file": None}
TP = "bench"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def source_for(case: str, nonce: str) -> bytes:
    if case in ("a_cache_hit", "b_python_file"):
        return f"# {nonce}\ndef handle(event):\n    return {{'ok': True}}\n".encode()
    if case == "c_python_one_dep":
        return tar_gz({"handler.py": f"# {nonce}\nimport six\n\ndef handle(event):\n    return six.__version__\n".encode(),
                       "requirements.txt": b"six\n"})
    return f"// {nonce}\nmodule.exports = {{ handle: async (e) => ({{ ok: true }}) }};\n".encode()


class Ingress:
    """Stands in for the broker ingress: resolves a future per correlation id."""

    def __init__(self) -> None:
        self.waiting: dict[str, asyncio.Future[tuple[float, Any]]] = {}

    async def post(self, request: web.Request) -> web.Response:
        event = from_http(request.headers, await request.read())
        future = self.waiting.pop(event.get_extension("correlationid"), None)
        if future is not None and not future.done():
            future.set_result((time.perf_counter(), event))
        return web.json_response({"id": event.get_id()}, status=202)

    async def trigger(self, _: web.Request) -> web.Response:
        return web.json_response({"ok": True})


async def one_build(http: httpx.AsyncClient, builder_url: str, ingress: Ingress, parser: str,
                    timeout: float) -> tuple[float, dict[str, Any]]:
    event = new_event(EventKind.BUILD_START, BuildRequest(TP, parser), source=tenant_source(TP), subject=parser)
    cid = event.get_extension("correlationid")
    future: asyncio.Future[tuple[float, Any]] = asyncio.get_running_loop().create_future()
    ingress.waiting[cid] = future
    headers, body = to_http(event)
    t0 = time.perf_counter()
    resp = await http.post(builder_url + "/", content=body, headers=headers)
    if resp.status_code != 202:
        raise SystemExit(f"builder answered {resp.status_code}: {resp.text}")
    t1, result = await asyncio.wait_for(future, timeout)
    data = result.get_data()
    if not result.get_type().endswith("build.complete"):
        raise SystemExit(f"build failed: {data.get('error_message')}")
    return (t1 - t0) * 1000.0, data


async def run(samples: int, timeout: float) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="kl-bench-builder-"))
    s3 = resolve_s3(os.environ, work / "s3")
    s3.start()
    builder_proc = None
    runner = None
    try:
        desc = s3.describe()
        client = boto3_client(desc)
        ingress = Ingress()
        app = web.Application()
        app.router.add_post("/{ns}/{broker}", ingress.post)
        app.router.add_put("/apis/v1/namespaces/{ns}/triggers/{name}", ingress.trigger)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        iport, bport = free_ports(2)
        await web.TCPSite(runner, "127.0.0.1", iport).start()
        creds, (source_bucket, temp_bucket) = desc["credentials"], desc["buckets"]
        settings = Settings(s3_endpoint=s3.url(), s3_access_key=creds["access_key"],
                            s3_secret_key=creds["secret_key"], s3_region=creds["region"],
                            source_bucket=source_bucket, temp_bucket=temp_bucket,
                            broker_url=f"http://127.0.0.1:{iport}", builder_url=f"http://127.0.0.1:{bport}",
                            data_dir=work / "data", port=bport)
        env = {**os.environ, **settings.to_env(), "KL_BUILD_OFFLINE": os.environ.get("KL_BUILD_OFFLINE", "1"),
               "KL_BUILD_RATE": "0", "KL_BUILD_BACKOFF": "0"}
        log = (work / "builder.log").open("wb")
        builder_proc = subprocess.Popen([sys.executable, "-m", "knative_lambda.platform.builder"], env=env,
                                        stdout=log, stderr=subprocess.STDOUT)
        url = settings.builder_url
        async with httpx.AsyncClient(timeout=timeout) as http:
            for _ in range(300):
                try:
                    if (await http.get(url + "/healthz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    await asyncio.sleep(0.05)
            else:
                raise SystemExit(f"builder did not start; see {work / 'builder.log'}")

            def put(parser: str, data: bytes) -> None:
                client.put_object(Bucket=source_bucket, Key=f"global/parser/{parser}", Body=data)

            # warm-up (not measured): imports, S3 connections, uv's cache for six, node
            for case in ("b_python_file", "c_python_one_dep", "d_node_file"):
                parser = f"warm-{case[0]}"
                put(parser, source_for(case, "warm"))
                await one_build(http, url, ingress, parser, timeout)
            put("hit", source_for("a_cache_hit", "hit"))
            await one_build(http, url, ingress, "hit", timeout)

            report: dict[str, Any] = {"samples": samples, "backend": "local", "cases": {}}
            for case in GOALS_MS:
                times: list[float] = []
                cached: list[bool] = []
                for i in range(samples):
                    if case == "a_cache_hit":
                        parser = "hit"
                    else:
                        parser = f"{case[0]}-{i}-{uuid.uuid4().hex[:6]}"
                        put(parser, source_for(case, uuid.uuid4().hex))
                    ms, data = await one_build(http, url, ingress, parser, timeout)
                    times.append(ms)
                    cached.append(bool(data.get("cached")))
                goal = GOALS_MS[case]
                p95 = percentile(times, 0.95)
                report["cases"][case] = {
                    "p50_ms": round(percentile(times, 0.5), 1),
                    "p95_ms": round(p95, 1),
                    "max_ms": round(max(times), 1),
                    "cached": sum(cached),
                    "goal_p95_ms": goal,
                    "meets_goal": None if goal is None else p95 <= goal,
                }
        return report
    finally:
        if builder_proc is not None:
            builder_proc.terminate()
            try:
                builder_proc.wait(10)
            except subprocess.TimeoutExpired:
                builder_proc.kill()
        if runner is not None:
            await runner.cleanup()
        s3.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=20, help="builds per case (default 20)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for one build")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(max(1, min(args.samples, 500)), args.timeout)), indent=2))


if __name__ == "__main__":
    main()
