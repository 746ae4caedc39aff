"""The fault proxy against a real TCP echo server: passthrough, latency, resets, blackhole, heal."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator

import pytest

from knative_lambda.errors import ConfigError
from knative_lambda.harness.faults.control import FaultProxyClient
from knative_lambda.harness.faults.model import Faults, LinkFaults
from knative_lambda.harness.faults.proxy import FaultProxy
from tests.conftest import stop_popen


@pytest.fixture
async def echo_port() -> AsyncIterator[int]:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()


@pytest.fixture
async def proxy(echo_port: int) -> AsyncIterator[FaultProxy]:
    async with FaultProxy("127.0.0.1", 0, "127.0.0.1", echo_port, seed=1) as p:
        yield p


async def roundtrip(port: int, payload: bytes = b"ping", timeout: float = 5.0) -> bytes:
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)
    try:
        writer.write(payload)
        await writer.drain()
        return await asyncio.wait_for(reader.readexactly(len(payload)), timeout)
    finally:
        writer.close()


async def test_passthrough_echoes_bytes_both_ways(proxy: FaultProxy) -> None:
    big = bytes(range(256)) * 4096  # 1 MiB: several chunks, order must hold
    assert await roundtrip(proxy.port, big) == big
    stats = proxy.stats.to_dict()
    assert stats["bytes_up"] == len(big)
    assert stats["bytes_down"] == len(big)
    assert stats["connections_total"] == 1


async def test_latency_delays_a_round_trip_by_at_least_the_injected_amount(proxy: FaultProxy) -> None:
    proxy.set_faults(Faults(up=LinkFaults(latency_ms=150), down=LinkFaults(latency_ms=100)))
    started = time.monotonic()
    assert await roundtrip(proxy.port, b"x" * 1000) == b"x" * 1000
    assert time.monotonic() - started >= 0.25  # lower bound only: both directions delayed


async def test_latency_keeps_chunk_order(proxy: FaultProxy) -> None:
    proxy.set_faults(Faults(up=LinkFaults(latency_ms=5, jitter_ms=5)))
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    sent = b""
    for i in range(50):
        piece = f"{i:04d}".encode()
        writer.write(piece)
        await writer.drain()
        sent += piece
    got = await asyncio.wait_for(reader.readexactly(len(sent)), 10)
    writer.close()
    assert got == sent


async def test_reset_fraction_one_resets_new_connections(proxy: FaultProxy) -> None:
    proxy.set_faults(Faults(reset_fraction=1.0))
    with pytest.raises((ConnectionResetError, asyncio.IncompleteReadError, BrokenPipeError)):
        await roundtrip(proxy.port)
    assert proxy.stats.resets == 1


async def test_reset_connections_kills_open_ones_with_rst(proxy: FaultProxy) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    writer.write(b"hello")
    assert await reader.readexactly(5) == b"hello"
    for _ in range(100):  # the proxy registers the connection before the first byte flows
        if proxy.stats.connections_active:
            break
        await asyncio.sleep(0.01)
    assert proxy.reset_connections() == 1
    with pytest.raises((ConnectionResetError, asyncio.IncompleteReadError)):
        data = await asyncio.wait_for(reader.read(10), 5)
        if not data:  # EOF also counts as "the connection is gone"
            raise asyncio.IncompleteReadError(b"", 1)
    writer.close()
    assert await roundtrip(proxy.port) == b"ping"  # new connections still work


async def test_blackhole_stalls_then_heal_delivers_everything(proxy: FaultProxy) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    writer.write(b"before")
    assert await reader.readexactly(6) == b"before"
    proxy.set_faults(Faults(blackhole=True))
    writer.write(b"during")
    await writer.drain()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(reader.readexactly(6), 0.3)  # existing connection stalls
    with pytest.raises(TimeoutError):
        await roundtrip(proxy.port, timeout=0.3)  # new connection accepted, nothing comes back
    assert proxy.stats.blackholed == 1
    proxy.heal()
    assert await asyncio.wait_for(reader.readexactly(6), 5) == b"during"  # nothing lost
    writer.close()
    assert await roundtrip(proxy.port) == b"ping"


async def test_upstream_down_gives_the_client_a_reset() -> None:
    async with FaultProxy("127.0.0.1", 0, "127.0.0.1", 1, connect_timeout=1.0) as proxy:
        with pytest.raises((ConnectionResetError, asyncio.IncompleteReadError, BrokenPipeError)):
            await roundtrip(proxy.port)
        assert proxy.stats.upstream_failures == 1


async def test_half_close_still_delivers_the_reply(proxy: FaultProxy) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    writer.write(b"abc")
    writer.write_eof()
    assert await asyncio.wait_for(reader.read(), 5) == b"abc"
    writer.close()


# -- the proxy as its own process, driven through the control API ---------------

@pytest.fixture
def echo_process() -> Iterator[int]:
    code = (
        "import socket,threading\n"
        "s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
        "s.bind(('127.0.0.1',0)); s.listen(64); print(s.getsockname()[1], flush=True)\n"
        "def serve(c):\n"
        "    try:\n"
        "        while (d := c.recv(65536)): c.sendall(d)\n"
        "    except OSError: pass\n"
        "    c.close()\n"
        "while True:\n"
        "    c,_=s.accept(); threading.Thread(target=serve,args=(c,),daemon=True).start()\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        yield int(proc.stdout.readline())
    finally:
        proc.kill()
        proc.wait(5)


@pytest.fixture
def proxy_process(echo_process: int) -> Iterator[tuple[int, FaultProxyClient]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "knative_lambda.harness.faults", "--listen", "127.0.0.1:0",
         "--upstream", f"127.0.0.1:{echo_process}", "--control-port", "0", "--seed", "3"],
        stdout=subprocess.PIPE, text=True)
    try:
        ports = json.loads(proc.stdout.readline())
        with FaultProxyClient(f"http://127.0.0.1:{ports['control_port']}") as client:
            yield ports["listen_port"], client
    finally:
        stop_popen(proc, grace=5)
        with contextlib.suppress(Exception):
            proc.stdout.close()


async def test_control_api_drives_a_proxy_process(proxy_process: tuple[int, FaultProxyClient]) -> None:
    port, client = proxy_process
    assert client.healthy()
    assert await roundtrip(port) == b"ping"

    client.set_faults({"latency_ms": 100})
    assert client.faults()["up"]["latency_ms"] == 100
    started = time.monotonic()
    assert await roundtrip(port) == b"ping"
    assert time.monotonic() - started >= 0.2

    client.set_faults({"reset_fraction": 1.0})  # PUT replaces: latency gone
    assert client.faults()["up"]["latency_ms"] == 0
    with pytest.raises((ConnectionResetError, asyncio.IncompleteReadError, BrokenPipeError)):
        await roundtrip(port)

    client.set_faults({"blackhole": True})
    with pytest.raises(TimeoutError):
        await roundtrip(port, timeout=0.3)

    client.heal()
    assert await roundtrip(port) == b"ping"
    stats = await asyncio.to_thread(client.stats)
    assert stats["stats"]["resets"] == 1
    assert stats["stats"]["blackholed"] == 1
    assert stats["stats"]["connections_total"] >= 5
    assert stats["stats"]["bytes_up"] >= 12


def test_control_api_rejects_bad_faults_and_keeps_the_old_ones(
        proxy_process: tuple[int, FaultProxyClient]) -> None:
    _, client = proxy_process
    client.update_faults({"down": {"latency_ms": 7}})
    with pytest.raises(ConfigError, match="reset_fraction"):
        client.set_faults({"reset_fraction": 3})
    assert client.faults()["down"]["latency_ms"] == 7


async def test_bandwidth_limit_slows_a_transfer(proxy: FaultProxy) -> None:
    proxy.set_faults(Faults(up=LinkFaults(bandwidth_bps=100_000)))
    payload = b"b" * 50_000
    started = time.monotonic()
    assert await roundtrip(proxy.port, payload) == payload
    assert time.monotonic() - started >= 0.45  # 50 kB at 100 kB/s: at least half a second


async def test_many_concurrent_connections_each_get_their_own_bytes(proxy: FaultProxy) -> None:
    payloads = [f"conn-{i}-".encode() * 100 for i in range(50)]
    answers = await asyncio.gather(*(roundtrip(proxy.port, p) for p in payloads))
    assert answers == payloads
    assert proxy.stats.connections_total == 50
    for _ in range(100):  # closes are noticed asynchronously
        if proxy.stats.connections_active == 0:
            break
        await asyncio.sleep(0.01)
    assert proxy.stats.connections_active == 0
