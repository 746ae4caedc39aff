"""The broker's AMQP connection (topology.connect): frames of one loop pass share a write."""

from __future__ import annotations

import asyncio

from pamqp.commands import Basic

from knative_lambda.platform.broker import topology
from knative_lambda.platform.broker.amqp_socket import CoalescingTCPFactory
from knative_lambda.platform.broker.publisher import PERSISTENT, Publisher

from .conftest import unique_name


async def test_concurrent_publishes_are_all_confirmed_and_queued_in_full(amqp_url: str) -> None:
    """500 publishes at once on 4 channels: many frames per loop pass, joined in one write
    each pass; every one is confirmed and every one is in the queue, intact."""
    connection = await topology.connect(amqp_url, 1.0)
    try:
        assert isinstance(connection.kwargs["transport_factory"], CoalescingTCPFactory)
        channel = await connection.channel()
        queue = await channel.declare_queue(unique_name("pub"), durable=True, arguments=topology.QUORUM_ARGS)
        publisher = Publisher(connection, channels=4, timeout=10.0)
        await publisher.start()
        bodies = [f"event {i}".encode() * (1 + i % 7) for i in range(500)]
        await asyncio.gather(*(
            publisher.publish_parts("", queue.name, body,
                                    Basic.Properties(delivery_mode=PERSISTENT, message_id=str(i)))
            for i, body in enumerate(bodies)
        ))
        got: dict[str, bytes] = {}
        async with queue.iterator() as messages:
            async for message in messages:
                got[message.message_id or ""] = message.body
                await message.ack()
                if len(got) == len(bodies):
                    break
        assert got == {str(i): body for i, body in enumerate(bodies)}
        await publisher.close()
        await queue.delete(if_unused=False, if_empty=False)
    finally:
        await connection.close()
