"""A userspace TCP proxy that injects faults at run time (this kernel has no netem).

    proxy = FaultProxy("127.0.0.1", 0, "127.0.0.1", 5672, seed=1)
    await proxy.start()                      # proxy.port is the bound port
    proxy.set_faults(Faults(up=LinkFaults(latency_ms=200)))
    proxy.reset_connections()                # RST every open connection
    proxy.heal()                             # back to a healthy link
    await proxy.stop()

Each accepted connection gets a verdict (:func:`model.connection_verdict`):
forward, reset (SO_LINGER 0 then close, so the peer sees a RST, not a FIN) or
blackhole (accepted, then held with nothing forwarded until the fault heals).
Each direction of a forwarded connection is a reader task and a writer task
joined by a small bounded queue: the reader stamps every chunk with its release
time (:func:`model.plan_chunk`), the writer waits for it. The queue keeps the
order and its bound gives back-pressure, so a slow link slows the sender
instead of buffering without limit. A blackhole on an open connection stalls
both tasks: the bytes stay in the kernel buffers and flow again on heal, as
after a healed network partition.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import struct
from dataclasses import dataclass, field
from typing import Any

from knative_lambda.harness.faults.model import (
    DOWN,
    UP,
    Faults,
    Verdict,
    connection_verdict,
    plan_chunk,
)

log = logging.getLogger(__name__)

CHUNK = 64 * 1024
QUEUE_CHUNKS = 32  # per direction: at most ~2 MB in flight inside the proxy


def _rst(writer: asyncio.StreamWriter | None) -> None:
    """Close with a TCP RST: SO_LINGER on with a zero timeout, then abort."""
    if writer is None:
        return
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


@dataclass(eq=False)  # identity hash: connections live in a set
class _Connection:
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter | None = None
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    closed: bool = False


@dataclass
class Stats:
    connections_total: int = 0
    connections_active: int = 0
    bytes_up: int = 0
    bytes_down: int = 0
    resets: int = 0  # connections this proxy reset (fault or reset_connections)
    blackholed: int = 0  # connections accepted while blackholed
    upstream_failures: int = 0  # upstream refused or timed out; the client got a RST

    def to_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


class FaultProxy:
    """One listening port forwarding to one upstream, with faults applied live."""

    def __init__(self, listen_host: str, listen_port: int, upstream_host: str, upstream_port: int,
                 *, seed: int | None = None, connect_timeout: float = 5.0) -> None:
        self.listen_host = listen_host
        self.port = listen_port
        self.upstream_host = upstream_host
        self.upstream_port = upstream_port
        self.connect_timeout = connect_timeout
        self.stats = Stats()
        self._faults = Faults()
        self._rng = random.Random(seed)
        self._open = asyncio.Event()  # set while not blackholed
        self._open.set()
        self._server: asyncio.base_events.Server | None = None
        self._connections: set[_Connection] = set()

    # -- control ----------------------------------------------------------------
    @property
    def faults(self) -> Faults:
        return self._faults

    def set_faults(self, faults: Faults) -> None:
        self._faults = faults
        if faults.blackhole:
            self._open.clear()
        else:
            self._open.set()

    def heal(self) -> None:
        self.set_faults(Faults())

    def reset_connections(self) -> int:
        """RST every open connection (both sides); returns how many."""
        count = 0
        for conn in list(self._connections):
            if not conn.closed:
                self._abort(conn, rst=True)
                self.stats.resets += 1
                count += 1
        return count

    def snapshot(self) -> dict[str, Any]:
        return {"listen": f"{self.listen_host}:{self.port}",
                "upstream": f"{self.upstream_host}:{self.upstream_port}",
                "faults": self._faults.to_dict(), "stats": self.stats.to_dict()}

    # -- lifecycle --------------------------------------------------------------
    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, self.listen_host, self.port,
                                                  reuse_address=True, backlog=1024)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for conn in list(self._connections):
            self._abort(conn, rst=False)
        tasks = [t for conn in self._connections for t in conn.tasks]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
            self._server = None

    async def __aenter__(self) -> FaultProxy:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- connections ------------------------------------------------------------
    def _abort(self, conn: _Connection, *, rst: bool) -> None:
        if conn.closed:
            return
        conn.closed = True
        for writer in (conn.client, conn.upstream):
            if writer is None:
                continue
            if rst:
                _rst(writer)
            else:
                writer.transport.abort()
        current = asyncio.current_task()
        for task in conn.tasks:
            if task is not current:
                task.cancel()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.stats.connections_total += 1
        conn = _Connection(client=writer)
        conn.tasks.append(asyncio.current_task())  # type: ignore[arg-type]
        verdict = connection_verdict(self._faults, self._rng)
        if verdict is Verdict.RESET:
            self.stats.resets += 1
            _rst(writer)
            return
        self._connections.add(conn)
        self.stats.connections_active += 1
        try:
            if verdict is Verdict.BLACKHOLE:
                self.stats.blackholed += 1
                await self._open.wait()  # held, silent, until the fault heals
                if conn.closed:
                    return
            try:
                up_reader, up_writer = await asyncio.wait_for(
                    asyncio.open_connection(self.upstream_host, self.upstream_port),
                    self.connect_timeout)
            except (OSError, TimeoutError):
                self.stats.upstream_failures += 1
                self._abort(conn, rst=True)
                return
            conn.upstream = up_writer
            if conn.closed:  # reset while connecting
                _rst(up_writer)
                return
            await asyncio.gather(self._direction(conn, reader, up_writer, UP),
                                 self._direction(conn, up_reader, writer, DOWN))
        except asyncio.CancelledError:
            pass
        finally:
            if not conn.closed:
                self._abort(conn, rst=False)
            self._connections.discard(conn)
            self.stats.connections_active -= 1

    async def _direction(self, conn: _Connection, reader: asyncio.StreamReader,
                         writer: asyncio.StreamWriter, direction: str) -> None:
        """Forward one direction until EOF; an error on either side ends the connection."""
        queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue(QUEUE_CHUNKS)
        loop = asyncio.get_running_loop()

        async def pump() -> None:
            previous = 0.0
            while True:
                await self._open.wait()
                data = await reader.read(CHUNK)
                if not data:
                    await queue.put(None)
                    return
                while True:
                    plan = plan_chunk(self._faults, direction, len(data), loop.time(), previous,
                                      self._rng)
                    if not plan.hold:
                        break
                    await self._open.wait()
                previous = plan.release_at
                await queue.put((plan.release_at, data))

        async def drain() -> None:
            while True:
                item = await queue.get()
                if item is None:
                    if writer.can_write_eof():
                        writer.write_eof()  # half-close: the other direction may still flow
                    return
                release_at, data = item
                delay = release_at - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                await self._open.wait()
                writer.write(data)
                await writer.drain()
                if direction == UP:
                    self.stats.bytes_up += len(data)
                else:
                    self.stats.bytes_down += len(data)

        tasks = [asyncio.ensure_future(pump()), asyncio.ensure_future(drain())]
        conn.tasks.extend(tasks)
        try:
            await asyncio.gather(*tasks)
        except (OSError, asyncio.IncompleteReadError):
            # one peer went away abruptly: pass the abruptness on to the other
            self._abort(conn, rst=True)
        finally:
            for task in tasks:
                task.cancel()
