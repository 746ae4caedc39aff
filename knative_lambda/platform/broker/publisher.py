"""Publishing CloudEvents to a broker's exchange with publisher confirms.

A small pool of confirm channels, used round-robin: each ``publish`` awaits its
own confirm, so concurrent publishes are pipelined on a channel instead of
serialised, and the pool spreads them over a few channels. Messages are
persistent, so a confirmed event survives a RabbitMQ restart.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractConnection
from aiormq import spec

from knative_lambda.contract.bindings import to_amqp
from knative_lambda.contract.errors import ContractError, Problem
from knative_lambda.errors import PlatformError
from knative_lambda.platform import tracing
from knative_lambda.platform.broker import topology


class PublishError(PlatformError):
    """RabbitMQ did not confirm a publish (down, reconnecting or refused)."""


# AMQP 0-9-1 carries the properties (headers included) in ONE content-header
# frame, and message_id is a shortstr. A message past either is a frame error
# that closes the whole connection (every publish in flight then fails), so it
# is refused before it is sent.
DEFAULT_FRAME_MAX = 131072  # RabbitMQ's default frame_max, when the tune is not known
SHORTSTR_MAX = 255
PERSISTENT = 2  # delivery_mode: written to disk, survives a RabbitMQ restart
HEADER_FRAME_RESERVE = 1024  # frame envelope, fixed fields and the broker's own headers (traceparent)


def header_bytes(headers: dict[str, Any], content_type: str, message_id: str) -> int:
    """Bytes the properties take on the wire (table entries: name, type, 4-byte length, value). Pure."""
    size = len(content_type.encode()) + len(message_id.encode()) + 16
    for key, value in headers.items():
        size += len(key.encode()) + 6 + len(str(value).encode("utf-8", "surrogatepass"))
    return size


def message_problems(headers: dict[str, Any], content_type: str, message_id: str,
                     frame_max: int = DEFAULT_FRAME_MAX) -> list[Problem]:
    """Why a message cannot go over AMQP (empty = it can). Pure."""
    problems = []
    if len(message_id.encode("utf-8", "surrogatepass")) > SHORTSTR_MAX:
        problems.append(Problem("attribute id", f"longer than {SHORTSTR_MAX} bytes (RabbitMQ message id)"))
    limit = frame_max - HEADER_FRAME_RESERVE
    size = header_bytes(headers, content_type, message_id)
    if size > limit:
        problems.append(Problem("attributes", f"{size} bytes of attributes; at most {limit} fit in "
                                              "one RabbitMQ frame (move large values into data)"))
    return problems


def binary_headers(event: Any) -> tuple[dict[str, Any], str]:
    """(``ce-`` headers, content type) of ``event`` in AMQP binary mode, as ``to_amqp`` writes them.

    Without encoding the data: the ingress already holds it as bytes. Pure.
    """
    headers: dict[str, Any] = {}
    content_type = ""
    for name, value in event.get_attributes().items():
        if value is None:
            continue
        if name == "datacontenttype":
            content_type = str(value)
        elif isinstance(value, datetime):
            text = value.isoformat()
            headers["ce-" + name] = text[:-6] + "Z" if text.endswith("+00:00") else text
        else:
            headers["ce-" + name] = str(value)
    return headers, content_type or "application/json"


def amqp_message(event: Any, frame_max: int = DEFAULT_FRAME_MAX, data: bytes | None = None) -> aio_pika.Message:
    """The persistent message for ``event``; :class:`ContractError` if AMQP cannot carry it."""
    body, properties = amqp_parts(event, frame_max, data)
    return aio_pika.Message(
        body,
        headers=properties.headers,
        content_type=properties.content_type,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=properties.message_id,
    )


def amqp_parts(
    event: Any, frame_max: int = DEFAULT_FRAME_MAX, data: bytes | None = None,
    trace_headers: Mapping[str, str] | None = None,
) -> tuple[bytes, spec.Basic.Properties]:
    """(body, properties) of the persistent message for ``event``.

    ``data``: the event's data exactly as received in HTTP binary mode, which is
    the AMQP binary-mode body too; given, the data is not decoded and encoded
    again. ``trace_headers``: the trace context to carry (the caller's span,
    injected; empty = none); None = the current span's. :class:`ContractError`
    if AMQP cannot carry the event.
    """
    if data is None:
        headers, body, content_type = to_amqp(event)
    else:
        (headers, content_type), body = binary_headers(event), data
    message_id = str(event.get_id())
    if trace_headers is not None:
        headers.update(trace_headers)  # counted below: they travel in the same frame
    problems = message_problems(headers, content_type, message_id, frame_max)
    if problems:
        raise ContractError(problems, "event cannot be published")
    if trace_headers is None:
        tracing.inject(headers)  # the current span's traceparent (a reply's delivery)
    return body, spec.Basic.Properties(
        headers=headers, content_type=content_type, delivery_mode=PERSISTENT, message_id=message_id
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
        await self.publish_parts(exchange, routing_key, message.body, message.properties)

    async def publish_parts(
        self, exchange: str, routing_key: str, body: bytes, properties: spec.Basic.Properties
    ) -> None:
        """Publish and wait for the confirm; :class:`PublishError` if it does not come.

        Straight on the channel's aiormq channel: no per-message aio-pika Message
        and Exchange objects, and the timeout without a task of its own
        (``wait_for``) - a third of the ingress's publishing CPU.
        """
        channel = self._channels[next(self._next) % len(self._channels)]
        try:
            underlay = await channel.get_underlay_channel()  # the current one, also after a reconnect
            # The default exchange ("") routes by queue name: dead letters go there.
            # A Nack raises DeliveryError from aiormq, caught below. wait=False: aiormq
            # would hold the channel's lock until the frame is written, one publish per
            # channel per loop pass; without it a pass's publishes go out in one write
            # (amqp_socket.py). Backpressure remains: aiormq's bounded write queue, and
            # the confirm every publish waits for.
            await underlay.basic_publish(
                body, exchange=exchange, routing_key=routing_key, properties=properties,
                mandatory=False, timeout=self._timeout, wait=False,
            )
        except TimeoutError as exc:
            raise PublishError(f"RabbitMQ did not confirm within {self._timeout:g}s; retry") from exc
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # aiormq/aio-pika raise many types while reconnecting
            raise PublishError(f"RabbitMQ unavailable ({type(exc).__name__}: {exc}); retry") from exc

    def frame_max(self) -> int:
        """The negotiated frame_max of the publishing connection (RabbitMQ's default until known)."""
        try:
            tune = self._connection.transport.connection.connection_tune  # type: ignore[attr-defined]
            return int(tune.frame_max) or DEFAULT_FRAME_MAX
        except (AttributeError, TypeError, ValueError):
            return DEFAULT_FRAME_MAX

    async def publish(self, namespace: str, broker: str, event: Any, data: bytes | None = None,
                      trace_headers: Mapping[str, str] | None = None) -> None:
        """Publish ``event``; :class:`ContractError` (nothing sent) if AMQP cannot carry it.

        ``data`` and ``trace_headers``: see :func:`amqp_parts`.
        """
        await self.publish_parts(
            topology.exchange_name(namespace, broker),
            topology.routing_key(str(event.get_type())),
            *amqp_parts(event, self.frame_max(), data, trace_headers),
        )
