"""Link proxies in front of the real RabbitMQ and S3: traffic flows, faults bite, heal restores."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aio_pika
import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from knative_lambda.harness import supervisor
from knative_lambda.harness.faults.control import FaultProxyClient
from knative_lambda.harness.faults.links import (
    proxied_settings,
    start_link_proxies,
    stop_link_proxies,
)
from knative_lambda.settings import Settings


@pytest.fixture
def links(service_settings: Settings, tmp_path: Path) -> Iterator[dict[str, dict[str, Any]]]:
    started = start_link_proxies(service_settings, tmp_path)
    try:
        yield started
    finally:
        assert sorted(stop_link_proxies(started)) == ["rabbitmq", "s3"]
        assert not any(supervisor.alive(d) for d in started.values())


async def amqp_roundtrip(url: str, body: bytes, timeout: float = 10.0) -> bytes:
    connection = await asyncio.wait_for(aio_pika.connect(url, timeout=timeout), timeout)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await channel.default_exchange.publish(aio_pika.Message(body), routing_key=queue.name)
        message = await queue.get(timeout=timeout, fail=False)
        for _ in range(50):
            if message is not None:
                break
            await asyncio.sleep(0.05)
            message = await queue.get(timeout=timeout, fail=False)
        assert message is not None
        await message.ack()
        return message.body


async def test_aio_pika_round_trip_through_the_rabbitmq_link(
        links: dict[str, dict[str, Any]], service_settings: Settings) -> None:
    url = proxied_settings(service_settings, links).amqp_url
    assert url != service_settings.amqp_url
    assert await amqp_roundtrip(url, b"through the proxy") == b"through the proxy"

    client = FaultProxyClient(links["rabbitmq"]["control_url"])
    client.set_faults({"latency_ms": 100})
    started = time.monotonic()
    assert await amqp_roundtrip(url, b"slow") == b"slow"
    assert time.monotonic() - started >= 0.2  # at least one request/response crossed the link
    client.heal()
    stats = client.stats()["stats"]
    assert stats["connections_total"] == 2
    assert stats["bytes_up"] > 0 and stats["bytes_down"] > 0


async def test_reset_drops_an_open_amqp_connection(
        links: dict[str, dict[str, Any]], service_settings: Settings) -> None:
    url = proxied_settings(service_settings, links).amqp_url
    connection = await aio_pika.connect(url, timeout=10)
    closed = asyncio.Event()
    connection.close_callbacks.add(lambda *_: closed.set())
    client = FaultProxyClient(links["rabbitmq"]["control_url"])
    assert await asyncio.to_thread(client.reset_connections) == 1
    await asyncio.wait_for(closed.wait(), 10)
    await connection.close()


def s3_through(settings: Settings, endpoint: str, timeout: float) -> Any:
    return boto3.client(
        "s3", endpoint_url=endpoint, aws_access_key_id=settings.s3_access_key,
        aws_secret_access_key=settings.s3_secret_key, region_name=settings.s3_region,
        config=Config(retries={"max_attempts": 1}, connect_timeout=timeout, read_timeout=timeout))


def test_boto3_through_the_s3_link_and_a_blackhole(
        links: dict[str, dict[str, Any]], service_settings: Settings) -> None:
    endpoint = proxied_settings(service_settings, links).s3_endpoint
    s3 = s3_through(service_settings, endpoint, timeout=0.5)
    key = f"faults/{uuid.uuid4().hex}"
    s3.put_object(Bucket=service_settings.source_bucket, Key=key, Body=b"payload")
    assert s3.get_object(Bucket=service_settings.source_bucket, Key=key)["Body"].read() == b"payload"

    client = FaultProxyClient(links["s3"]["control_url"])
    client.set_faults({"blackhole": True})
    fresh = s3_through(service_settings, endpoint, timeout=0.5)  # new connection: held
    with pytest.raises((BotoCoreError, ClientError)):
        fresh.get_object(Bucket=service_settings.source_bucket, Key=key)
    client.set_faults({"reset_fraction": 1.0})
    with pytest.raises((BotoCoreError, ClientError)):
        s3_through(service_settings, endpoint, 0.5).get_object(
            Bucket=service_settings.source_bucket, Key=key)

    client.heal()
    healed = s3_through(service_settings, endpoint, timeout=5)
    assert healed.get_object(Bucket=service_settings.source_bucket, Key=key)["Body"].read() == b"payload"
    assert client.stats()["stats"]["resets"] >= 1
