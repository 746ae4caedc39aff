"""``kl bench``, ``kl gate`` and ``kl report``.

Exit codes: gate 0 pass (NOISY included), 1 breach, 2 bad input (a KLError,
printed in one line by the CLI); bench 0 all ok, 1 a benchmark failed, 130 on
Ctrl-C (partial results saved).
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path
from typing import Any

import click

DEFAULT_STATE = ".kl/env.json"


def _open_target(name: str, state: Path) -> Any:
    """The running target (knative_lambda.harness.targets.load_target), imported lazily."""
    from knative_lambda.harness.targets import load_target

    return load_target(name, state)


@click.command()
@click.argument("suite")
@click.option("--target", "target_name", default="local", show_default=True,
              type=click.Choice(["local", "kind", "cluster"]), help="Where to run.")
@click.option("--state", type=click.Path(path_type=Path), default=None,
              help=f"State file of the target [default: $KL_STATE or {DEFAULT_STATE}].")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Result JSON [default: results/<suite>-<time>.json].")
@click.option("--only", multiple=True, help="Run only these benchmarks of the suite (repeatable).")
def bench(suite: str, target_name: str, state: Path | None, out: Path | None,
          only: tuple[str, ...]) -> int:
    """Run the benchmark SUITE (a name in benchmarks/suites/ or a .yaml path) against a target.

    Progress goes to stderr; the result file is rewritten after each benchmark,
    so Ctrl-C keeps what was measured.
    """
    from knative_lambda.bench.results import collect_metadata
    from knative_lambda.bench.runner import resolve_kinds, run_suite
    from knative_lambda.bench.suite import load_suite

    spec = load_suite(suite).select(list(only))
    resolve_kinds(spec)  # unregistered kinds fail here, before the target is touched
    state = state or Path(os.environ.get("KL_STATE") or DEFAULT_STATE)
    if out is None:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        out = Path("results") / f"{spec.name}-{stamp}.json"
    target = _open_target(target_name, state)
    try:
        record = run_suite(spec, target, out, collect_metadata(target_name, ["kl", *sys.argv[1:]]))
    finally:
        close = getattr(target, "close", None)
        if callable(close):
            close()
    from knative_lambda.bench.gate import format_measurements

    if record.measurements():
        click.echo(format_measurements(record.measurements()), err=True)
    click.echo(f"results: {out}", err=True)
    if record.status == "interrupted":
        click.echo(f"interrupted: partial results kept in {out}", err=True)
        return 130
    return 0 if record.status == "ok" else 1


@click.command()
@click.argument("results", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--budgets", "budgets_path", required=True, type=click.Path(path_type=Path),
              help="Budget file, e.g. benchmarks/budgets/local.yaml.")
@click.option("--junit", type=click.Path(path_type=Path), help="Write JUnit XML here.")
@click.option("--json", "json_path", type=click.Path(path_type=Path),
              help="Write the gate result as JSON (for kl report --gate).")
def gate(results: tuple[Path, ...], budgets_path: Path, junit: Path | None,
         json_path: Path | None) -> int:
    """Check RESULTS (pooled) against budgets: exit 0 pass, 1 breach, 2 bad input.

    A breach counts only when the whole 95 % interval is on the wrong side;
    NOISY results are reported and do not fail the gate.
    """
    from knative_lambda.bench.gate import format_table, run_gate, write_outputs

    result = run_gate(list(results), budgets_path)
    click.echo(format_table(result))
    write_outputs(result, junit, json_path)
    return 0 if result.passed else 1


@click.command()
@click.argument("results", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--baseline", type=click.Path(path_type=Path),
              help="A previous result file to compare against.")
@click.option("--gate", "gate_path", type=click.Path(path_type=Path),
              help="A gate result (kl gate --json) to show.")
@click.option("--budgets", "budgets_path", type=click.Path(path_type=Path),
              help="Evaluate these budgets for the report (instead of --gate).")
@click.option("--chaos", "chaos_paths", multiple=True, type=click.Path(path_type=Path),
              help="Chaos summary JSON files to include (repeatable).")
@click.option("--out", type=click.Path(path_type=Path), default=Path("reports/latest"),
              show_default=True, help="Output directory (index.html, summary.json).")
def report(results: tuple[Path, ...], baseline: Path | None, gate_path: Path | None,
           budgets_path: Path | None, chaos_paths: tuple[Path, ...], out: Path) -> int:
    """Write a self-contained HTML report of RESULTS to OUT/index.html."""
    from knative_lambda.bench.gate import run_gate, to_json
    from knative_lambda.bench.report import write_report

    gate_data: Path | dict[str, Any] | None = gate_path
    if budgets_path is not None:
        gate_data = to_json(run_gate(list(results), budgets_path))
    index = write_report(list(results), out, baseline=baseline, gate=gate_data,
                         chaos=list(chaos_paths))
    click.echo(str(index))
    return 0
