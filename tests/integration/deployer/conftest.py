"""Real HTTP stand-ins and process helpers for the deployer's integration tests.

A stand-in is a real aiohttp server (in its own thread) that records every
request and answers 200, or a status scripted per path. It stands for the
gateway's management API while the gateway is not available; the deployer
process and, where used, the broker are the real ones.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web

from knative_lambda.harness.polling import poll
from knative_lambda.harness.services.ports import free_port
from knative_lambda.settings import Settings
from tests.conftest import stop_popen


@dataclass
class Call:
    method: str
    path: str
    body: Any
    headers: dict[str, str]


@dataclass
class StandIn:
    """A recording HTTP server; ``script[(method, path)]`` lists statuses to answer first."""

    name: str
    port: int = 0
    calls: list[Call] = field(default_factory=list)
    script: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    default_status: dict[str, int] = field(default_factory=dict)  # method -> status
    replies: dict[tuple[str, str], tuple[int, Any]] = field(default_factory=dict)  # fixed answers
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def recorded(self, method: str | None = None) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if method is None or c.method == method]

    def clear(self) -> None:
        with self._lock:
            self.calls.clear()
            self.script.clear()
            self.replies.clear()

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            body = await request.json() if raw else None
        except ValueError:
            body = raw
        with self._lock:
            self.calls.append(Call(request.method, request.path, body, dict(request.headers)))
            key = (request.method, request.path)
            queued = self.script.get(key)
            if queued:
                return web.json_response({"standin": self.name}, status=queued.pop(0))
            if key in self.replies:
                status, reply = self.replies[key]
                return web.json_response(reply, status=status)
            status = self.default_status.get(request.method, 200)
        return web.json_response({"standin": self.name}, status=status)


def _serve(
    standins: list[StandIn],
) -> tuple[asyncio.AbstractEventLoop, threading.Thread, list[web.AppRunner]]:
    loop = asyncio.new_event_loop()
    runners: list[web.AppRunner] = []
    ready = threading.Event()

    async def start() -> None:
        for standin in standins:
            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", standin._handle)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            standin.port = standin.port or free_port()
            await web.TCPSite(runner, "127.0.0.1", standin.port).start()
            runners.append(runner)

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(10), "stand-in servers did not start"
    return loop, thread, runners


def _stop(
    loop: asyncio.AbstractEventLoop, thread: threading.Thread, runners: list[web.AppRunner]
) -> None:
    async def cleanup() -> None:
        for runner in runners:
            await runner.cleanup()

    asyncio.run_coroutine_threadsafe(cleanup(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


@pytest.fixture(scope="module")
def gateway() -> Iterator[StandIn]:
    standin = StandIn("gateway")
    handle = _serve([standin])
    try:
        yield standin
    finally:
        _stop(*handle)


@pytest.fixture(scope="module")
def builder_standin() -> Iterator[StandIn]:
    standin = StandIn("builder")
    handle = _serve([standin])
    try:
        yield standin
    finally:
        _stop(*handle)


@pytest.fixture(scope="module")
def broker_standin() -> Iterator[StandIn]:
    standin = StandIn("broker")
    handle = _serve([standin])
    try:
        yield standin
    finally:
        _stop(*handle)


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen
    url: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def start_process(
    module: str, settings: Settings, log: Path, extra_env: dict[str, str] | None = None
) -> Proc:
    env = {**os.environ, **settings.to_env(), **(extra_env or {})}
    out = log.open("w")
    popen = subprocess.Popen(
        [sys.executable, "-m", module], env=env, stdout=out, stderr=subprocess.STDOUT
    )
    out.close()
    return Proc(module.rsplit(".", 1)[-1], popen, f"http://127.0.0.1:{settings.port}", log)


def wait_healthy(proc: Proc, timeout: float = 30.0) -> None:
    started = time.monotonic()
    deadline = started + timeout
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise AssertionError(
                f"{proc.name} exited with {proc.popen.returncode}:\n{proc.output()}"
            )
        try:
            if httpx.get(proc.url + "/healthz", timeout=1.0).status_code == 200:
                if os.environ.get("KL_TEST_TIMINGS"):
                    print(f"{proc.name} healthy after {time.monotonic() - started:.2f}s")
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"{proc.name} not healthy within {timeout}s:\n{proc.output()}")


def stop_process(proc: Proc) -> None:
    stop_popen(proc.popen)


def wait_until(predicate, timeout: float = 20.0, what: str = "condition") -> None:
    if not poll(predicate, timeout, interval=0.05):
        raise AssertionError(f"timed out waiting for {what}")
