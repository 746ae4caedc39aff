"""Build guards: a priority-ordered concurrency limit and a failure backoff window (the
build rate limit is :class:`knative_lambda.platform.limits.TokenBucket`). Decisions take ``now`` as an argument, so they are plain
data tests; only :class:`PriorityGate` touches asyncio (it parks waiters).

Priority: job.start carries 1..10 (10 most urgent); build.start and rebuild.start
count as 5. Equal priorities are served first come, first served.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

DEFAULT_PRIORITY = 5


class PriorityGate:
    """At most ``limit`` holders at once; the rest wait, highest priority first."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.running = 0
        self.peak = 0  # highest concurrency seen (for /apis/v1/builds and tests)
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    @property
    def waiting(self) -> int:
        return sum(1 for _, _, f in self._waiters if not f.done())

    async def acquire(self, priority: int = DEFAULT_PRIORITY) -> None:
        if self.running < self.limit and not self.waiting:
            self._enter()
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (-priority, next(self._seq), future))
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release()  # we were handed a slot as we were cancelled: pass it on
            raise

    def _enter(self) -> None:
        self.running += 1
        self.peak = max(self.peak, self.running)

    def release(self) -> None:
        self.running -= 1
        while self._waiters and self.running < self.limit:
            _, _, future = heapq.heappop(self._waiters)
            if not future.done():
                self._enter()
                future.set_result(None)

    @asynccontextmanager
    async def slot(self, priority: int = DEFAULT_PRIORITY) -> AsyncIterator[None]:
        await self.acquire(priority)
        try:
            yield
        finally:
            self.release()


@dataclass
class Backoff:
    """After a failed build, the same (tp, parser, hash) is refused for ``window_s``.

    Keyed by content hash on purpose: a fixed upload (new hash) builds at once;
    only re-sending the same broken code is held back.
    """

    window_s: float
    _until: dict[tuple[str, str, str], tuple[float, str]] = field(default_factory=dict)

    def blocked(self, key: tuple[str, str, str], now: float) -> tuple[float, str] | None:
        """``(until, last_error)`` while the window is open, else None."""
        entry = self._until.get(key)
        if entry is None:
            return None
        if now >= entry[0]:
            del self._until[key]
            return None
        return entry

    def failed(self, key: tuple[str, str, str], now: float, reason: str) -> None:
        if self.window_s > 0:
            self._until[key] = (now + self.window_s, reason)

    def succeeded(self, key: tuple[str, str, str]) -> None:
        self._until.pop(key, None)


def priority_of(kind: str, priority: int | None) -> int:
    """job.start uses its priority (1..10); everything else the default."""
    if kind == "job.start" and priority is not None:
        return max(1, min(10, priority))
    return DEFAULT_PRIORITY
