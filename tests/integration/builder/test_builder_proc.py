"""A build tool's whole process group dies with its build (the timeout path)."""

from __future__ import annotations

import asyncio
import os
import time

import psutil
import pytest

from knative_lambda.platform.builder import proc


async def test_cancelled_tool_and_its_children_are_killed(tmp_path) -> None:
    pidfile = tmp_path / "pids"
    script = f"sleep 30 & echo $! > {pidfile}; echo $$ >> {pidfile}; wait"
    task = asyncio.create_task(proc.run(["sh", "-c", script]))
    for _ in range(100):
        if pidfile.exists() and len(pidfile.read_text().split()) == 2:
            break
        await asyncio.sleep(0.02)
    pids = [int(p) for p in pidfile.read_text().split()]
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        await asyncio.sleep(0.02)
    assert not any(_alive(p) for p in pids)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


async def test_run_returns_code_and_output(tmp_path) -> None:
    code, out = await proc.run(["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert code == 3 and "out" in out and "err" in out
    src = tmp_path / "in.txt"
    src.write_text("piped")
    assert await proc.run(["cat"], stdin_path=str(src)) == (0, "piped")
    with pytest.raises(FileNotFoundError):
        await proc.run(["kl-no-such-tool-zz"])
    assert os.environ  # the environment is inherited when env is None
