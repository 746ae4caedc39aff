"""Cold start: a request to a function at a true zero, through the gateway.

Between samples the function is left to scale to zero by itself (no kill), so
every sample is what a user sees after idleness. The target's timeline breaks
each sample down into phases where it has one.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from knative_lambda.bench.functions import SOURCES, unique_id
from knative_lambda.bench.runner import Recorder, register
from knative_lambda.errors import PlatformError

# timeline event -> phase it ends (the phase starts where the previous event was)
PHASES = ("request_buffered", "scale_decision", "process_started", "instance_ready", "first_byte")


def breakdown(events: list[dict[str, Any]], start: float, end: float) -> dict[str, float]:
    """Seconds spent before each timeline event of one cold request (pure).

    ``events`` carry ``event`` (name) and ``wall`` (wall-clock seconds); the first
    event of each name at or after ``start`` counts. Missing events are skipped,
    so a target with a coarser timeline still gives what it knows.
    """
    firsts: dict[str, float] = {}
    for ev in sorted(events, key=lambda e: e.get("wall", 0.0)):
        name, ts = ev.get("event"), ev.get("wall")
        if name in PHASES and ts is not None and ts >= start and name not in firsts:
            firsts[name] = ts
    phases, previous = {}, start
    for name in PHASES:
        if name in firsts:
            phases[name] = max(0.0, firsts[name] - previous)
            previous = firsts[name]
    phases["respond"] = max(0.0, end - previous)
    return phases


@register("cold_start")
def run(target: Any, params: Mapping[str, Any], rec: Recorder) -> None:
    iterations = int(params.get("iterations", 10))
    runtime = str(params.get("runtime", "python"))
    zero_timeout = float(params.get("zero_timeout_s", 60))
    fn = target.deploy("bench", unique_id("cold"), SOURCES[runtime]())
    try:
        for i in range(iterations):
            target.wait_scaled_to_zero(fn, timeout=zero_timeout)
            start = time.time()
            with rec.timed():
                result = target.invoke(fn, {"i": i})
                if result.status != 200:
                    raise PlatformError(f"HTTP {result.status}: {str(result.body)[:120]}")
            end = time.time()
            try:
                rec.phases(**breakdown(target.timeline(fn, since=start - 1), start, end))
            except Exception:  # a target without a timeline still gives the samples
                pass
            rec.progress(i + 1, iterations, "cold starts")
            if rec.time_left() == 0:
                break
    finally:
        target.delete(fn)
