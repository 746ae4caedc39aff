"""Background load for experiments: a bounded event stream or HTTP load in a thread.

    run = LoadRun("stream", plan, send).start()    # send(i) -> Outcome, called per item
    ...                                            # the experiment breaks something
    result = run.wait(timeout)                     # or run.stop(); result is JSON-able

Every run is bounded twice: ``plan.count`` items and ``plan.duration_s`` of
wall time, whichever comes first. Items are spread over ``plan.concurrency``
worker threads at most ``plan.rate`` per second (0 = as fast as the target
answers). The recorded outcomes (start time, clean) feed :func:`recovery`,
which says how long the target kept failing: the "time to recover" of the
summary. An item is clean when it succeeded at its first attempt.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from knative_lambda.errors import ConfigError


@dataclass(frozen=True)
class LoadPlan:
    kind: str  # "events" | "http"
    count: int = 1000
    rate: float = 0.0  # items per second over all workers; 0 = unpaced
    duration_s: float = 120.0  # hard stop
    concurrency: int = 4

    def __post_init__(self) -> None:
        problems = []
        if self.kind not in ("events", "http"):
            problems.append(f"kind must be 'events' or 'http', got {self.kind!r}")
        if not 0 < self.count <= 1_000_000:
            problems.append(f"count must be in 1..1000000, got {self.count}")
        if self.rate < 0:
            problems.append(f"rate must be >= 0, got {self.rate}")
        if not 0 < self.duration_s <= 3600:
            problems.append(f"duration_s must be in (0, 3600], got {self.duration_s}")
        if not 1 <= self.concurrency <= 64:
            problems.append(f"concurrency must be in 1..64, got {self.concurrency}")
        if problems:
            raise ConfigError("invalid load: " + "; ".join(problems))


@dataclass(frozen=True)
class Outcome:
    ok: bool
    attempts: int = 1
    detail: str = ""  # status or error of the last attempt


def pace(index: int, rate: float, started: float) -> float:
    """Monotonic time at which item ``index`` may start (``rate`` 0: at once)."""
    return started if rate <= 0 else started + index / rate


def recovery(outcomes: list[tuple[float, bool]]) -> dict[str, float | None]:
    """From (seconds since start, ok) pairs: when failures began and ended (pure).

    ``time_to_recover_s`` runs from the first failure to the first success after
    the last failure; None when nothing failed, or when the load never
    succeeded again (not recovered).
    """
    ordered = sorted(outcomes)
    failures = [t for t, ok in ordered if not ok]
    if not failures:
        return {"first_error_s": None, "last_error_s": None, "recovered_at_s": None,
                "time_to_recover_s": None}
    first, last = failures[0], failures[-1]
    after = next((t for t, ok in ordered if ok and t >= last), None)
    return {"first_error_s": round(first, 3), "last_error_s": round(last, 3),
            "recovered_at_s": None if after is None else round(after, 3),
            "time_to_recover_s": None if after is None else round(after - first, 3)}


@dataclass
class LoadRun:
    name: str
    plan: LoadPlan
    send: Callable[[int], Outcome]
    info: dict[str, Any] = field(default_factory=dict)  # JSON-able context (ledger dir, service)
    _outcomes: list[tuple[float, bool, int, str]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _next: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _started: float = 0.0
    _started_wall: float = 0.0
    _ended: float = 0.0

    def start(self) -> LoadRun:
        self._started, self._started_wall = time.monotonic(), time.time()
        for n in range(min(self.plan.concurrency, self.plan.count)):
            thread = threading.Thread(target=self._work, name=f"load-{self.name}-{n}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def _take(self) -> int | None:
        with self._lock:
            if self._stop.is_set() or self._next >= self.plan.count:
                return None
            if time.monotonic() - self._started >= self.plan.duration_s:
                return None
            index, self._next = self._next, self._next + 1
            return index

    def _work(self) -> None:
        while (index := self._take()) is not None:
            delay = pace(index, self.plan.rate, self._started) - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                return
            began = time.monotonic() - self._started
            try:
                outcome = self.send(index)
            except Exception as exc:  # a bug in one send must not kill the stream silently
                outcome = Outcome(False, 1, f"{type(exc).__name__}: {exc}")
            with self._lock:
                self._outcomes.append((began, outcome.ok, outcome.attempts, outcome.detail))

    @property
    def running(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    def stop(self, timeout: float = 30.0) -> dict[str, Any]:
        self._stop.set()
        return self.wait(timeout)

    def wait(self, timeout: float | None = None) -> dict[str, Any]:
        """Wait for the run to end (at most ``timeout``, then stop it); returns the result."""
        limit = self.plan.duration_s + 30 if timeout is None else timeout
        deadline = time.monotonic() + limit
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if self.running:
            self._stop.set()
            for thread in self._threads:
                thread.join(10)
        if not self._ended:
            self._ended = time.monotonic()
            close = getattr(self.send, "close", None)
            if close is not None:
                close()
        return self.result()

    def result(self) -> dict[str, Any]:
        with self._lock:
            outcomes = list(self._outcomes)
        ok = sum(1 for o in outcomes if o[1])
        errors = len(outcomes) - ok
        details: dict[str, int] = {}
        for _, good, _, detail in outcomes:
            if not good:
                details[detail] = details.get(detail, 0) + 1
        end = self._ended or time.monotonic()
        return {
            "name": self.name, "plan": asdict(self.plan), **self.info,
            "started_at": self._started_wall, "duration_s": round(end - self._started, 3),
            "done": len(outcomes), "ok": ok, "errors": errors,
            "error_rate": errors / len(outcomes) if outcomes else 0.0,
            "attempts": sum(o[2] for o in outcomes),
            "complete": len(outcomes) == self.plan.count,
            "throughput_per_s": round(len(outcomes) / (end - self._started), 2)
            if end > self._started else 0.0,
            "error_kinds": dict(sorted(details.items(), key=lambda kv: -kv[1])[:10]),
            "retried": sum(1 for o in outcomes if o[1] and o[2] > 1),
            # an item that needed retries was hit by the fault too, even if it got through
            **recovery([(t, good and tries == 1) for t, good, tries, _ in outcomes]),
        }
