"""Guards: token bucket, backoff window and the priority gate."""

from __future__ import annotations

import asyncio

import pytest

from knative_lambda.platform.builder.guards import Backoff, PriorityGate, priority_of
from knative_lambda.platform.limits import TokenBucket


@pytest.mark.parametrize(
    "rate, burst, times, waits",
    [
        (1.0, 2, [0, 0, 0], [0, 0, 1.0]),  # burst of 2, the third waits a full token
        (2.0, 1, [0, 0, 0.5], [0, 0.5, 0]),  # half a second refills one token at 2/s
        (10.0, 3, [0, 0, 0, 0, 0.05], [0, 0, 0, 0.1, 0.05]),
        (0.0, 1, [0, 0, 0], [0, 0, 0]),  # rate 0 = disabled
        (1.0, 1, [0, 100, 100], [0, 0, 1.0]),  # a long idle refills only up to burst
    ],
)
def test_token_bucket(rate: float, burst: int, times: list[float], waits: list[float]) -> None:
    bucket = TokenBucket(rate, burst)
    assert [round(bucket.take(t), 6) for t in times] == waits


def test_backoff_window() -> None:
    backoff = Backoff(300.0)
    key = ("tp", "p", "abc")
    assert backoff.blocked(key, 0.0) is None
    backoff.failed(key, 10.0, "syntax error")
    assert backoff.blocked(key, 10.0) == (310.0, "syntax error")
    assert backoff.blocked(key, 309.9) == (310.0, "syntax error")
    assert backoff.blocked(("tp", "p", "other-hash"), 20.0) is None  # a fix builds at once
    assert backoff.blocked(key, 310.0) is None  # window over
    backoff.failed(key, 400.0, "again")
    backoff.succeeded(key)
    assert backoff.blocked(key, 401.0) is None


def test_backoff_zero_window_never_blocks() -> None:
    backoff = Backoff(0.0)
    backoff.failed(("a", "b", "c"), 0.0, "x")
    assert backoff.blocked(("a", "b", "c"), 0.0) is None


@pytest.mark.parametrize(
    "kind, priority, expected",
    [("job.start", 9, 9), ("job.start", None, 5), ("build.start", 9, 5), ("rebuild.start", 1, 5), ("job.start", 99, 10)],
)
def test_priority_of(kind: str, priority: int | None, expected: int) -> None:
    assert priority_of(kind, priority) == expected


async def test_gate_limits_and_orders_by_priority() -> None:
    gate = PriorityGate(1)
    order: list[str] = []
    release = asyncio.Event()

    async def holder() -> None:
        async with gate.slot(5):
            await release.wait()

    async def worker(name: str, priority: int) -> None:
        async with gate.slot(priority):
            order.append(name)

    first = asyncio.create_task(holder())
    await asyncio.sleep(0)
    tasks = [asyncio.create_task(worker(n, p)) for n, p in [("low", 1), ("mid-a", 5), ("high", 10), ("mid-b", 5)]]
    await asyncio.sleep(0.01)
    assert gate.running == 1 and gate.waiting == 4
    release.set()
    await asyncio.gather(first, *tasks)
    assert order == ["high", "mid-a", "mid-b", "low"]
    assert gate.peak == 1 and gate.running == 0


async def test_gate_cancelled_waiter_gives_its_slot_away() -> None:
    gate = PriorityGate(1)
    await gate.acquire()
    waiter = asyncio.create_task(gate.acquire())
    other = asyncio.create_task(gate.acquire())
    await asyncio.sleep(0)
    waiter.cancel()
    gate.release()
    await asyncio.wait_for(other, 1)
    assert gate.running == 1


async def test_gate_holds_under_load() -> None:
    gate = PriorityGate(3)
    current = 0
    seen = 0

    async def job(i: int) -> None:
        nonlocal current, seen
        async with gate.slot(i % 10 + 1):
            current += 1
            seen = max(seen, current)
            await asyncio.sleep(0.001)
            current -= 1

    await asyncio.gather(*(job(i) for i in range(20)))
    assert seen == 3 and gate.peak == 3
