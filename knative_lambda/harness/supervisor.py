"""Start, watch and stop detached platform processes.

Processes outlive the ``kl up`` that started them, so they are tracked by pid
plus creation time (a recycled pid is never mistaken for ours) and each runs in
its own session, so stopping its group stops its children too.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import psutil

from knative_lambda.errors import PlatformError


def spawn(argv: Sequence[str], env: dict[str, str], log_path: Path) -> dict[str, Any]:
    """Start ``argv`` detached, logging to ``log_path`` (its ``KL_LOG_FILE``: logs.py keeps the
    file bounded); returns its pid record."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            list(argv), env={**env, "KL_LOG_FILE": str(log_path.resolve())}, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
    return {"pid": proc.pid, "create_time": psutil.Process(proc.pid).create_time(),
            "log": str(log_path), "argv": list(argv)}


def process(record: dict[str, Any]) -> psutil.Process | None:
    """The live process of a pid record, or None if it is gone (or the pid was reused)."""
    try:
        proc = psutil.Process(int(record["pid"]))
        if abs(proc.create_time() - float(record.get("create_time", proc.create_time()))) > 1:
            return None
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return proc
    except (psutil.Error, KeyError, ValueError, TypeError):
        return None


def alive(record: dict[str, Any]) -> bool:
    return process(record) is not None


def log_tail(record: dict[str, Any], lines: int = 5) -> str:
    try:
        text = Path(record["log"]).read_text(errors="replace").strip().splitlines()
    except (OSError, KeyError):
        return ""
    return " | ".join(text[-lines:])


def wait_healthy(url: str, record: dict[str, Any], name: str, timeout: float = 20.0) -> None:
    """Poll ``url`` until it answers 2xx; fail fast with the log tail if the process died."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if not alive(record):
            raise PlatformError(f"{name} exited during start-up: {log_tail(record) or 'no output'}")
        try:
            response = httpx.get(url, timeout=1.0)
            if response.is_success:
                return
            last = f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            last = type(exc).__name__
        time.sleep(0.05)
    raise PlatformError(f"{name} not healthy after {timeout:.0f}s ({last}); log: {record.get('log')}")


def terminate(record: dict[str, Any], timeout: float = 10.0) -> bool:
    """SIGTERM the process group, then SIGKILL what remains; True if something was running."""
    proc = process(record)
    if proc is None:
        return False
    members = [proc] + proc.children(recursive=True)
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        proc.terminate()
    _, remaining = psutil.wait_procs(members, timeout=timeout)
    for p in remaining:
        with contextlib.suppress(psutil.Error):
            p.kill()
    psutil.wait_procs(remaining, timeout=2)
    return True


def signal_process(record: dict[str, Any], sig: int) -> None:
    proc = process(record)
    if proc is None:
        raise PlatformError(f"process {record.get('pid')} is not running")
    os.killpg(proc.pid, sig)
