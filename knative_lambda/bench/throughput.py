"""Throughput: Locust (FastHttpUser, a subprocess) against a warm function.

Runs the same load directly against one instance (the baseline, where the
target exposes instances) and through the gateway, in the same process and
back to back, so budgets can hold the ratio rather than absolute numbers.
The instance count is sampled during the gateway run.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from knative_lambda.bench.concurrent import Periodic
from knative_lambda.bench.functions import SOURCES, unique_id
from knative_lambda.bench.locust_runner import LOCUSTFILES, record_into, run_locust
from knative_lambda.bench.runner import Recorder, register
from knative_lambda.errors import PlatformError


def _split(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}", parts.path or "/"


def _load(url: str, params: Mapping[str, Any], workdir: Path, token: str = "") -> Any:
    host, path = _split(url)
    return run_locust(LOCUSTFILES["http"], host, workdir,
                      run_time_s=float(params.get("duration_s", 10)),
                      users=int(params.get("users", 20)),
                      spawn_rate=float(params.get("users", 20)),
                      env={"KL_FUNCTION_PATH": path, "KL_TOKEN": token})


@register("throughput")
def run(target: Any, params: Mapping[str, Any], rec: Recorder) -> None:
    fn = target.deploy("bench", unique_id("tput"), SOURCES["python"]())
    try:
        warm = target.invoke(fn, {"warm": True})
        if warm.status != 200:
            raise PlatformError(f"function not invokable: HTTP {warm.status}")
        with tempfile.TemporaryDirectory(prefix="kl-locust-") as tmp:
            direct_url = getattr(target, "direct_url", lambda _fn: None)(fn)
            if direct_url:
                rec.progress(0, 2, "direct baseline")
                # Direct load bypasses the gateway, whose autoscaler would then see an idle
                # revision and scale it to zero mid-run: a trickle through it keeps it warm.
                with Periodic(lambda _t: target.invoke(fn, {"keepalive": True}), 0.2):
                    record_into(rec, _load(direct_url, params, Path(tmp) / "direct"), "direct")
            rec.progress(1, 2, "through the gateway")
            count = lambda t: rec.point("instances", target.instance_count(fn), t,  # noqa: E731
                                        unit="instances")
            with Periodic(count, 0.5):
                record_into(rec, _load(fn.url, params, Path(tmp) / "gateway",
                                       target.settings.token), "gateway")
    finally:
        target.delete(fn)
