"""Throughput: Locust (FastHttpUser, a subprocess) against a warm function.

Runs the same load directly against one instance (the baseline, where the
target exposes instances) and through the gateway, in the same process and
back to back, so budgets can hold the ratio rather than absolute numbers.
The instance count is sampled during the gateway run.
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

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
                record_into(rec, _load(direct_url, params, Path(tmp) / "direct"), "direct")
            rec.progress(1, 2, "through the gateway")
            stop = threading.Event()
            t0 = time.monotonic()

            def watch() -> None:
                while not stop.is_set():
                    try:
                        rec.point("instances", target.instance_count(fn), time.monotonic() - t0,
                                  unit="instances")
                    except Exception:
                        pass
                    stop.wait(0.5)

            watcher = threading.Thread(target=watch, daemon=True)
            watcher.start()
            try:
                record_into(rec, _load(fn.url, params, Path(tmp) / "gateway",
                                       target.settings.token), "gateway")
            finally:
                stop.set()
                watcher.join(5)
    finally:
        target.delete(fn)
