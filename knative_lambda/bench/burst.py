"""Burst 0 -> N: N concurrent requests on a function at a true zero.

Records every request's latency (errors counted), the instance count over
time, and how long the platform took to reach its peak instance count.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from knative_lambda.bench.concurrent import Periodic, post_all, record_outcomes
from knative_lambda.bench.functions import SOURCES, unique_id
from knative_lambda.bench.runner import Recorder, register


def time_to_peak(t: list[float], v: list[float]) -> float | None:
    """Seconds until the series first reached its maximum (pure)."""
    if not v:
        return None
    peak = max(v)
    return next(ti for ti, vi in zip(t, v, strict=True) if vi == peak)


@register("burst")
def run(target: Any, params: Mapping[str, Any], rec: Recorder) -> None:
    requests = int(params.get("requests", 1000))
    fn = target.deploy("bench", unique_id("burst"), SOURCES["python"]())
    try:
        target.wait_scaled_to_zero(fn, timeout=float(params.get("zero_timeout_s", 60)))
        times: list[float] = []
        counts: list[float] = []

        def watch(t: float) -> None:
            counts.append(target.instance_count(fn))
            times.append(t)

        body = json.dumps({"burst": True}).encode()
        with Periodic(watch, 0.1):
            outcomes = post_all(fn.url, [body] * requests, concurrency=requests,
                                headers=lambda _i: {"Content-Type": "application/json"},
                                timeout=float(params.get("request_timeout_s", 60)))
            time.sleep(0.5)  # the scale-out may lag the last answer
        record_outcomes(rec, outcomes)
        rec.series("instances", times, counts, unit="instances")
        peak_at = time_to_peak(times, counts)
        if peak_at is not None:
            rec.sample(peak_at, "time_to_peak")
            rec.note("peak_instances", max(counts))
    finally:
        target.delete(fn)
