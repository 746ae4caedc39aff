"""AMQP connections that send the frames of one event-loop pass in one write.

aiormq writes each frame (a publish, an ack) to the socket on its own: a system
call in this process and a TCP segment RabbitMQ reads and handles on its own.
With many events in flight several frames are ready in the same pass; joined,
they cost one. At 2,000 events/s this cut the median p99 from ingress to
subscriber from 55 to 37 ms (7 alternated rounds), and RabbitMQ's CPU per event
by about 5%. topology.connect makes every broker connection a CoalescingConnection.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aio_pika
from aiormq.connection import TransportFactory
from aiormq.exceptions import AMQPConnectionError
from yarl import URL


class CoalescingWriter(asyncio.StreamWriter):
    """A StreamWriter whose writes wait for the end of the loop pass, then go out as one."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pending: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(bytes(data))

    def flush(self) -> None:
        """Hand what is pending to the transport (drain() still applies its flow control)."""
        if self._pending:
            data = b"".join(self._pending)
            self._pending.clear()
            if not self.transport.is_closing():
                self.transport.write(data)

    def close(self) -> None:
        self.flush()  # aiormq's Connection.Close is written just before
        super().close()


class CoalescingTCPFactory(TransportFactory):
    """aiormq's plain TCP transport, with a :class:`CoalescingWriter`."""

    async def create(self, url: URL, **kwargs: Any) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        kwargs.pop("ssl_context_provider", None)  # TLS (amqps) keeps aiormq's own factory
        # asyncio.open_connection's body, not a wrap of its writer: a StreamWriter
        # dropped by the wrap would close the shared transport when collected.
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(loop=loop)
        protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
        try:
            transport, _ = await loop.create_connection(lambda: protocol, url.host, url.port, **kwargs)
        except OSError as exc:
            raise AMQPConnectionError(*exc.args) from exc
        return reader, CoalescingWriter(transport, protocol, reader, loop)


class CoalescingConnection(aio_pika.RobustConnection):
    """A robust connection whose plain-TCP transports are :class:`CoalescingTCPFactory`'s;
    aio-pika passes ``kwargs`` to aiormq at every (re)connect."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.url.scheme == "amqp":
            self.kwargs["transport_factory"] = CoalescingTCPFactory()
