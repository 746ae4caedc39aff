"""Locust for real, as a subprocess, against a local aiohttp server on 127.0.0.1 (bounded)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from knative_lambda.bench import locust_runner as lr
from knative_lambda.bench.results import BenchmarkRecord
from knative_lambda.bench.runner import Recorder


@pytest.fixture()
async def server() -> AsyncIterator[tuple[str, list[dict[str, str]]]]:
    seen: list[dict[str, str]] = []

    async def ok(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"succeeded": True, "eventEntries": []})

    async def fail(request: web.Request) -> web.Response:
        return web.json_response({"error": "nope"}, status=500)

    async def ingress(request: web.Request) -> web.Response:
        if len(seen) < 50:
            seen.append({k.lower(): v for k, v in request.headers.items()})
        return web.Response(status=202)

    app = web.Application()
    app.router.add_post("/fn", ok)
    app.router.add_post("/fail", fail)
    app.router.add_post("/default/default", ingress)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", seen
    finally:
        await runner.cleanup()


async def _run(tmp_path: Path, file: str, host: str, **kw) -> lr.LocustRun:
    return await asyncio.to_thread(lr.run_locust, lr.LOCUSTFILES[file], host, tmp_path, **kw)


async def test_http_invoke_run_gives_samples_and_series(server, tmp_path: Path) -> None:
    host, _ = server
    run = await asyncio.to_thread(lr.run_http_load, f"{host}/fn", tmp_path, users=2, run_time_s=3)
    assert run.returncode == 0, run.stderr_tail
    assert run.raw.samples and run.raw.errors == 0
    assert 0 < run.raw.window < 10.0
    # (locust's own CSV aggregate is written periodically and may lag: raw samples are the truth)
    assert run.series["users"].v and max(run.series["users"].v) <= 2
    assert run.series["rps"].t
    rec = Recorder(BenchmarkRecord("throughput", "throughput"))
    lr.record_into(rec, run, "gateway")
    m = rec.record.measurements["throughput.gateway"]
    summary = m.summarize()
    assert summary.count == len(run.raw.samples) and summary.rps.value > 0
    assert "rps.gateway" in rec.record.series and "users.gateway" in rec.record.series


async def test_failures_are_counted_as_errors(server, tmp_path: Path) -> None:
    host, _ = server
    run = await _run(tmp_path, "http", host, users=1, run_time_s=2,
                     env={"KL_FUNCTION_PATH": "/fail", "KL_LOAD_USER_RPS": "20"})
    assert run.returncode == 1  # locust's "some requests failed"
    assert run.raw.errors > 0 and not run.raw.samples
    [(message, count)] = run.raw.error_counts.items()
    assert "500" in message and count == run.raw.errors


async def test_profile_shape_drives_broker_events(server, tmp_path: Path) -> None:
    host, seen = server
    # spike scaled to 4.8 s: 1.2 s at 1/s, 2.4 s at 50/s (10 users at 5/s each), 1.2 s at 1/s
    env = {"KL_LOAD_PROFILE": "spike", "KL_LOAD_SCALE": "0.1", "KL_LOAD_TIME_SCALE": "0.02",
           "KL_TP": "acme", "KL_PARSER": "p1"}
    run = await _run(tmp_path, "events", host, run_time_s=5, env=env)
    assert run.returncode == 0, run.stderr_tail
    assert run.raw.samples and run.raw.errors == 0
    assert max(run.series["users"].v) >= 2  # the shape scaled users up for the spike
    h = seen[0]
    assert h["ce-type"] == "network.notifi.lambda.parser.start"
    assert h["ce-source"] == "network.notifi.acme" and h["ce-subject"] == "p1"
    assert len({s["ce-id"] for s in seen}) == len(seen)  # a fresh id per event


async def test_bad_profile_is_reported(server, tmp_path: Path) -> None:
    host, _ = server
    with pytest.raises(Exception, match="locust exited"):
        await _run(tmp_path, "http", host, run_time_s=1, env={"KL_LOAD_PROFILE": "tsunami"})


def test_locust_is_not_imported_here() -> None:
    assert "locust" not in sys.modules
