"""Detached child processes that outlive the CLI, and how to end them for sure.

A provider's process runs in its own session (so ``kl up`` can exit and leave it
running, and Ctrl-C in the terminal does not reach it). Its pid is also its
process-group id, so stopping it signals the whole group (a shell wrapper and
its ``beam.smp`` child, for example). A pid is recorded with its creation time,
so a stale state file can never make us kill an unrelated process that reused it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import psutil

from knative_lambda.harness.polling import poll


def spawn(
    argv: list[str], *, env: dict[str, str], log_path: Path, cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    """Start ``argv`` detached: own session, stdin closed, output to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            argv,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def identity(pid: int) -> dict[str, Any]:
    """What :func:`same_process` needs to recognise this pid later."""
    try:
        return {"pid": pid, "create_time": psutil.Process(pid).create_time()}
    except psutil.Error:
        return {"pid": pid, "create_time": None}


def same_process(ident: dict[str, Any] | None) -> psutil.Process | None:
    """The live process ``ident`` recorded, or None if it ended (a zombie has ended)."""
    if not ident or not ident.get("pid"):
        return None
    try:
        proc = psutil.Process(int(ident["pid"]))
        if (
            ident.get("create_time") is not None
            and abs(proc.create_time() - ident["create_time"]) > 0.5
        ):
            return None  # the pid was reused by someone else
        # A zombie has ended, unless it is a thread group leader whose other threads are
        # still exiting: until the last one is gone it still holds its sockets (ports).
        if proc.status() == psutil.STATUS_ZOMBIE and proc.num_threads() <= 1:
            return None
        return proc
    except psutil.Error:
        return None


def alive(ident: dict[str, Any] | None) -> bool:
    return same_process(ident) is not None


def wait_gone(idents: list[dict[str, Any]], timeout: float) -> bool:
    return poll(lambda: not any(alive(i) for i in idents), timeout, interval=0.05)


def terminate(
    ident: dict[str, Any] | None, grace: float = 5.0, popen: subprocess.Popen[bytes] | None = None
) -> None:
    """SIGTERM the process group of ``ident`` (a session leader we spawned), then SIGKILL."""
    proc = same_process(ident)
    if proc is not None:
        victims = [proc, *_children(proc)]
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 2.0)):
            alive_now = [v for v in victims if _running(v)]
            if not alive_now:
                break
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, sig)  # pgid == pid: we started it as a session leader
            for v in alive_now:
                with contextlib.suppress(psutil.Error):
                    v.send_signal(sig)  # children that left the group
            _wait_stopped(alive_now, wait)
    if popen is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            popen.wait(timeout=1)  # reap our own child so no zombie stays


def _wait_stopped(procs: list[psutil.Process], timeout: float) -> None:
    # Polling, not psutil.wait_procs: a process we did not spawn may linger as a
    # zombie that only its new parent can reap; it counts as stopped.
    poll(lambda: not any(_running(p) for p in procs), timeout, interval=0.05)


def _children(proc: psutil.Process) -> list[psutil.Process]:
    try:
        return proc.children(recursive=True)
    except psutil.Error:
        return []


def _running(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def log_tail(path: Path, lines: int = 1) -> str:
    """The last non-empty lines of a log, joined by ' | ' (for one-line errors)."""
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(line.strip() for line in text[-lines:] if line.strip())
