"""Detached processes: a whole group ends on terminate; a reused pid is never touched."""

from __future__ import annotations

import subprocess
import sys

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


# The main thread leaves (pthread_exit) while another thread still runs and holds a socket:
# the kernel shows the group leader as a zombie until that thread is gone too.
LEADER_LEAVES_FIRST = """
import ctypes, socket, sys, threading, time
sock = socket.socket()
sock.bind(("127.0.0.1", 0))
sock.listen()
threading.Thread(target=lambda: (sys.stdin.readline(), sock.close())).start()
print(sock.getsockname()[1], flush=True)
ctypes.CDLL(None).pthread_exit(None)
"""


def test_a_zombie_leader_whose_threads_still_run_is_alive() -> None:
    popen = subprocess.Popen([sys.executable, "-c", LEADER_LEAVES_FIRST],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        ident = procs.identity(popen.pid)
        popen.stdout.readline()  # listening; the main thread is leaving
        assert poll(lambda: psutil.Process(popen.pid).status() == psutil.STATUS_ZOMBIE, 5)
        assert procs.alive(ident)  # its port is still held: not ended yet
        popen.stdin.write("go\n")
        popen.stdin.flush()
        assert poll(lambda: not procs.alive(ident), 5)
    finally:
        popen.kill()
        popen.wait()


def test_log_tail_is_one_line(tmp_path) -> None:
    log = tmp_path / "a.log"
    log.write_text("first\n\nsecond\nthird\n")
    assert procs.log_tail(log) == "third"
    assert procs.log_tail(log, 2) == "second | third"
    assert procs.log_tail(tmp_path / "missing.log") == ""
