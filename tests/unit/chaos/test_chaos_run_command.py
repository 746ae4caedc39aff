"""``kl chaos run`` end to end on experiments that need no running platform."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from knative_lambda.cli import cli

PASSING = """
title: nothing breaks
description: a hypothesis that holds and a method that only looks
steady-state-hypothesis:
  title: no load has failed
  probes:
    - type: probe
      name: error-rate
      tolerance: 0
      provider: {type: python, module: knative_lambda.chaos.probes, func: load_error_rate,
                 arguments: {name: none}}
method:
  - type: probe
    name: look
    provider: {type: python, module: knative_lambda.chaos.probes, func: load_result,
               arguments: {name: none}}
rollbacks: []
"""

FAILING_STEP = PASSING.replace(
    "func: load_result,\n               arguments: {name: none}",
    "func: stop_load,\n               arguments: {name: never-started}",
).replace("type: probe\n    name: look", "type: action\n    name: look").replace(
    "module: knative_lambda.chaos.probes, func: stop_load",
    "module: knative_lambda.chaos.actions, func: stop_load")

DEVIATING = PASSING.replace("tolerance: 0\n", "tolerance: 1\n")


@pytest.fixture
def state(tmp_path: Path) -> Path:
    path = tmp_path / "env.json"
    path.write_text(json.dumps({"target": "local", "settings": {"data_dir": str(tmp_path / "d")},
                                "services": {}, "components": {}}))
    return path


@pytest.mark.parametrize(
    ("text", "code", "verdict"),
    [(PASSING, 0, "PASSED"), (FAILING_STEP, 1, "FAILED"), (DEVIATING, 1, "FAILED")],
)
def test_run_writes_journal_and_summary_and_exits_on_the_verdict(
        tmp_path: Path, state: Path, text: str, code: int, verdict: str) -> None:
    experiment = tmp_path / "exp.yaml"
    experiment.write_text(text)
    out = tmp_path / "reports"
    result = CliRunner().invoke(cli, ["chaos", "run", str(experiment), "--state", str(state),
                                      "--out", str(out), "-q"])
    assert result.exit_code == code, result.output
    assert result.output.startswith(f"exp: {verdict}")
    summary = json.loads((out / "exp" / "summary.json").read_text())
    journal = json.loads((out / "exp" / "journal.json").read_text())
    assert summary["ok"] is (code == 0)
    assert journal["experiment"]["title"] == "nothing breaks"
    if text is FAILING_STEP:
        assert summary["failed_steps"][0]["name"] == "look"
        assert "no load named" in summary["failed_steps"][0]["error"]


def test_journal_path_option(tmp_path: Path, state: Path) -> None:
    experiment = tmp_path / "exp.yaml"
    experiment.write_text(PASSING)
    journal = tmp_path / "elsewhere" / "j.json"
    result = CliRunner().invoke(cli, ["chaos", "run", str(experiment), "--state", str(state),
                                      "--out", str(tmp_path / "r"), "--journal", str(journal), "-q"])
    assert result.exit_code == 0, result.output
    assert json.loads(journal.read_text())["status"] == "completed"
