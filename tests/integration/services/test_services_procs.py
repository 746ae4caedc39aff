"""Detached processes: a whole group ends on terminate; a reused pid is never touched."""

from __future__ import annotations

import psutil

from knative_lambda.harness.polling import poll
from knative_lambda.harness.services import procs


def test_terminate_ends_the_whole_group(tmp_path) -> None:
    # A shell with two children, like the rabbitmq-server wrapper and its beam.
    popen = procs.spawn(
        ["sh", "-c", "sleep 60 & sleep 60 & wait"],
        env={"PATH": "/usr/bin:/bin"},
        log_path=tmp_path / "log" / "x.log",
    )
    ident = procs.identity(popen.pid)
    assert poll(lambda: len(psutil.Process(popen.pid).children()) == 2, 5)
    children = [procs.identity(c.pid) for c in psutil.Process(popen.pid).children()]
    assert procs.alive(ident)
    procs.terminate(ident, grace=2.0, popen=popen)
    assert not procs.alive(ident)
    assert procs.wait_gone(children, 2.0)


def test_a_reused_pid_is_not_ours() -> None:
    me = procs.identity(psutil.Process().pid)
    assert procs.same_process(me) is not None
    assert procs.same_process({**me, "create_time": me["create_time"] - 100}) is None
    assert procs.same_process({}) is None and procs.same_process(None) is None
    procs.terminate({**me, "create_time": me["create_time"] - 100})  # must not kill us
    assert psutil.Process().is_running()


def test_log_tail_is_one_line(tmp_path) -> None:
    log = tmp_path / "a.log"
    log.write_text("first\n\nsecond\nthird\n")
    assert procs.log_tail(log) == "third"
    assert procs.log_tail(log, 2) == "second | third"
    assert procs.log_tail(tmp_path / "missing.log") == ""
