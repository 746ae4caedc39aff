"""RabbitMQ names, declarations and connections for brokers and triggers.

One durable topic exchange per broker (routing key = event type), one queue per
trigger bound to it, and one dead-letter queue per trigger. Queues are quorum
queues (replicated, what the Knative RabbitMQ broker uses) where the server
supports them, durable classic queues otherwise. A trigger whose filter pins a
type is bound with that type; every other trigger is bound with ``#`` and its
dispatcher filters. Topic keys use ``.`` as separator and ``*``/``#`` as
wildcards, so a type containing those is bound with ``#`` too.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aio_pika
from aio_pika.abc import (
    AbstractChannel,
    AbstractConnection,
    AbstractExchange,
    AbstractRobustConnection,
)
from aiormq.exceptions import AMQPError, ChannelClosed

from knative_lambda.errors import ServiceUnavailable
from knative_lambda.platform.broker.amqp_socket import CoalescingConnection

log = logging.getLogger("kl.broker.topology")

PREFIX = "kl.broker"
DEFAULT_BROKER = ("default", "default")  # (namespace, broker): exists from the start
CONNECT_ATTEMPTS = 60  # at the reconnect interval each, before a process gives up at start
QUORUM_ARGS: dict[str, Any] = {"x-queue-type": "quorum"}


def exchange_name(namespace: str, broker: str) -> str:
    return f"{PREFIX}.{namespace}.{broker}"


def queue_name(namespace: str, broker: str, trigger: str) -> str:
    return f"{PREFIX}.{namespace}.{broker}.trigger.{trigger}"


def dlq_name(namespace: str, broker: str, trigger: str) -> str:
    return f"{queue_name(namespace, broker, trigger)}.dlq"


def binding_key(event_type: str | None) -> str:
    """The topic binding for a trigger whose filter requires ``event_type`` (None = any)."""
    if not event_type or "*" in event_type or "#" in event_type:
        return "#"
    return event_type


def routing_key(event_type: str) -> str:
    return event_type


async def declare_exchange(channel: AbstractChannel, namespace: str, broker: str) -> AbstractExchange:
    return await channel.declare_exchange(
        exchange_name(namespace, broker), aio_pika.ExchangeType.TOPIC, durable=True
    )


async def ensure_queue(connection: AbstractConnection, name: str, quorum: bool = True) -> dict[str, Any]:
    """Declare a durable queue, quorum first; returns the arguments it was declared with.

    A refused declare closes its channel (AMQP rule), so each try uses a
    short-lived channel; the caller then declares with the returned arguments on
    its long-lived (robust) channel, which re-declares the same after a reconnect.
    """
    if quorum:
        try:
            async with connection.channel(publisher_confirms=False) as ch:
                await ch.declare_queue(name, durable=True, arguments=QUORUM_ARGS)
            return dict(QUORUM_ARGS)
        except (ChannelClosed, AMQPError) as exc:
            # An old server without quorum queues, or the queue already exists as classic.
            log.info("queue %s: quorum declare refused (%s); using a durable classic queue", name, exc)
    async with connection.channel(publisher_confirms=False) as ch:
        await ch.declare_queue(name, durable=True)
    return {}


async def rebind(
    connection: AbstractConnection, queue: str, exchange: str, old_key: str | None, new_key: str
) -> None:
    """Bind ``queue`` to ``exchange`` with ``new_key`` and drop ``old_key`` if it differs."""
    async with connection.channel(publisher_confirms=False) as ch:
        q = await ch.get_queue(queue, ensure=False)
        await q.bind(exchange, new_key)
        if old_key and old_key != new_key:
            await q.unbind(exchange, old_key)


async def delete_queues(connection: AbstractConnection, *names: str) -> None:
    async with connection.channel(publisher_confirms=False) as ch:
        for name in names:
            await ch.queue_delete(name)


async def queue_depth(connection: AbstractConnection, name: str) -> int | None:
    """Messages ready in ``name`` (None if it cannot be read now)."""
    try:
        async with connection.channel(publisher_confirms=False) as ch:
            q = await ch.declare_queue(name, passive=True)
            return q.declaration_result.message_count
    except (ChannelClosed, AMQPError, ConnectionError, RuntimeError):
        return None


async def connect(url: str, reconnect_interval: float) -> AbstractRobustConnection:
    """A robust connection (it reconnects by itself later), retried while RabbitMQ starts."""
    last: Exception | None = None
    for _ in range(CONNECT_ATTEMPTS):
        try:
            return await aio_pika.connect_robust(
                url, reconnect_interval=reconnect_interval, connection_class=CoalescingConnection
            )
        except (OSError, aio_pika.exceptions.AMQPError) as exc:
            last = exc
            await asyncio.sleep(reconnect_interval)
    raise ServiceUnavailable(f"cannot reach RabbitMQ at {url}: {last}")
