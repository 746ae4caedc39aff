"""Hostile ``kl`` command lines: a non-zero exit and a one-line error, never a traceback.

All commands run at once (each is its own ``python -m knative_lambda``), in an
empty directory; those that need a platform get the running one's state file.
"""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from knative_lambda.harness import state as statefile
from tests.hostile.corpus_cli import CASES, FILES, CliCase

REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 60.0  # a hostile input must not hang the CLI either


def _expand(arg: str, places: dict[str, str]) -> str:
    for key, value in places.items():
        arg = arg.replace("{" + key + "}", value)
    return arg


@pytest.fixture(scope="module")
def runs(hostile_target: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """case id -> CompletedProcess (or the string 'timeout')."""
    base = tmp_path_factory.mktemp("hostile-cli")
    workdir = base / "work"
    workdir.mkdir()
    places = {"missing": str(base / "no" / "such" / "file"), "dir": str(base / "a-directory"),
              "repo": str(REPO), "state": str(base / "env.json")}
    Path(places["dir"]).mkdir()
    for name, data in FILES.items():
        (base / name).write_bytes(data)
        places[f"f:{name}"] = str(base / name)
    state = statefile.State(target="local", settings=statefile.settings_to_dict(hostile_target.settings))
    Path(places["state"]).write_text(__import__("json").dumps(asdict(state)))
    env = {k: v for k, v in os.environ.items() if not k.startswith("KL_")}

    def run(case: CliCase) -> tuple[str, Any]:
        argv = [sys.executable, "-m", "knative_lambda", *(_expand(a, places) for a in case.argv)]
        try:
            return case.id, subprocess.run(argv, cwd=workdir, env=env, capture_output=True, timeout=TIMEOUT,
                                           stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            return case.id, "timeout"

    with ThreadPoolExecutor(max_workers=6) as pool:
        return dict(pool.map(run, CASES))


def _param(case: CliCase) -> Any:
    marks = [pytest.mark.xfail(strict=True, reason=case.bug)] if case.bug else []
    return pytest.param(case, id=case.id, marks=marks)


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_hostile_command_line_gets_a_one_line_error(case: CliCase, runs: dict[str, Any]) -> None:
    done = runs[case.id]
    assert done != "timeout", f"kl {case.id} still running after {TIMEOUT:g}s"
    stderr = done.stderr.decode("utf-8", "replace")
    assert "Traceback" not in stderr, stderr[-2000:]
    assert done.returncode != 0, f"exit 0; stdout={done.stdout[-500:]!r}"
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines, "no error message on stderr"
    # click adds "Usage: ..." and "Try 'kl -h'" around a usage error; the error is one line.
    errors = [line for line in lines if line.lower().startswith(("error", "usage:", "try "))]
    assert len(lines) <= 4 and len([e for e in errors if e.lower().startswith("error")]) == 1, stderr[-1500:]
    message = next(e for e in errors if e.lower().startswith("error")).lower()
    for word in case.expect:
        assert word in message, f"{word!r} not in {message!r}"
