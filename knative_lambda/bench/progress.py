"""Progress of a long run on stderr: what is running, elapsed time, ETA.

The ETA is a pure function of what is done (``estimate_remaining``); the reporter
only formats and prints, one line per event (CI logs have no carriage returns),
and rate-limits the in-benchmark updates.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from typing import TextIO


def format_duration(seconds: float | None) -> str:
    """``75.2`` -> ``1:15``; ``3725`` -> ``1:02:05``; None -> ``?``."""
    if seconds is None or seconds != seconds or seconds < 0:
        return "?"
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def estimate_remaining(
    done_durations: Sequence[float],
    remaining: int,
    expected: Sequence[float | None] = (),
    current_elapsed: float = 0.0,
    current_fraction: float | None = None,
) -> float | None:
    """Seconds left in the run.

    - the current benchmark: from its own progress fraction when it reports one
      (elapsed / fraction - elapsed), else from its expected duration,
    - each benchmark still to come: its expected duration (suite ``expect_s``) when
      given, else the mean of the finished ones.
    ``expected`` holds the expected durations of [current, *next]; None if unknown.
    """
    mean = sum(done_durations) / len(done_durations) if done_durations else None
    exp = list(expected) + [None] * max(0, remaining + 1 - len(expected))
    total = 0.0
    cur_exp = exp[0]
    if current_fraction is not None and current_fraction > 0:
        total += current_elapsed / min(current_fraction, 1.0) - current_elapsed
    elif cur_exp is not None:
        total += max(0.0, cur_exp - current_elapsed)
    elif mean is not None:
        total += max(0.0, mean - current_elapsed)
    else:
        return None
    for e in exp[1 : remaining + 1]:
        if e is not None:
            total += e
        elif mean is not None:
            total += mean
        else:
            return None
    return total


class Progress:
    """Prints ``[2/6 0:45 ETA 2:10] throughput: sample 30/100`` style lines to stderr."""

    def __init__(
        self,
        names: Sequence[str],
        expected: Sequence[float | None] | None = None,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
        min_interval: float = 2.0,
    ) -> None:
        self.names = list(names)
        self.expected = list(expected) if expected is not None else [None] * len(self.names)
        self.stream = stream if stream is not None else sys.stderr
        self.clock = clock
        self.min_interval = min_interval
        self.started = clock()
        self.done: list[float] = []
        self.index = -1
        self._bench_started = self.started
        self._last_update = float("-inf")

    def _prefix(self, fraction: float | None = None) -> str:
        now = self.clock()
        idx = max(self.index, 0)
        eta = estimate_remaining(
            self.done,
            len(self.names) - idx - 1,
            self.expected[idx:],
            now - self._bench_started,
            fraction,
        )
        return (f"[{idx + 1}/{len(self.names)} {format_duration(now - self.started)} "
                f"ETA {format_duration(eta)}]")

    def _print(self, line: str) -> None:
        print(line, file=self.stream, flush=True)

    def begin(self, index: int) -> None:
        self.index = index
        self._bench_started = self.clock()
        self._last_update = float("-inf")
        self._print(f"{self._prefix()} {self.names[index]}: started")

    def update(self, note: str, fraction: float | None = None, force: bool = False) -> None:
        now = self.clock()
        if not force and now - self._last_update < self.min_interval:
            return
        self._last_update = now
        self._print(f"{self._prefix(fraction)} {self.names[self.index]}: {note}")

    def end(self, status: str, error: str | None = None) -> None:
        took = self.clock() - self._bench_started
        self.done.append(took)
        tail = f" ({error})" if error else ""
        self._print(f"{self._prefix(1.0)} {self.names[self.index]}: {status} in "
                    f"{format_duration(took)}{tail}")

    def finish(self, status: str) -> None:
        self._print(f"[{format_duration(self.clock() - self.started)}] run {status}")
