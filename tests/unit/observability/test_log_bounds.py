"""Log files stay under KL_LOG_MAX_BYTES: moved to ``.1`` when full, followed by every writer."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from knative_lambda.errors import ConfigError
from knative_lambda.platform.logs import (
    DEFAULT_LOG_MAX_BYTES,
    keep_log_bounded,
    log_file,
    log_max_bytes,
)


@pytest.mark.parametrize(("raw", "expected"), [("", DEFAULT_LOG_MAX_BYTES), (" ", DEFAULT_LOG_MAX_BYTES),
                                               ("0", 0), ("4096", 4096)])
def test_log_max_bytes(raw: str, expected: int) -> None:
    assert log_max_bytes(raw) == expected


@pytest.mark.parametrize("raw", ["-1", "64M", "1.5"])
def test_log_max_bytes_rejects(raw: str) -> None:
    with pytest.raises(ConfigError, match="KL_LOG_MAX_BYTES"):
        log_max_bytes(raw)


def test_under_the_limit_nothing_moves(tmp_path: Path) -> None:
    path = tmp_path / "c.log"
    with open(path, "a") as stream:
        stream.write("x" * 100)
        stream.flush()
        assert keep_log_bounded(stream, str(path), 100) is False
        assert keep_log_bounded(stream, str(path), 0) is False  # 0: no limit
    assert not (tmp_path / "c.log.1").exists()


def test_over_the_limit_the_file_moves_and_writing_goes_on_in_a_new_one(tmp_path: Path) -> None:
    path = tmp_path / "c.log"
    (tmp_path / "c.log.1").write_text("older part\n")
    with open(path, "a") as stream:
        stream.write("first\n" * 20)
        stream.flush()
        assert keep_log_bounded(stream, str(path), 100) is True
        stream.write("second\n")
        stream.flush()
    assert (tmp_path / "c.log.1").read_text() == "first\n" * 20  # the older part is replaced
    assert path.read_text() == "second\n"


def test_a_deleted_log_is_started_again(tmp_path: Path) -> None:
    path = tmp_path / "c.log"
    with open(path, "a") as stream:
        path.unlink()
        assert keep_log_bounded(stream, str(path), 100) is True
        stream.write("after\n")
        stream.flush()
    assert path.read_text() == "after\n"


def test_only_a_regular_file_is_a_log_file(tmp_path: Path) -> None:
    r, w = os.pipe()
    with os.fdopen(w, "w") as stream:
        assert log_file(stream) is None
    os.close(r)
    with open(tmp_path / "c.log", "a") as stream:
        assert log_file(stream) == str(tmp_path / "c.log")
        os.replace(tmp_path / "c.log", tmp_path / "c.log.1")  # moved by another process
        assert log_file(stream) == str(tmp_path / "c.log.1")
        assert log_file(stream, str(tmp_path / "c.log")) == str(tmp_path / "c.log")  # as started
        assert log_file(stream, str(tmp_path / "other.log")) == str(tmp_path / "c.log.1")  # not that file


WRITER = r"""
import logging, os, sys, time
from knative_lambda.platform import logs
logs.LOG_CHECK_SECONDS = 0.0  # check before every line
logs.setup(sys.argv[1])
log = logging.getLogger("t")
while not os.path.exists(sys.argv[3]):  # the test says when to write
    time.sleep(0.01)
for i in range(int(sys.argv[2])):
    log.info("%s line %d %s", sys.argv[1], i, "x" * 200)
"""


def test_processes_sharing_a_log_follow_its_move_and_no_line_is_lost(tmp_path: Path) -> None:
    """Two writers on one file, as a broker and its ingress worker: ``a`` fills it past
    the limit (one move), then ``b``, which still holds the moved file, writes: its lines
    go to the new file. Every line is in the file or its ``.1``."""
    path = tmp_path / "broker.log"
    lines = {"a": 200, "b": 20}  # ~290 bytes a line: a moves the file once, at 40 kB
    env = {**os.environ, "KL_LOG_MAX_BYTES": "40000", "KL_LOG_FILE": str(path)}  # as supervisor.spawn
    with open(path, "ab") as log:
        procs = {name: subprocess.Popen([sys.executable, "-c", WRITER, name, str(n), str(tmp_path / name)],
                                        env=env, stdout=log, stderr=subprocess.STDOUT)
                 for name, n in lines.items()}
    for name in ("a", "b"):
        (tmp_path / name).touch()
        assert procs[name].wait(60) == 0
    current = path.read_text().splitlines()
    moved = (tmp_path / "broker.log.1").read_text().splitlines()
    for name, n in lines.items():
        numbers = sorted(int(line.split(f'"{name} line ')[1].split()[0])
                         for line in moved + current if f'"{name} line ' in line)
        assert numbers == list(range(n)), name
    assert any('"a line 0 ' in line for line in moved)
    assert sum('"b line ' in line for line in current) == lines["b"]  # b followed the move
    assert os.path.getsize(path) < 40000


def test_a_bad_limit_is_a_warning_in_the_log_not_a_crash(tmp_path: Path) -> None:
    code = "from knative_lambda.platform import logs; logs.setup('c'); print('up')"
    with open(tmp_path / "c.log", "ab") as log:
        done = subprocess.run([sys.executable, "-c", code], env={**os.environ, "KL_LOG_MAX_BYTES": "64M"},
                              stdout=subprocess.PIPE, stderr=log, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout == "up\n"
    text = (tmp_path / "c.log").read_text()
    assert "KL_LOG_MAX_BYTES='64M' is not a whole number" in text and "Traceback" not in text
