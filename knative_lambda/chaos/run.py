"""Find, validate and run experiments; write the journal and the summary.

    path = find_experiment("broker-restart")
    result = run_experiment_file(path, target="local", state=".kl/env.json",
                                 out_dir=Path("reports/chaos"))
    result.summary["ok"], result.journal_path, result.summary_path

An experiment is a Chaos Toolkit file (YAML or JSON) in ``chaos/experiments``.
Before running, the harness pins where the activities find the platform by
writing ``kl_state``, ``kl_target`` and ``kl_chaos_dir`` into the experiment's
configuration; ledgers and load results of the run go to
``<out_dir>/<name>/work`` (emptied first), the journal and ``summary.json``
to ``<out_dir>/<name>/``.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from knative_lambda.chaos.ledger import Ledger
from knative_lambda.chaos.summary import summarize
from knative_lambda.errors import ConfigError

SUFFIXES = (".yaml", ".yml", ".json")
REPO_EXPERIMENTS = Path(__file__).resolve().parents[2] / "chaos" / "experiments"


def experiments_dir(directory: Path | None = None) -> Path:
    """The experiments folder: given, else ./chaos/experiments, else the one beside the package."""
    if directory is not None:
        return directory
    local = Path("chaos/experiments")
    return local if local.is_dir() else REPO_EXPERIMENTS


def list_experiments(directory: Path | None = None) -> list[tuple[str, Path]]:
    folder = experiments_dir(directory)
    if not folder.is_dir():
        return []
    return sorted((p.stem, p) for p in folder.iterdir() if p.suffix in SUFFIXES)


def find_experiment(name_or_path: str, directory: Path | None = None) -> Path:
    path = Path(name_or_path)
    if path.suffix in SUFFIXES and path.is_file():
        return path
    for name, found in list_experiments(directory):
        if name == name_or_path:
            return found
    known = ", ".join(name for name, _ in list_experiments(directory)) or "none"
    raise ConfigError(f"no experiment {name_or_path!r} (experiments: {known}); see 'kl chaos list'")


def load_experiment(path: Path) -> dict[str, Any]:
    """Parse and validate an experiment with chaostoolkit-lib (ConfigError on any problem)."""
    from chaoslib.exceptions import ChaosException
    from chaoslib.experiment import ensure_experiment_is_valid

    try:
        experiment = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read experiment {path}: {exc}") from None
    if not isinstance(experiment, dict):
        raise ConfigError(f"experiment {path} is not a mapping")
    try:
        ensure_experiment_is_valid(experiment)
    except ChaosException as exc:
        raise ConfigError(f"invalid experiment {path}: {exc}") from None
    return experiment


def _preflight(target: str, state_path: Path) -> None:
    """Fail in one line before anything runs when the target cannot be reached at all."""
    from knative_lambda.chaos import context

    with context.target(configuration={"kl_state": str(state_path), "kl_target": target}):
        pass


@dataclass
class RunResult:
    journal: dict[str, Any]
    summary: dict[str, Any]
    journal_path: Path
    summary_path: Path


def run_experiment_file(path: Path, *, target: str = "local", state: Path | None = None,
                        out_dir: Path = Path("reports/chaos"), journal_path: Path | None = None,
                        mutate: Callable[[dict[str, Any]], None] | None = None,
                        log: logging.Logger | None = None) -> RunResult:
    """Run one experiment against ``target``; ``mutate`` may edit it first (tests use it)."""
    from chaoslib.experiment import run_experiment

    from knative_lambda.chaos import actions
    from knative_lambda.harness import state as statefile

    experiment = load_experiment(path)
    state_path = Path(state) if state else statefile.default_state_path()
    _preflight(target, state_path)
    if mutate is not None:
        mutate(experiment)
    name = path.stem
    run_dir = (out_dir / name).resolve()
    work = run_dir / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    experiment.setdefault("configuration", {}).update(
        kl_state=str(state_path.resolve()), kl_target=target, kl_chaos_dir=str(work))

    actions._RUNS.clear()
    actions._BUILDS.clear()
    try:
        journal = run_experiment(experiment, settings={})
    finally:
        loads = {}
        for load_name, load in actions.loads().items():  # a load the experiment left running
            loads[load_name] = load.stop(10.0) if load.running else load.wait(1.0)
    balances = {d.name: Ledger(d).balance().to_dict()
                for d in sorted((work / "ledgers").glob("*")) if d.is_dir()}
    summary = summarize(name, journal, loads, balances)
    journal_path = journal_path or run_dir / "journal.json"
    journal_path.parent.mkdir(parents=True, exist_ok=True)
    journal_path.write_text(json.dumps(journal, indent=2, default=str))
    summary_path = run_dir / "summary.json"
    summary_path.write_text(json.dumps(summary, indent=2, default=str))
    if log is not None:
        log.info("journal: %s, summary: %s", journal_path, summary_path)
    return RunResult(journal, summary, journal_path, summary_path)
