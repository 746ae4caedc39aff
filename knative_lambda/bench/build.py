"""Build: build.start -> build.complete, cached and uncached, per runtime.

Uncached samples use a fresh nonce per build (a new content hash); cached
samples rebuild the same content, so each is a cache hit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from knative_lambda.bench.functions import SOURCES, unique_id
from knative_lambda.bench.runner import Recorder, register
from knative_lambda.errors import PlatformError


def _one(target: Any, parser: str, source: bytes | None, timeout: float) -> float:
    outcome = target.build("bench", parser, source, timeout=timeout)
    if outcome.kind != "build.complete":
        raise PlatformError(f"{outcome.kind}: {outcome.data.get('error_message')}")
    return outcome.elapsed_s


@register("build")
def run(target: Any, params: Mapping[str, Any], rec: Recorder) -> None:
    iterations = int(params.get("iterations", 5))
    timeout = float(params.get("build_timeout_s", 120))
    runtimes = list(params.get("runtimes", ["python", "python-dep", "node"]))
    total = iterations * (len(runtimes) + 1)
    done = 0
    for runtime in runtimes:
        name = f"uncached_{runtime.replace('-', '_')}"
        for _ in range(iterations):
            parser = unique_id("b")
            source = SOURCES[runtime](nonce=parser)
            try:
                rec.sample(_one(target, parser, source, timeout), name)
            except Exception as exc:
                rec.error(str(exc), name)
            done += 1
            rec.progress(done, total, f"builds ({name})")
    parser = unique_id("cached")
    _one(target, parser, SOURCES["python"](nonce=parser), timeout)  # warm the cache
    for _ in range(iterations):
        try:
            rec.sample(_one(target, parser, None, timeout), "cached")
        except Exception as exc:
            rec.error(str(exc), "cached")
        done += 1
        rec.progress(done, total, "builds (cached)")
