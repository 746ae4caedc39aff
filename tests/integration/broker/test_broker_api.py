"""The trigger API and the token, over real HTTP."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import aio_pika
import httpx
import pytest

from knative_lambda.errors import ConfigError, PlatformError
from knative_lambda.platform.broker import topology
from knative_lambda.platform.broker.client import BrokerClient
from knative_lambda.platform.broker.triggers import trigger_object

from .conftest import parser_event, unique_name


def test_put_is_idempotent_and_update_changes_the_filter(broker, receivers):
    client = broker.client()
    name = unique_name()
    obj = trigger_object(name, "http://127.0.0.1:1/", attributes={"type": "a.b"})
    url = f"{broker.url}/apis/v1/namespaces/default/triggers/{name}"
    assert httpx.put(url, json=obj).status_code == 201
    assert httpx.put(url, json=obj).status_code == 200
    obj2 = trigger_object(name, "http://127.0.0.1:1/", filters=[{"prefix": {"type": "a."}}],
                          parallelism=7)
    info = client.put_trigger(obj2)
    assert info["parallelism"] == 7 and info["filter"] == '[{"prefix":{"type":"a."}}]'
    listed = {t["name"]: t for t in client.list_triggers()}
    assert listed[name]["queue_depth"] == 0
    for key in ("broker", "filter", "subscriber", "delivered", "retried", "dead_lettered"):
        assert key in listed[name]
    assert client.delete_trigger(name)


def test_invalid_trigger_gets_400_with_problems(broker):
    r = httpx.put(f"{broker.url}/apis/v1/namespaces/default/triggers/t-bad",
                  json={"spec": {"broker": "default", "subscriber": {"uri": "nope"},
                                 "delivery": {"backoffDelay": "soon"}}})
    assert r.status_code == 400
    assert {p["where"] for p in r.json()["problems"]} == {
        "spec.subscriber.uri", "spec.delivery.backoffDelay"}
    r = httpx.put(f"{broker.url}/apis/v1/namespaces/default/triggers/t-bad", content=b"{")
    assert r.status_code == 400
    with pytest.raises(ConfigError):
        broker.client().put_trigger({"metadata": {"name": "x"}, "spec": {}})


async def test_token_protects_ingress_and_api(start_broker):
    bp = start_broker(token="s3cret")
    r = httpx.get(f"{bp.url}/apis/v1/triggers")
    assert r.status_code == 401
    assert httpx.get(f"{bp.url}/healthz").status_code == 200
    with pytest.raises(ConfigError):
        BrokerClient(bp.url, "wrong").list_triggers()
    client = BrokerClient(bp.url, "s3cret")
    assert client.list_triggers() == []
    assert await client.publish(parser_event()) != ""
    await client.aclose()


def test_metrics_count_events(broker):
    client = broker.client()
    client.publish_sync(parser_event())
    text = httpx.get(f"{broker.url}/metrics").text
    assert ('cloudevents_total{broker="default",namespace="default",outcome="published",trigger="",'
            'type="network.notifi.lambda.parser.start"}') in text
    # A rejected event's type was not validated: it never becomes a label value.
    bad = httpx.post(f"{broker.url}/default/default", content=b"{}",
                     headers={"content-type": "application/cloudevents+json", "ce-type": "evil.type"})
    assert bad.status_code == 400
    text = httpx.get(f"{broker.url}/metrics").text
    assert 'outcome="rejected",trigger="",type=""}' in text and "evil.type" not in text


def _kl(*args: str, state) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "KL_BROKER_URL"}
    return subprocess.run([sys.executable, "-m", "knative_lambda", *args, "--state", str(state)],
                          capture_output=True, text=True, timeout=60, env=env)


async def test_kl_emit_and_kl_triggers(broker, receivers, tmp_path):
    rec = await receivers()
    parser, name = unique_name("p"), unique_name()
    broker.client().put_trigger(trigger_object(name, rec.url, attributes={"subject": parser}))
    state = tmp_path / "env.json"
    state.write_text(json.dumps({"target": "local", "settings": {"broker_url": broker.url}}))

    out = await asyncio.to_thread(_kl, "emit", "parser.start", "--source", "network.notifi.acme",
                                  "--subject", parser, "--data", '{"a": 1}', state=state)
    assert out.returncode == 0, out.stderr
    [event_id] = out.stdout.split()
    batch = tmp_path / "batch.jsonl"
    batch.write_text("\n".join(json.dumps({"type": "parser.start", "source": "network.notifi.acme",
                                           "subject": parser, "data": {"i": i}}) for i in range(3)))
    out = await asyncio.to_thread(_kl, "emit", "--file", str(batch), state=state)
    assert out.returncode == 0, out.stderr
    assert len(out.stdout.split()) == 3
    await rec.wait_for(lambda r: len(r.unique) == 4)
    assert rec.unique[0].get_id() == event_id

    bad = await asyncio.to_thread(_kl, "emit", "parser.start", "--source", "nowhere", "--subject",
                                  parser, state=state)
    assert bad.returncode == 2 and bad.stderr.startswith("error:") and "source" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1  # one line, no traceback

    table = await asyncio.to_thread(_kl, "triggers", state=state)
    assert table.returncode == 0, table.stderr
    row = next(line for line in table.stdout.splitlines() if line.startswith(name))
    assert row.split()[-3:] == ["4", "0", "0"]  # delivered, retried, dead-lettered
    as_json = await asyncio.to_thread(_kl, "triggers", "--json", state=state)
    assert any(t["name"] == name and t["delivered"] == 4 for t in json.loads(as_json.stdout))


def test_quorum_queues_are_used(broker, amqp_url):
    name = unique_name()
    broker.client().put_trigger(trigger_object(name, "http://127.0.0.1:1/"))

    async def check() -> None:
        conn = await aio_pika.connect(amqp_url)
        async with conn:
            for queue in (topology.queue_name("default", "default", name),
                          topology.dlq_name("default", "default", name)):
                ch = await conn.channel()
                # Redeclaring with the quorum argument succeeds only if it is a quorum queue.
                await ch.declare_queue(queue, durable=True, arguments={"x-queue-type": "quorum"})
                await ch.close()

    asyncio.run(check())
    broker.client().delete_trigger(name)


async def test_a_trigger_on_another_broker_opens_its_ingress(broker, receivers):
    rec = await receivers()
    name = unique_name()
    other = BrokerClient(broker.url, broker="team-a")
    with pytest.raises(PlatformError, match="404"):
        await other.publish(parser_event())
    broker.client().put_trigger(trigger_object(name, rec.url, broker="team-a"))
    ev = parser_event()
    await other.publish(ev)
    await rec.wait_for(lambda r: len(r.unique) == 1)
    assert rec.unique[0].get_id() == ev.get_id()
    assert broker.client().get_trigger(name)["queue"] == topology.queue_name("default", "team-a", name)
    broker.client().delete_trigger(name)
    await other.aclose()
