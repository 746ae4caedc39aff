"""Real parts for the broker tests: the broker as a subprocess, aiohttp receivers.

``broker`` is one broker process per test module (triggers get unique names);
``start_broker`` starts more (own data dir, own env) for restart tests.
``receiver`` is a real HTTP server in the test's event loop that records every
attempt and answers as told.
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp import web

from knative_lambda.contract.bindings import from_http, to_http
from knative_lambda.contract.dedupe import Dedupe
from knative_lambda.contract.events import EventKind
from knative_lambda.contract.factory import new_event
from knative_lambda.harness.services.ports import free_port
from knative_lambda.platform.broker.client import BrokerClient
from knative_lambda.settings import Settings
from tests.conftest import stop_popen, wait_healthz


@dataclass
class BrokerProcess:
    url: str
    data_dir: Path
    proc: subprocess.Popen[bytes]
    log: Path
    token: str = ""

    @property
    def port(self) -> int:
        return int(urlsplit(self.url).port or 0)

    def client(self) -> BrokerClient:
        return BrokerClient(self.url, self.token)

    def stop(self) -> None:
        stop_popen(self.proc)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def spawn_broker(amqp_url: str, data_dir: Path, token: str = "", **extra_env: str) -> BrokerProcess:
    port = free_port()
    settings = Settings(amqp_url=amqp_url, data_dir=data_dir, port=port, token=token,
                        broker_url=f"http://127.0.0.1:{port}")
    env = {**os.environ, **settings.to_env(), "KL_BROKER_RECONNECT_INTERVAL": "0.3",
           "KL_BROKER_ATTEMPT_TIMEOUT": "5", **extra_env}
    data_dir.mkdir(parents=True, exist_ok=True)
    log = data_dir / "broker.log"
    with log.open("ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "knative_lambda.platform.broker"],
                                env=env, stdout=out, stderr=subprocess.STDOUT)
    bp = BrokerProcess(f"http://127.0.0.1:{port}", data_dir, proc, log, token)
    wait_healthz(proc, bp.url, "broker", log)
    return bp


@pytest.fixture
def start_broker(amqp_url: str, tmp_path: Path) -> Iterator[Callable[..., BrokerProcess]]:
    started: list[BrokerProcess] = []

    def start(data_dir: Path | None = None, **env: str) -> BrokerProcess:
        bp = spawn_broker(amqp_url, data_dir or tmp_path / f"broker-{len(started)}", **env)
        started.append(bp)
        return bp

    yield start
    for bp in started:
        bp.stop()


@pytest.fixture(scope="module")
def broker(amqp_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    bp = spawn_broker(amqp_url, tmp_path_factory.mktemp("broker"))
    yield bp
    bp.stop()


@dataclass
class Receiver:
    """Records every delivery attempt; ``plan`` decides each answer."""

    url: str = ""
    attempts: list[tuple[float, Any]] = field(default_factory=list)  # (monotonic, event)
    statuses: list[int] = field(default_factory=list)  # answers in order, then ``default_status``
    default_status: int = 200
    delay: float = 0.0
    jitter: float = 0.0  # plus a random 0..jitter s, so that deliveries finish out of order
    reply: Callable[[Any], Any] | None = None  # event -> reply CloudEvent (or None)
    inflight: int = 0
    max_inflight: int = 0
    dedupe: Dedupe = field(default_factory=Dedupe)
    unique: list[Any] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        event = from_http(request.headers, body)
        self.inflight += 1
        self.max_inflight = max(self.max_inflight, self.inflight)
        try:
            if self.delay or self.jitter:
                await asyncio.sleep(self.delay + random.uniform(0, self.jitter))
            self.attempts.append((time.monotonic(), event))
            status = self.statuses.pop(0) if self.statuses else self.default_status
            if 200 <= status < 300 and self.dedupe.first_time(event.get_source(), event.get_id()):
                self.unique.append(event)
            if 200 <= status < 300 and self.reply is not None:
                out = self.reply(event)
                if out is not None:
                    headers, rbody = to_http(out, "binary")
                    return web.Response(status=200, body=rbody, headers=headers)
            return web.Response(status=status, text=f"status {status}")
        finally:
            self.inflight -= 1
            self.changed.set()

    async def wait_for(self, check: Callable[[Receiver], bool], timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while not check(self):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"receiver: condition not met in {timeout}s "
                                     f"({len(self.attempts)} attempts, {len(self.unique)} unique)")
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), min(left, 0.5))
            except TimeoutError:
                pass


@pytest.fixture
async def receivers() -> AsyncIterator[Callable[..., Any]]:
    runners: list[web.AppRunner] = []

    async def make(**kw: Any) -> Receiver:
        rec = Receiver(**kw)
        app = web.Application()
        app.router.add_post("/", rec.handle)
        # Short shutdown: the broker's keep-alive connections must not hold teardown.
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        rec.url = f"http://127.0.0.1:{port}/"
        runners.append(runner)
        return rec

    yield make
    for runner in runners:
        await runner.cleanup()


def unique_name(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def parser_event(parser: str = "p1", tp: str = "acme", data: Any = None, **ext: Any) -> Any:
    """A valid ``parser.start`` event (any data shape is allowed for it)."""
    return new_event(EventKind.PARSER_START, data if data is not None else {"n": 1},
                     source=f"network.notifi.{tp}", subject=parser, extensions=ext or None)
