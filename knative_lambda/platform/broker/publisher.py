"""Publishing CloudEvents to a broker's exchange with publisher confirms.

A small pool of confirm channels, used round-robin: each ``publish`` awaits its
own confirm, so concurrent publishes are pipelined on a channel instead of
serialised, and the pool spreads them over a few channels. Messages are
persistent, so a confirmed event survives a RabbitMQ restart.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractConnection

from knative_lambda.contract.bindings import to_amqp
from knative_lambda.errors import PlatformError
from knative_lambda.platform import tracing
from knative_lambda.platform.broker import topology


class PublishError(PlatformError):
    """RabbitMQ did not confirm a publish (down, reconnecting or refused)."""


def amqp_message(event: Any) -> aio_pika.Message:
    headers, body, content_type = to_amqp(event)
    tracing.inject(headers)  # the current span's traceparent (ingress, or a reply's delivery)
    return aio_pika.Message(
        body,
        headers=headers,
        content_type=content_type,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=str(event.get_id()),
    )


class Publisher:
    def __init__(self, connection: AbstractConnection, channels: int = 4, timeout: float = 10.0) -> None:
        self._connection = connection
        self._size = channels
        self._timeout = timeout
        self._channels: list[AbstractChannel] = []
        self._next = itertools.count()

    async def start(self) -> None:
        for _ in range(self._size):
            self._channels.append(await self._connection.channel(publisher_confirms=True))

    async def close(self) -> None:
        for ch in self._channels:
            if not ch.is_closed:
                await ch.close()
        self._channels.clear()

    async def publish_message(self, exchange: str, routing_key: str, message: aio_pika.Message) -> None:
        """Publish and wait for the confirm; :class:`PublishError` if it does not come."""
        channel = self._channels[next(self._next) % len(self._channels)]
        try:
            # The default exchange ("") routes by queue name: dead letters go there.
            ex = channel.default_exchange if exchange == "" else await channel.get_exchange(exchange, ensure=False)
            # A Nack raises DeliveryError from aiormq, caught below.
            await asyncio.wait_for(
                ex.publish(message, routing_key, mandatory=False), self._timeout
            )
        except TimeoutError as exc:
            raise PublishError(f"RabbitMQ did not confirm within {self._timeout:g}s; retry") from exc
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # aiormq/aio-pika raise many types while reconnecting
            raise PublishError(f"RabbitMQ unavailable ({type(exc).__name__}: {exc}); retry") from exc

    async def publish(self, namespace: str, broker: str, event: Any) -> None:
        await self.publish_message(
            topology.exchange_name(namespace, broker),
            topology.routing_key(str(event.get_type())),
            amqp_message(event),
        )
