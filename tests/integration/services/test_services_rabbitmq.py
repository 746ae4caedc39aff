"""RabbitMQ providers against real processes: a private node, external URL, failures."""

from __future__ import annotations

import asyncio
import json

import aio_pika
import psutil
import pytest

from knative_lambda.errors import ServiceUnavailable
from knative_lambda.harness.services import attach, resolve_rabbitmq
from knative_lambda.harness.services.base import Service
from knative_lambda.harness.services.ports import free_port
from knative_lambda.harness.services.rabbitmq import ExternalRabbitMQ, RabbitMQNode


async def _publish(url: str, queue: str, body: bytes, *, durable: bool) -> None:
    conn = await aio_pika.connect(url, timeout=10)
    async with conn:
        channel = await conn.channel(publisher_confirms=True)
        await channel.declare_queue(queue, durable=durable)
        mode = aio_pika.DeliveryMode.PERSISTENT if durable else aio_pika.DeliveryMode.NOT_PERSISTENT
        # With confirms on, publish() returns only once the broker has taken the message.
        await channel.default_exchange.publish(
            aio_pika.Message(body, delivery_mode=mode), routing_key=queue
        )


async def _consume_one(url: str, queue: str, *, durable: bool) -> bytes:
    conn = await aio_pika.connect(url, timeout=10)
    async with conn:
        channel = await conn.channel()
        q = await channel.declare_queue(queue, durable=durable)
        for _ in range(50):  # bounded: at most ~5 s
            message = await q.get(fail=False)
            if message is not None:
                await message.ack()
                return message.body
            await asyncio.sleep(0.1)
    raise AssertionError(f"no message in {queue}")


def test_session_node_is_healthy(rabbitmq: Service) -> None:
    assert isinstance(rabbitmq, Service)
    ok, detail = rabbitmq.health()
    assert ok, detail
    desc = rabbitmq.describe()
    json.dumps(desc)  # the state file stores it
    assert desc["name"] == "rabbitmq" and desc["url"] == rabbitmq.url()


async def test_publish_with_confirms_and_consume(amqp_url: str) -> None:
    await _publish(amqp_url, "kl-test-roundtrip", b"hello", durable=False)
    assert await _consume_one(amqp_url, "kl-test-roundtrip", durable=False) == b"hello"


def test_fixture_honours_external_url(amqp_url: str, tmp_path) -> None:
    service = resolve_rabbitmq({"KL_AMQP_URL": amqp_url}, tmp_path)
    assert isinstance(service, ExternalRabbitMQ)
    service.start()  # reachable: no error
    assert service.health()[0]
    assert attach(service.describe()).url() == amqp_url


def test_external_url_unreachable_is_one_line(tmp_path) -> None:
    service = resolve_rabbitmq(
        {"KL_AMQP_URL": f"amqp://guest:guest@127.0.0.1:{free_port()}/"}, tmp_path
    )
    with pytest.raises(ServiceUnavailable) as err:
        service.start()
    assert "\n" not in str(err.value) and "KL_AMQP_URL" in str(err.value)


def test_nothing_available_is_one_line(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    env = {"PATH": str(tmp_path), "KL_RABBITMQ_SERVER": str(tmp_path / "rabbitmq-server")}
    with pytest.raises(ServiceUnavailable) as err:
        resolve_rabbitmq(env, tmp_path)
    message = str(err.value)
    assert "\n" not in message
    assert "apt-get install -y rabbitmq-server" in message and "KL_AMQP_URL" in message


def _node_processes(desc: dict) -> list[psutil.Process]:
    """Live processes of this node: recorded pids and anything naming its node or dir."""
    pids = {p["pid"] for p in desc["pids"].values()}
    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "status"]):
        if proc.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        cmdline = " ".join(proc.info["cmdline"] or [])
        if proc.info["pid"] in pids or desc["node"] in cmdline or desc["dirs"]["base"] in cmdline:
            found.append(proc)
    return found


async def test_private_node_lifecycle(tmp_path) -> None:
    node = resolve_rabbitmq({"PATH": "/usr/bin:/bin"}, tmp_path)  # sbin dirs are searched too
    assert isinstance(node, RabbitMQNode)
    await asyncio.to_thread(node.start)
    try:
        assert node.health()[0]
        url = node.url()
        await _publish(url, "kl-test-durable", b"survives", durable=True)
        before = json.loads(json.dumps(node.describe()))  # as the state file holds it

        await asyncio.to_thread(node.restart)
        assert node.url() == url  # same ports, same data
        assert await _consume_one(url, "kl-test-durable", durable=True) == b"survives"
        assert _node_processes(node.describe())
    finally:
        after = node.describe()
        # Stop from the pre-restart description alone, as `kl down` does in another
        # process after chaos restarted the node: the pid file leads to the new beam.
        await asyncio.to_thread(attach(before).stop)
    assert _node_processes(after) == []
    assert not attach(after).health()[0]
