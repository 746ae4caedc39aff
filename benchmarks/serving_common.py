"""Shared by the serving benchmarks: a private gateway process, artifacts, a stats helper.

Not a test: each ``serving_*.py`` script prints one JSON document.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

HELLO = "def handle(event):\n    return {'hello': event}\n"
SLEEPY = (
    "import asyncio\n\nasync def handle(event):\n"
    "    await asyncio.sleep((event or {}).get('sleep', 0.05))\n    return {'ok': True}\n"
)


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = (len(s) - 1) * p / 100.0
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def summary(values_s: list[float]) -> dict[str, float]:
    ms = [v * 1000 for v in values_s]
    return {
        "n": len(ms),
        "p50_ms": round(percentile(ms, 50), 3),
        "p90_ms": round(percentile(ms, 90), 3),
        "p99_ms": round(percentile(ms, 99), 3),
        "max_ms": round(max(ms), 3) if ms else float("nan"),
        "mean_ms": round(sum(ms) / len(ms), 3) if ms else float("nan"),
    }


def make_artifact(root: Path, name: str, source: str) -> Path:
    art = root / name
    (art / "code").mkdir(parents=True)
    (art / "code" / "handler.py").write_text(source)
    (art / "manifest.json").write_text(
        json.dumps({"runtime": "python", "entry": "handler.py", "code": "code", "pythonpath": ["code"]})
    )
    return art


class Gateway:
    """A gateway subprocess with its own data dir; stopped (with its instances) on exit."""

    def __init__(self, **env: str) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="kl-serving-bench-"))
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        # a benchmark deploys dozens of services a second: no management rate limits
        full = {**os.environ, "KL_PORT": str(self.port), "KL_DATA_DIR": str(self.tmp / "data"), "KL_TOKEN": "",
                "KL_RATE_LIMITS": "deploy=0,manage=0", **env}
        self.log = open(self.tmp / "gateway.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen([sys.executable, "-m", "knative_lambda.platform.serving"], env=full,
                                     stdout=self.log, stderr=subprocess.STDOUT, cwd=self.tmp)
        self.api = httpx.Client(base_url=self.url, timeout=30)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if self.api.get("/healthz").status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError("gateway did not start: " + (self.tmp / "gateway.log").read_text()[-2000:])

    def deploy(self, name: str, artifact: Path, **revision: Any) -> None:
        r = self.api.put(f"/apis/v1/namespaces/default/services/{name}",
                         json={"revision": {"artifact": str(artifact), **revision}})
        r.raise_for_status()

    def service(self, name: str) -> dict[str, Any]:
        return self.api.get(f"/apis/v1/namespaces/default/services/{name}").json()

    def timeline(self, service: str | None = None, since: int = 0) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"since": since}
        if service:
            params["service"] = service
        return self.api.get("/apis/v1/timeline", params=params).json()["events"]

    def __enter__(self) -> Gateway:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            family = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            family = []
        self.api.close()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        _, alive = psutil.wait_procs(family, timeout=5)
        for p in alive:
            p.kill()
        self.log.close()
