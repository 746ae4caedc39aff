"""kl up / status / down on the local target: real processes, nothing left behind."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from knative_lambda.harness import local
from knative_lambda.harness import state as statefile

pytestmark = pytest.mark.slow


def kl(*args: str, state: Path, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "KL_DATA_DIR": str(state.parent / "data")}
    env.pop("KL_AMQP_URL", None)
    result = subprocess.run([sys.executable, "-m", "knative_lambda", *args, "--state", str(state)],
                            capture_output=True, text=True, env=env, timeout=120)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def pids_of(state: statefile.State) -> set[int]:
    pids = {int(rec["pid"]) for rec in state.components.values()}
    for description in state.services.values():
        pids.update(int(rec["pid"]) for rec in description.get("pids", {}).values())
    return pids


def descendants(pids: set[int]) -> set[int]:
    found = set(pids)
    for pid in pids:
        try:
            found.update(child.pid for child in psutil.Process(pid).children(recursive=True))
        except psutil.Error:
            pass
    return found


def running(pids: set[int]) -> set[int]:
    alive = set()
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.add(pid)
        except psutil.Error:
            pass
    return alive


def test_up_status_down_leaves_nothing_behind(tmp_path: Path) -> None:
    state_path = tmp_path / "env.json"
    kl("up", state=state_path)
    state = statefile.load(state_path)
    assert {"rabbitmq", "s3"} <= set(state.services)
    every_pid = descendants(pids_of(state))
    assert running(every_pid), "up started no process"

    status = json.loads(kl("status", "--json", state=state_path).stdout)
    assert status["parts"] and all(part["healthy"] for part in status["parts"]), status

    kl("up", state=state_path)  # twice: nothing new is started
    assert statefile.load(state_path).components == state.components

    kl("down", state=state_path)
    assert not state_path.exists()
    assert running(every_pid) == set()
    assert kl("status", state=state_path, check=False).returncode == 2


def test_up_recovers_from_stale_state_of_a_killed_run(tmp_path: Path) -> None:
    state_path = tmp_path / "env.json"
    kl("up", state=state_path)
    first = statefile.load(state_path)
    victims = descendants(pids_of(first))
    for pid in victims:  # a crash: every process dies at once, the state file stays
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    dying = []
    for pid in running(victims):
        with contextlib.suppress(psutil.NoSuchProcess):  # gone since running() looked
            dying.append(psutil.Process(pid))
    psutil.wait_procs(dying, timeout=10)

    again = kl("up", state=state_path)
    assert "stale" in again.stderr
    second = statefile.load(state_path)
    assert pids_of(second).isdisjoint(pids_of(first))
    assert all(ok for ok, _ in local.health(second).values())
    kl("down", state=state_path)
    assert running(descendants(pids_of(second))) == set()


def test_status_without_state_says_what_to_do(tmp_path: Path) -> None:
    result = kl("status", state=tmp_path / "missing.json", check=False)
    assert result.returncode == 2
    assert "kl up" in result.stderr and "Traceback" not in result.stderr
