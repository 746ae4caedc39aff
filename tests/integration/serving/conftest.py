"""A real gateway process (and its zygote and instances) per test, with short autoscaler windows."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from knative_lambda.harness.services.ports import free_port

TOKEN = "serving-test-token"

# Records the highest concurrency this instance saw; answers with it, its pid and revision.
SLOW_HANDLER = '''
import asyncio, os
current = 0
highest = 0

async def handle(event):
    global current, highest
    current += 1
    highest = max(highest, current)
    try:
        await asyncio.sleep((event or {}).get("sleep", 0.05))
    finally:
        current -= 1
    return {"pid": os.getpid(), "max": highest, "revision": os.environ.get("K_REVISION"),
            "echo": (event or {}).get("n"), "env_has_token": "KL_TOKEN" in os.environ}
'''

HELLO_HANDLER = '''
def handle(event):
    return {"hello": event}
'''

BROKEN_HANDLER = '''
import no_such_module_anywhere
def handle(event):
    return 1
'''

NODE_HANDLER = '''
module.exports = { handle: async (event) => ({ node: true, got: event }) };
'''


def make_artifact(root: Path, name: str, source: str, runtime: str = "python") -> Path:
    """An artifact dir in the builder's layout: manifest.json + code/<entry>."""
    entry = "handler.py" if runtime == "python" else "index.js"
    art = root / name
    (art / "code").mkdir(parents=True)
    (art / "code" / entry).write_text(source)
    manifest = {"runtime": runtime, "entry": entry, "code": "code", "parser_id": name}
    if runtime == "python":
        manifest["pythonpath"] = ["code"]
    (art / "manifest.json").write_text(json.dumps(manifest))
    return art


class GatewayProc:
    def __init__(self, tmp: Path, extra_env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.tmp = tmp
        env = {
            **os.environ,
            "KL_PORT": str(self.port),
            "KL_TOKEN": TOKEN,
            "KL_DATA_DIR": str(tmp / "data"),
            "KL_AUTOSCALER_TICK": "0.2",
            "KL_AUTOSCALER_STABLE_WINDOW": "1s",
            "KL_AUTOSCALER_SCALE_TO_ZERO_GRACE_PERIOD": "0.5s",
            "KL_GATEWAY_BUFFER_TIMEOUT": "30",
            **extra_env,
        }
        self.log = open(tmp / "gateway.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "knative_lambda.platform.serving"], env=env, stdout=self.log,
            stderr=subprocess.STDOUT, cwd=tmp,
        )
        self.api = httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
        deadline = time.monotonic() + 20
        while True:
            try:
                if self.api.get("/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"gateway did not start: {(tmp / 'gateway.log').read_text()[-2000:]}")
            time.sleep(0.05)

    def deploy(self, name: str, artifact: Path, ns: str = "default", **revision: Any) -> dict[str, Any]:
        resp = self.api.put(f"/apis/v1/namespaces/{ns}/services/{name}",
                            json={"revision": {"artifact": str(artifact), **revision}})
        assert resp.status_code in (200, 201), resp.text
        return resp.json()

    def service(self, name: str, ns: str = "default") -> dict[str, Any]:
        return self.api.get(f"/apis/v1/namespaces/{ns}/services/{name}").json()

    def instances(self, name: str, ns: str = "default", states=("starting", "ready", "draining")) -> list[dict]:
        svc = self.service(name, ns)
        return [i for r in svc.get("revisions", []) for i in r["instances"] if i["state"] in states]

    def timeline(self, service: str, since: int = 0) -> list[dict[str, Any]]:
        return self.api.get("/apis/v1/timeline", params={"service": service, "since": since}).json()["events"]

    def wait_for(self, check: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = check()
            if value:
                return value
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}; gateway log: {self.tail()}")

    def tail(self) -> str:
        return (self.tmp / "gateway.log").read_text()[-3000:]

    def zygote_children(self) -> list[psutil.Process]:
        pid = self.api.get("/apis/v1/services").json()["runtimes"]["python"]["zygote_pid"]
        return psutil.Process(pid).children() if pid and psutil.pid_exists(pid) else []

    def stop(self) -> None:
        self.api.close()
        try:
            family = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            family = []
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        _, alive = psutil.wait_procs(family, timeout=5)
        for p in alive:  # PDEATHSIG should have done this; never leave processes behind
            p.kill()
        self.log.close()


@pytest.fixture
def start_gateway(tmp_path: Path) -> Iterator[Callable[..., GatewayProc]]:
    started: list[GatewayProc] = []

    def start(**extra_env: str) -> GatewayProc:
        home = tmp_path / f"gw{len(started)}"
        home.mkdir()
        gw = GatewayProc(home, extra_env)
        started.append(gw)
        return gw

    yield start
    for gw in started:
        gw.stop()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProc]:
    """One gateway for the module (its start costs seconds on a busy machine); tests use distinct names."""
    gw = GatewayProc(tmp_path_factory.mktemp("gateway"), {})
    yield gw
    gw.stop()


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    root = tmp_path / "artifacts"
    root.mkdir()
    return root
