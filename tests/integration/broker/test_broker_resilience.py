"""The broker under restarts: RabbitMQ restarted mid-stream, the broker process restarted."""

from __future__ import annotations

import asyncio
import json
import os
import time

import httpx
import pytest

from knative_lambda.contract.errors import ContractError
from knative_lambda.errors import PlatformError, ServiceUnavailable
from knative_lambda.harness.services import resolve_rabbitmq
from knative_lambda.platform.broker.client import BrokerClient
from knative_lambda.platform.broker.store import TriggerStore
from knative_lambda.platform.broker.triggers import trigger_object

from .conftest import parser_event, spawn_broker, unique_name


async def _send_until_accepted(client: BrokerClient, event, deadline: float) -> None:
    """A producer that honours the 202-means-stored contract: resend until accepted."""
    while True:
        try:
            await client.publish(event)
            return
        except (PlatformError, ContractError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


@pytest.fixture
def private_rabbitmq(tmp_path):
    """A node of this test's own: restarting the session's node would disturb other tests."""
    if os.environ.get("KL_AMQP_URL"):
        pytest.skip("KL_AMQP_URL is set: an external RabbitMQ is not restarted by the tests")
    try:
        node = resolve_rabbitmq(os.environ, tmp_path / "rabbitmq")
    except ServiceUnavailable as exc:
        pytest.skip(str(exc))
    node.start()
    yield node
    node.stop()


@pytest.mark.slow
async def test_stream_survives_a_rabbitmq_restart_without_loss(private_rabbitmq, receivers, tmp_path):
    rabbitmq = private_rabbitmq
    bp = spawn_broker(rabbitmq.url(), tmp_path / "broker")
    try:
        await _stream_through_restart(bp, rabbitmq, receivers)
    finally:
        bp.stop()


async def _stream_through_restart(bp, rabbitmq, receivers) -> None:
    rec = await receivers()
    client = BrokerClient(bp.url, retries=1, timeout=5)
    parser = unique_name("p")
    client.put_trigger(trigger_object(unique_name(), rec.url, attributes={"subject": parser},
                                      parallelism=10, delivery={"retry": 10, "backoffDelay": "PT0.1S"}))
    total, deadline = 300, time.monotonic() + 90
    events = [parser_event(parser, data={"i": i}) for i in range(total)]
    sent = 0
    restarted = False

    async def produce() -> None:
        nonlocal sent
        for event in events:
            await _send_until_accepted(client, event, deadline)
            sent += 1
            await asyncio.sleep(0.005)  # a steady stream, so the restart lands mid-way

    producer = asyncio.create_task(produce())
    await rec.wait_for(lambda r: len(r.unique) >= 50, timeout=30)
    await asyncio.to_thread(rabbitmq.restart)
    restarted = True
    await producer
    await rec.wait_for(lambda r: len(r.unique) == total, timeout=max(5, deadline - time.monotonic()))
    assert restarted and sent == total
    assert {e.get_data()["i"] for e in rec.unique} == set(range(total))
    await client.aclose()
    async with httpx.AsyncClient() as http:  # the broker still works afterwards
        assert (await http.get(f"{bp.url}/healthz")).status_code == 200


async def test_triggers_are_restored_after_a_broker_restart(start_broker, receivers, tmp_path):
    data = tmp_path / "persist"
    bp = start_broker(data)
    rec = await receivers()
    parser, name = unique_name("p"), unique_name()
    obj = trigger_object(name, rec.url, attributes={"subject": parser}, parallelism=3)
    bp.client().put_trigger(obj)
    bp.stop()
    # Events accepted while no dispatcher runs wait in the trigger's queue.
    bp2 = start_broker(data)
    client = bp2.client()
    [item] = [t for t in client.list_triggers() if t["name"] == name]
    assert item["parallelism"] == 3 and item["subscriber"] == rec.url
    await client.publish(parser_event(parser))
    await rec.wait_for(lambda r: len(r.unique) == 1)
    assert client.delete_trigger(name) is True
    assert client.delete_trigger(name) is False
    assert client.get_trigger(name) is None
    await client.aclose()


def test_unusable_stored_triggers_are_skipped_at_start(start_broker, tmp_path):
    """A stored trigger that cannot be restored is logged and skipped; the broker still starts."""
    data = tmp_path / "bad-store"
    store = TriggerStore(data)
    store.save("default", "good", trigger_object("good", "http://127.0.0.1:9/"))
    store.save("default", "huge-retry", trigger_object("huge-retry", "http://127.0.0.1:9/",
                                                       delivery={"retry": 1_000_000}))
    store.root.joinpath("default.odd.json").write_text(json.dumps({"namespace": 5, "name": "odd", "object": {}}))
    deep = "[" * 100_000 + "]" * 100_000
    store.root.joinpath("default.deep.json").write_text(f'{{"namespace":"default","name":"deep","object":{deep}}}')
    bp = start_broker(data)
    assert [t["name"] for t in bp.client().list_triggers()] == ["good"]
    assert bp.client().delete_trigger("good") is True
    assert bp.log_text().count("skipp") >= 3
