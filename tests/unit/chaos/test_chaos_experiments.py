"""Every experiment in chaos/experiments is a valid Chaos Toolkit experiment of the right shape."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import yaml
from chaoslib.experiment import ensure_experiment_is_valid
from click.testing import CliRunner

from knative_lambda.chaos.commands import chaos
from knative_lambda.chaos.run import (
    REPO_EXPERIMENTS,
    find_experiment,
    list_experiments,
    load_experiment,
)
from knative_lambda.errors import ConfigError

EXPECTED = {"broker-restart", "s3-outage-builds", "instance-kill-http", "gateway-restart",
            "builder-kill", "broker-latency"}
FILES = sorted(REPO_EXPERIMENTS.glob("*.yaml"))


def test_the_six_experiments_are_there() -> None:
    assert {p.stem for p in FILES} == EXPECTED
    assert {name for name, _ in list_experiments(REPO_EXPERIMENTS)} == EXPECTED


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_experiment_is_valid_and_complete(path: Path) -> None:
    experiment = yaml.safe_load(path.read_text())
    ensure_experiment_is_valid(experiment)  # imports every module, binds every argument
    assert experiment["steady-state-hypothesis"]["probes"], "a steady state to hold"
    assert experiment["method"], "something to break"
    assert experiment["rollbacks"], "a way back"
    activities = [*experiment["steady-state-hypothesis"]["probes"], *experiment["method"],
                  *experiment["rollbacks"]]
    for activity in activities:
        provider = activity["provider"]
        assert provider["type"] == "python"
        assert provider["module"].startswith("knative_lambda.chaos.")
        assert callable(getattr(importlib.import_module(provider["module"]), provider["func"]))


def test_find_experiment_by_name_or_path_and_a_clear_error() -> None:
    assert find_experiment("broker-restart", REPO_EXPERIMENTS).name == "broker-restart.yaml"
    assert find_experiment(str(FILES[0])) == FILES[0]
    with pytest.raises(ConfigError, match="no experiment 'nope'.*broker-restart"):
        find_experiment("nope", REPO_EXPERIMENTS)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("- a list", "not a mapping"),
        ("title: t\n", "description"),
        ("title: t\ndescription: d\nmethod:\n  - type: action\n    name: x\n    provider:\n"
         "      type: python\n      module: knative_lambda.chaos.actions\n      func: nope\n",
         "does not expose a function called 'nope'"),
        ("title: t\ndescription: d\nmethod:\n  - type: action\n    name: x\n    provider:\n"
         "      type: python\n      module: knative_lambda.chaos.actions\n      func: kill_part\n"
         "      arguments: {prt: x}\n", "required argument .part. is missing"),
        ("title: [", "cannot read"),
    ],
)
def test_load_experiment_rejects_bad_files_with_one_line(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=fragment):
        load_experiment(path)


def test_kl_chaos_list_shows_titles_and_descriptions() -> None:
    result = CliRunner().invoke(chaos, ["list", "--dir", str(REPO_EXPERIMENTS)])
    assert result.exit_code == 0, result.output
    for name in EXPECTED:
        assert f"{name}: " in result.output
    assert "zero lost" in result.output


def test_kl_chaos_run_unknown_experiment_is_a_one_line_error() -> None:
    from knative_lambda.cli import cli

    result = CliRunner().invoke(cli, ["chaos", "run", "nope", "--dir", str(REPO_EXPERIMENTS)])
    assert result.exit_code != 0
    assert isinstance(result.exception, ConfigError)
