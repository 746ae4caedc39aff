"""Time to scale to zero: from the last request to zero instances."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from knative_lambda.bench.functions import SOURCES, unique_id
from knative_lambda.bench.runner import Recorder, register


@register("scale_to_zero")
def run(target: Any, params: Mapping[str, Any], rec: Recorder) -> None:
    iterations = int(params.get("iterations", 3))
    timeout = float(params.get("zero_timeout_s", 120))
    fn = target.deploy("bench", unique_id("zero"), SOURCES["python"]())
    try:
        for i in range(iterations):
            for _ in range(int(params.get("requests", 5))):
                target.invoke(fn, {"warm": i})
            with rec.timed():
                target.wait_scaled_to_zero(fn, timeout=timeout)
            rec.progress(i + 1, iterations, "scale-downs")
    finally:
        target.delete(fn)
