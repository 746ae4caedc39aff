"""Concurrency helpers for benchmarks: bounded concurrent HTTP, periodic background work.

Runs its own event loop (benchmarks are synchronous) and never more than
``concurrency`` requests at a time; every call is bounded by a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp


@dataclass(frozen=True)
class Outcome:
    sent_at: float  # wall clock
    seconds: float
    status: int  # 0 = connection error / timeout
    error: str = ""


def post_all(url: str, bodies: Sequence[bytes], *, headers: Callable[[int], dict[str, str]] | None = None,
             concurrency: int = 100, timeout: float = 60.0, rate: float | None = None,
             ) -> list[Outcome]:
    """POST every body to ``url`` with at most ``concurrency`` in flight; with ``rate``,
    request ``i`` starts no earlier than ``i / rate`` seconds in (an open-loop load)."""

    async def main() -> list[Outcome]:
        limit = asyncio.Semaphore(concurrency)
        loop = asyncio.get_running_loop()
        start = loop.time()
        connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
        client_timeout = aiohttp.ClientTimeout(total=timeout)
        async with aiohttp.ClientSession(connector=connector, timeout=client_timeout) as session:

            async def one(i: int, body: bytes) -> Outcome:
                if rate:
                    await asyncio.sleep(max(0.0, start + i / rate - loop.time()))
                async with limit:
                    sent, t0 = time.time(), time.perf_counter()
                    try:
                        async with session.post(url, data=body,
                                                headers=headers(i) if headers else None) as resp:
                            await resp.read()
                            return Outcome(sent, time.perf_counter() - t0, resp.status)
                    except (TimeoutError, aiohttp.ClientError) as exc:
                        return Outcome(sent, time.perf_counter() - t0, 0,
                                       f"{type(exc).__name__}: {exc}"[:200])

            return await asyncio.gather(*(one(i, b) for i, b in enumerate(bodies)))

    return asyncio.run(main())


def record_outcomes(rec: Any, outcomes: Sequence[Outcome], name: str | None = None,
                    ok: Callable[[int], bool] = lambda s: 200 <= s < 300) -> None:
    """Successful latencies as samples, the rest as errors with their status."""
    for outcome in outcomes:
        if ok(outcome.status):
            rec.sample(outcome.seconds, name)
        else:
            rec.error(outcome.error or f"HTTP {outcome.status}", name)
    if outcomes:
        start = min(o.sent_at for o in outcomes)
        end = max(o.sent_at + o.seconds for o in outcomes)
        rec.window(max(end - start, 1e-9), name)


class Periodic:
    """Run ``step`` every ``interval`` seconds in a thread until the block ends."""

    def __init__(self, step: Callable[[float], None], interval: float) -> None:
        self.step, self.interval = step, interval
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        t0 = time.monotonic()
        while not self.stop.is_set():
            with contextlib.suppress(Exception):  # a missed point is not a failed benchmark
                self.step(time.monotonic() - t0)
            self.stop.wait(self.interval)

    def __enter__(self) -> Periodic:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join(5)
