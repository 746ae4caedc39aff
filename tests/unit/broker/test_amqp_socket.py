"""CoalescingWriter: the writes of one loop pass reach the transport as one write, in order."""

from __future__ import annotations

import asyncio
from typing import Any

from knative_lambda.platform.broker.amqp_socket import CoalescingWriter


class RecordingTransport(asyncio.Transport):
    """What the writer hands its transport (the socket's side is asyncio's own)."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closing = False

    def write(self, data: Any) -> None:
        assert not self.closing, "written after close"
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True


def writer() -> tuple[CoalescingWriter, RecordingTransport]:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(loop=loop)
    transport = RecordingTransport()
    return CoalescingWriter(transport, asyncio.StreamReaderProtocol(reader, loop=loop), reader, loop), transport


async def test_one_pass_one_write_in_order() -> None:
    w, t = writer()
    w.write(b"publish-1")
    w.write(bytearray(b"ack-7"))
    w.write(memoryview(b"publish-2"))
    assert t.writes == []  # not before the pass ends
    await asyncio.sleep(0)
    assert t.writes == [b"publish-1ack-7publish-2"]


async def test_each_pass_its_own_write() -> None:
    w, t = writer()
    w.write(b"a")
    await asyncio.sleep(0)
    w.write(b"b")
    w.write(b"c")
    await asyncio.sleep(0)
    await asyncio.sleep(0)  # nothing pending: no empty write
    assert t.writes == [b"a", b"bc"]


async def test_drain_leaves_the_pass_whole() -> None:
    w, t = writer()
    w.write(b"a")
    await w.drain()  # flow control only: the pass's later frames still join
    w.write(b"b")
    await asyncio.sleep(0)
    assert t.writes == [b"ab"]


async def test_close_sends_what_is_pending_first() -> None:
    w, t = writer()
    w.write(b"connection.close")
    w.close()
    assert t.writes == [b"connection.close"] and t.closing
    await asyncio.sleep(0)
    assert t.writes == [b"connection.close"]


async def test_nothing_goes_to_a_closing_transport() -> None:
    w, t = writer()
    w.write(b"late")
    t.closing = True  # the connection was lost in this pass
    await asyncio.sleep(0)
    assert t.writes == []
