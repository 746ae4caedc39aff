"""``kl chaos``: list and run the Chaos Toolkit experiments in ``chaos/experiments``."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from knative_lambda.chaos.run import find_experiment, list_experiments, load_experiment


@click.group()
def chaos() -> None:
    """Break the platform on purpose and check that it holds (Chaos Toolkit experiments)."""


@chaos.command("list")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="experiments folder (default: chaos/experiments)")
def list_command(directory: Path | None) -> None:
    """Show the experiments with their title and description."""
    found = list_experiments(directory)
    if not found:
        click.echo("no experiments found")
        return
    for name, path in found:
        experiment = load_experiment(path)
        click.echo(f"{name}: {experiment['title']}")
        description = " ".join(str(experiment.get("description", "")).split())
        click.echo(f"    {description}")


@chaos.command("run")
@click.argument("experiment")
@click.option("--target", type=click.Choice(["local", "kind", "cluster"]), default="local",
              show_default=True)
@click.option("--state", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="state file of the platform (default: $KL_STATE or .kl/env.json)")
@click.option("--journal", "journal_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="where to write the journal (default: reports/chaos/<name>/journal.json)")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("reports/chaos"), show_default=True)
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path), default=None)
@click.option("-q", "--quiet", is_flag=True, help="only the summary")
def run_command(experiment: str, target: str, state: Path | None, journal_path: Path | None,
                out_dir: Path, directory: Path | None, quiet: bool) -> None:
    """Run EXPERIMENT (a name from 'kl chaos list' or a file); exit 1 if it deviates."""
    from knative_lambda.chaos.run import run_experiment_file
    from knative_lambda.chaos.summary import render

    path = find_experiment(experiment, directory)
    log = logging.getLogger("chaostoolkit")
    if not quiet and not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("[%(asctime)s] %(message)s", "%H:%M:%S"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
    result = run_experiment_file(path, target=target, state=state, out_dir=out_dir,
                                 journal_path=journal_path)
    click.echo(render(result.summary))
    click.echo(f"journal: {result.journal_path}\nsummary: {result.summary_path}")
    if not result.summary["ok"]:
        sys.exit(1)
