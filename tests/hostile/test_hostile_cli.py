"""Hostile ``kl`` command lines: a non-zero exit and a one-line error, never a traceback.

Each command line runs in its own process through the real entry point
(``python -m knative_lambda``); :func:`run_cli` forks them from one interpreter
that has imported kl once, so the whole corpus takes seconds. A few cases also
run as plain ``python -m knative_lambda`` subprocesses to show that the two agree.
They run in an empty directory; those that need a platform get the running one's
state file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from knative_lambda.harness import state as statefile
from knative_lambda.harness.hostile import CliRun, cli_verdict, run_cli
from tests.hostile.corpus_cli import CASES, FILES, CliCase

REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 30.0  # a hostile input must not hang the CLI either
PLAIN = ("unknown-command", "status-missing-state", "emit-bad-json", "gate-budgets-broken-yaml",
         "build-missing-path")


def _expand(arg: str, places: dict[str, str]) -> str:
    for key, value in places.items():
        arg = arg.replace("{" + key + "}", value)
    return arg


@pytest.fixture(scope="module")
def setup(hostile_target: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("hostile-cli")
    (base / "work").mkdir()
    (base / "out").mkdir()
    places = {"missing": str(base / "no" / "such" / "file"), "dir": str(base / "a-directory"),
              "repo": str(REPO), "state": str(base / "env.json")}
    Path(places["dir"]).mkdir()
    for name, data in FILES.items():
        (base / name).write_bytes(data)
        places[f"f:{name}"] = str(base / name)
    state = statefile.State(target="local", settings=statefile.settings_to_dict(hostile_target.settings))
    Path(places["state"]).write_text(json.dumps(asdict(state)))
    env = {k: v for k, v in os.environ.items() if not k.startswith("KL_")}
    return {"base": base, "places": places, "env": env}


@pytest.fixture(scope="module")
def runs(setup: dict[str, Any]) -> dict[str, CliRun]:
    argvs = [[_expand(a, setup["places"]) for a in case.argv] for case in CASES]
    results = run_cli(argvs, cwd=str(setup["base"] / "work"), env=setup["env"],
                      scratch=str(setup["base"] / "out"), timeout=TIMEOUT)
    return {case.id: result for case, result in zip(CASES, results, strict=True)}


def _param(case: CliCase) -> Any:
    marks = [pytest.mark.xfail(strict=True, reason=case.bug)] if case.bug else []
    return pytest.param(case, id=case.id, marks=marks)


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_hostile_command_line_gets_a_one_line_error(case: CliCase, runs: dict[str, CliRun]) -> None:
    problems = cli_verdict(runs[case.id], case.expect)
    assert not problems, f"kl {case.id}: " + "; ".join(problems)


@pytest.mark.parametrize("case_id", PLAIN)
def test_plain_subprocess_agrees_with_the_forked_run(case_id: str, setup: dict[str, Any],
                                                     runs: dict[str, CliRun]) -> None:
    case = next(c for c in CASES if c.id == case_id)
    argv = [sys.executable, "-m", "knative_lambda", *(_expand(a, setup["places"]) for a in case.argv)]
    done = subprocess.run(argv, cwd=setup["base"] / "work", env=setup["env"], capture_output=True,
                          timeout=TIMEOUT, stdin=subprocess.DEVNULL)
    plain = CliRun(done.returncode, done.stdout, done.stderr)
    assert cli_verdict(plain, case.expect) == []
    assert plain.code == runs[case_id].code
    assert plain.stderr.splitlines()[-1] == runs[case_id].stderr.splitlines()[-1]


def test_after_the_cli_corpus_platform_is_healthy_and_nothing_lost(runs: dict[str, CliRun],
                                                                   platform_ok: Any) -> None:
    platform_ok("cli")
