"""The broker's ingress workers (platform/broker/workers.py, issue #3) as real processes on a
real RabbitMQ: they share the port, their counts and spans reach the broker's /metrics and
trace files, a killed one is started again with nothing accepted lost, they stop and die
with the broker, and a worker that cannot listen stops the broker with one clear line."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
from prometheus_client.parser import text_string_to_metric_families

from knative_lambda.contract.bindings import to_http
from knative_lambda.harness.services.ports import free_port
from knative_lambda.platform.broker.triggers import trigger_object
from knative_lambda.settings import Settings

from .conftest import parser_event, unique_name

TRACED = {"KL_TRACE_SAMPLE": "1"}


def workers_of(bp) -> list[psutil.Process]:
    return psutil.Process(bp.proc.pid).children()


def wait_until(check, timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not met in {timeout} s")
        time.sleep(0.05)


def serves(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def published(bp) -> float:
    text = httpx.get(f"{bp.url}/metrics", timeout=10).text
    return sum(s.value for fam in text_string_to_metric_families(text) for s in fam.samples
               if s.name == "cloudevents_total" and s.labels.get("outcome") == "published")


def ingress_spans(data_dir: Path) -> dict[str, int]:
    """broker.ingress spans per trace file."""
    out = {}
    for path in sorted((data_dir / "traces").glob("broker*.jsonl")):
        out[path.stem] = sum(json.loads(line)["name"] == "broker.ingress" for line in path.read_text().splitlines())
    return out


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


async def test_two_workers_share_the_port_and_their_counts_and_spans_add_up(start_broker, receivers):
    bp = start_broker(KL_BROKER_INGRESS_WORKERS="2", **TRACED)
    workers = workers_of(bp)
    assert len(workers) == 2
    rec = await receivers()
    client = bp.client()
    parser = unique_name("p")
    client.put_trigger(trigger_object(unique_name(), rec.url, attributes={"subject": parser}))
    events = [parser_event(parser) for _ in range(40)]
    for ev in events:  # a connection each: the kernel spreads connections over the workers
        async with httpx.AsyncClient() as one:
            headers, body = to_http(ev)
            assert (await one.post(client.ingress_url, content=body, headers=headers)).status_code == 202
    await rec.wait_for(lambda r: len(r.unique) == len(events))
    assert {e.get_id() for e in rec.unique} == {e.get_id() for e in events}
    assert published(bp) == len(events)  # summed over both workers' counts
    wait_until(lambda: sum(ingress_spans(bp.data_dir).values()) == len(events), what="ingress spans")
    spans = ingress_spans(bp.data_dir)
    assert spans.get("broker-ingress-0", 0) > 0 and spans.get("broker-ingress-1", 0) > 0, spans
    assert spans.get("broker", 0) == 0  # the broker itself served no ingress request
    await client.aclose()


async def test_a_killed_worker_is_started_again_and_nothing_accepted_is_lost(start_broker, receivers):
    bp = start_broker()  # the default: one worker on this machine's two CPUs
    (worker,) = workers_of(bp)
    rec = await receivers()
    client = bp.client()
    parser = unique_name("p")
    client.put_trigger(trigger_object(unique_name(), rec.url, attributes={"subject": parser}))
    accepted = [await client.publish(parser_event(parser)) for _ in range(10)]
    worker.kill()
    wait_until(lambda: [w.pid for w in workers_of(bp)] not in ([], [worker.pid]), what="a new worker")
    wait_until(lambda: serves(bp.url), what="the port served")
    accepted += [await client.publish(parser_event(parser)) for _ in range(10)]
    await rec.wait_for(lambda r: len(r.unique) == len(accepted))
    assert sorted(e.get_id() for e in rec.unique) == sorted(accepted)
    assert "ingress worker 0" in bp.log_text() and "starting it again" in bp.log_text()
    await client.aclose()


async def test_without_workers_the_broker_serves_its_port_itself(start_broker, receivers):
    bp = start_broker(KL_BROKER_INGRESS_WORKERS="0", **TRACED)
    assert workers_of(bp) == []
    rec = await receivers()
    client = bp.client()
    parser = unique_name("p")
    client.put_trigger(trigger_object(unique_name(), rec.url, attributes={"subject": parser}))
    ev = parser_event(parser)
    await client.publish(ev)
    await rec.wait_for(lambda r: len(r.unique) == 1)
    assert published(bp) == 1
    wait_until(lambda: ingress_spans(bp.data_dir).get("broker") == 1, what="the broker's ingress span")
    await client.aclose()


async def test_a_worker_accepts_events_for_a_broker_created_after_it_started(start_broker, receivers):
    bp = start_broker()
    rec = await receivers()
    client = bp.client()
    other = bp.client()
    other.broker = "second"
    ev = parser_event(unique_name("p"))
    with httpx.Client() as http:  # the broker does not exist yet: 404, not forwarded to a dispatcher
        assert http.post(other.ingress_url, json={}).status_code == 404
    client.put_trigger(trigger_object(unique_name(), rec.url, broker="second"))
    assert await other.publish(ev) == ev.get_id()
    await rec.wait_for(lambda r: len(r.unique) == 1)
    await client.aclose()
    await other.aclose()


def test_stopping_the_broker_stops_its_workers_and_frees_the_port(start_broker) -> None:
    bp = start_broker()
    (worker,) = workers_of(bp)
    bp.proc.send_signal(signal.SIGTERM)
    assert bp.proc.wait(30) == 0
    assert not worker.is_running() or worker.status() == psutil.STATUS_ZOMBIE
    assert port_is_free(bp.port)


def test_a_worker_dies_with_a_killed_broker(start_broker) -> None:
    bp = start_broker()
    (worker,) = workers_of(bp)
    bp.proc.kill()
    bp.proc.wait(10)
    worker.wait(30)  # SIGTERM from the kernel (PDEATHSIG); it drains and exits
    wait_until(lambda: port_is_free(bp.port), what="the port freed")


def test_a_worker_that_cannot_listen_stops_the_broker_with_a_clear_error(amqp_url, tmp_path) -> None:
    port = free_port()
    held = socket.socket()  # no SO_REUSEPORT: a worker cannot listen beside it
    held.bind(("127.0.0.1", port))
    held.listen()
    settings = Settings(amqp_url=amqp_url, data_dir=tmp_path, port=port, broker_url=f"http://127.0.0.1:{port}")
    try:
        out = subprocess.run([sys.executable, "-m", "knative_lambda.platform.broker"],
                             env={**os.environ, **settings.to_env(), "KL_BROKER_INGRESS_WORKERS": "1"},
                             capture_output=True, text=True, timeout=120)
    finally:
        held.close()
    assert out.returncode == 1
    assert "ingress worker 0 cannot serve" in out.stderr and "address already in use" in out.stderr.lower()
    assert "broker cannot serve: ingress worker 0 did not start" in out.stderr
    assert "Traceback" not in out.stderr


async def test_ingress_workers_setting_is_checked(amqp_url, tmp_path) -> None:
    settings = Settings(amqp_url=amqp_url, data_dir=tmp_path, port=free_port())
    out = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "knative_lambda.platform.broker",
        env={**os.environ, **settings.to_env(), "KL_BROKER_INGRESS_WORKERS": "many"},
        stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(out.communicate(), 60)
    assert out.returncode != 0
    assert b"KL_BROKER_INGRESS_WORKERS='many' is not a whole number" in err


def test_a_worker_started_by_hand_or_orphaned_says_why_it_stops(tmp_path) -> None:
    env = {**os.environ, **Settings(data_dir=tmp_path, port=free_port()).to_env()}
    argv = [sys.executable, "-m", "knative_lambda.platform.broker.workers"]
    bad = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and "ingress worker:" in bad.stderr and "Traceback" not in bad.stderr
    orphan = subprocess.run([*argv, str(tmp_path / "api.sock"), "0", "1"], env=env, capture_output=True,
                            text=True, timeout=60)
    assert orphan.returncode == 1 and "the broker (pid 1) is gone" in orphan.stderr
