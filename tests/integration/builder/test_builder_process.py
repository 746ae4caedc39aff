"""The builder as a platform process behind the real broker (RabbitMQ), driven like production:
build.start published to the broker ingress, build.complete received through a trigger;
`kl build` as a subprocess; the read API and its token."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web

from knative_lambda.contract.bindings import from_http, to_http
from knative_lambda.contract.events import (
    BuildRequest,
    BuildResult,
    EventKind,
    event_type,
    tenant_source,
)
from knative_lambda.contract.factory import new_event
from knative_lambda.harness.services.ports import free_ports
from knative_lambda.harness.state import settings_to_dict
from knative_lambda.platform.broker.client import BrokerClient
from knative_lambda.platform.broker.triggers import trigger_object
from knative_lambda.platform.builder import artifact
from knative_lambda.settings import Settings
from tests.conftest import stop_popen, wait_healthz

from .conftest import EXAMPLES

TOKEN = "s3cret-token"
REPO = Path(__file__).resolve().parents[3]


@dataclass
class Proc:
    name: str
    url: str
    proc: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        stop_popen(self.proc)


def spawn(name: str, module: str, settings: Settings, extra: dict[str, str]) -> Proc:
    log = Path(settings.data_dir) / f"{name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **settings.to_env(), **extra}
    with log.open("ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", module], env=env, stdout=out, stderr=subprocess.STDOUT)
    p = Proc(name, f"http://127.0.0.1:{settings.port}", proc, log)
    wait_healthz(proc, p.url, name, log)
    return p


@dataclass
class Platform:
    settings: Settings
    state_file: Path
    broker: Proc
    builder: Proc
    headers: dict[str, str] = field(default_factory=lambda: {"Authorization": f"Bearer {TOKEN}"})


@pytest.fixture(scope="module")
def platform(amqp_url: str, s3, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    data = tmp_path_factory.mktemp("kl-platform")
    desc = s3.describe()
    creds, (source, temp) = desc["credentials"], desc["buckets"]
    bport, uport = free_ports(2)  # one call: two free_port() calls can repeat a port
    base = Settings(amqp_url=amqp_url, s3_endpoint=s3.url(), s3_access_key=creds["access_key"],
                    s3_secret_key=creds["secret_key"], s3_region=creds["region"], source_bucket=source,
                    temp_bucket=temp, broker_url=f"http://127.0.0.1:{bport}",
                    builder_url=f"http://127.0.0.1:{uport}", token=TOKEN, data_dir=data)
    broker = spawn("broker", "knative_lambda.platform.broker", Settings(**(base.__dict__ | {"port": bport})),
                   {"KL_BROKER_RECONNECT_INTERVAL": "0.3"})
    builder = None
    try:
        builder = spawn("builder", "knative_lambda.platform.builder", Settings(**(base.__dict__ | {"port": uport})),
                        {"KL_BUILD_OFFLINE": "1", "KL_BUILD_BACKOFF": "0", "KL_BUILD_MAX_CONCURRENT": "3"})
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # the builder registers its trigger in the background
            state = httpx.get(f"{builder.url}/apis/v1/builds", headers={"Authorization": f"Bearer {TOKEN}"}).json()
            if state["trigger"] == "registered":
                break
            time.sleep(0.1)
        else:
            raise AssertionError(f"builder trigger not registered: {state['trigger']}")
        state_file = data / "env.json"
        state_file.write_text(json.dumps({"target": "local", "settings": settings_to_dict(base)}))
        yield Platform(base, state_file, broker, builder)
    finally:
        if builder is not None:
            builder.stop()
        broker.stop()


@dataclass
class Sink:
    url: str = ""
    events: list[Any] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        self.events.append(from_http(request.headers, await request.read()))
        return web.Response(status=200)

    async def wait_for(self, correlation_id: str, timeout: float = 30) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in self.events:
                if event.get_extension("correlationid") == correlation_id:
                    return event
            await asyncio.sleep(0.05)
        raise AssertionError(f"no result event for {correlation_id} in {timeout}s ({len(self.events)} received)")


@pytest.fixture
async def sink(platform: Platform, serve_app) -> AsyncIterator[Sink]:
    """A receiver subscribed (through a real trigger) to the three build result types."""
    rec = Sink()
    app = web.Application()
    app.router.add_post("/", rec.handle)
    rec.url = await serve_app(app) + "/"
    name = f"results-{uuid.uuid4().hex[:8]}"
    client = BrokerClient(platform.settings.broker_url, TOKEN)
    kinds = (EventKind.BUILD_COMPLETE, EventKind.BUILD_FAILED, EventKind.BUILD_TIMEOUT)
    client.put_trigger(trigger_object(name, rec.url, filters=[{"any": [{"exact": {"type": event_type(k)}} for k in kinds]}]))
    try:
        yield rec
    finally:
        client.delete_trigger(name)
        client.close()


def put_source(platform: Platform, s3_client: Any, data: bytes) -> str:
    parser = f"p-{uuid.uuid4().hex[:10]}"
    s3_client.put_object(Bucket=platform.settings.source_bucket, Key=f"global/parser/{parser}", Body=data)
    return parser


def start_event(parser: str, kind: EventKind = EventKind.BUILD_START, tp: str = "acme") -> Any:
    return new_event(kind, BuildRequest(tp, parser), source=tenant_source(tp), subject=parser)


async def test_build_start_through_the_broker_gives_build_complete(platform, sink, s3_client) -> None:
    parser = put_source(platform, s3_client, b"def handle(event):\n    return {'ok': event['n'] * 2}\n")
    event = start_event(parser)
    client = BrokerClient(platform.settings.broker_url, TOKEN)
    try:
        await client.publish(event)
        result = await sink.wait_for(event.get_extension("correlationid"))
    finally:
        await client.aclose()
    assert result.get_type() == "network.notifi.lambda.build.complete"
    assert result.get_source() == "network.notifi.builder" and result.get_subject() == f"build/acme/{parser}"
    data = BuildResult.from_dict(result.get_data())  # every DESIGN §2 field
    assert data.status == "succeeded" and data.exit_code == 0 and not data.cached
    # the serving side resolves the artifact by the image URI of the event
    async with httpx.AsyncClient(headers=platform.headers) as http:
        resp = await http.get(f"{platform.builder.url}/apis/v1/artifacts/{data.image_uri}")
        assert resp.status_code == 200
        manifest = resp.json()
        assert manifest["runtime"] == "python" and manifest["content_hash"] == data.content_hash
    async with httpx.AsyncClient() as anonymous:
        assert (await anonymous.get(f"{platform.builder.url}/apis/v1/artifacts/{data.image_uri}")).status_code == 401
    assert artifact.invoke(Path(manifest["dir"]), {"n": 21}) == {"ok": 42}


async def test_failures_and_timeout_types_are_emitted(platform, sink, s3_client) -> None:
    parser = put_source(platform, s3_client, b"def handle(event):\n    return (\n")
    missing = f"p-{uuid.uuid4().hex[:10]}"
    client = BrokerClient(platform.settings.broker_url, TOKEN)
    try:
        bad, gone = start_event(parser), start_event(missing, EventKind.REBUILD_START)
        await client.publish(bad)
        await client.publish(gone)
        bad_result = await sink.wait_for(bad.get_extension("correlationid"))
        gone_result = await sink.wait_for(gone.get_extension("correlationid"))
    finally:
        await client.aclose()
    assert bad_result.get_type().endswith("build.failed")
    assert "syntax error in handler.py line 2" in bad_result.get_data()["error_message"]
    assert gone_result.get_type().endswith("build.failed")
    assert f"no source object s3://{platform.settings.source_bucket}/global/parser/{missing}" in gone_result.get_data()["error_message"]


async def test_direct_calls_structured_mode_wait_and_bad_input(platform, s3_client) -> None:
    parser = put_source(platform, s3_client, (EXAMPLES / "node-hello" / "index.js").read_bytes())
    headers, body = to_http(start_event(parser, EventKind.JOB_START), "structured")
    async with httpx.AsyncClient(timeout=30) as http:
        resp = await http.post(f"{platform.builder.url}/?wait=true", content=body, headers=headers)
        assert resp.status_code == 200 and resp.json()["status"] == "succeeded" and resp.json()["runtime"] == "node"
        # the same event again is a duplicate (receivers dedupe on source + id)
        again = await http.post(f"{platform.builder.url}/", content=body, headers=headers)
        assert again.status_code == 202 and again.json()["duplicate"] is True
        bad = await http.post(f"{platform.builder.url}/", json={"nope": 1}, headers={"ce-type": "x"})
        assert bad.status_code == 400 and bad.json()["problems"]
        other = new_event(EventKind.PARSER_START, {"x": 1}, source=tenant_source("acme"), subject=parser)
        h2, b2 = to_http(other)
        resp = await http.post(f"{platform.builder.url}/", content=b2, headers=h2)
        assert resp.status_code == 400 and "takes build.start" in resp.json()["error"]
        listing = await http.get(f"{platform.builder.url}/apis/v1/builds?parser_id={parser}", headers=platform.headers)
        assert listing.status_code == 200 and listing.json()["items"][0]["phase"] == "done"
        assert listing.json()["limit"] == 3


def kl(platform: Platform, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "knative_lambda", *args, "--state", str(platform.state_file)],
                          capture_output=True, text=True, timeout=90, cwd=REPO)


@pytest.mark.parametrize(
    "path, code, expected",
    [
        ("python-syntax-error", 1, "syntax error in handler.py line 2"),
    ],
    ids=["syntax-error"],
)
def test_kl_build_follows_to_the_end(platform, path: str, code: int, expected: str) -> None:
    done = kl(platform, "build", str(EXAMPLES / path), "--tp", "acme", "--parser", f"p-{uuid.uuid4().hex[:8]}")
    assert done.returncode == code, done.stdout + done.stderr
    assert "uploaded" in done.stdout and "sent network.notifi.lambda." in done.stdout
    import re

    assert re.search(expected, done.stdout), done.stdout


def test_kl_build_rebuild_forces_and_cached_does_not(platform) -> None:
    parser = f"p-{uuid.uuid4().hex[:8]}"
    first = kl(platform, "build", str(EXAMPLES / "python-hello"), "--tp", "acme", "--parser", parser)
    second = kl(platform, "build", str(EXAMPLES / "python-hello"), "--tp", "acme", "--parser", parser)
    forced = kl(platform, "build", str(EXAMPLES / "python-hello"), "--tp", "acme", "--parser", parser, "--rebuild")
    assert [p.returncode for p in (first, second, forced)] == [0, 0, 0], second.stdout + second.stderr
    assert "cached: False" in first.stdout and "cached: True" in second.stdout and "cached: False" in forced.stdout
    for done in (first, second, forced):
        assert "uploaded python-hello.tar.gz" in done.stdout and "build.complete" in done.stdout
        assert "status: succeeded" in done.stdout and "image_uri: localhost:5000/knative-lambdas:acme-" in done.stdout
    assert "sent network.notifi.lambda.rebuild.start" in forced.stdout


def test_kl_build_bad_ids_are_one_line_errors(platform) -> None:
    done = kl(platform, "build", str(EXAMPLES / "python-hello"), "--tp", "Bad_TP", "--parser", "p")
    assert done.returncode == 2 and "must be a DNS label" in done.stderr and "Traceback" not in done.stderr
