"""``kl conformance``: run the contract suite against a target, print a clause table."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import click

SUITE = Path(__file__).resolve().parents[2] / "scenarios" / "conformance"


@dataclass(frozen=True)
class ClauseResult:
    clause: str
    test: str
    outcome: str  # passed | failed | skipped | error
    seconds: float
    message: str = ""


def parse_junit(path: Path) -> list[ClauseResult]:
    """One row per test case, with the clause it names (pure over the XML file)."""
    results = []
    for case in ET.parse(path).getroot().iter("testcase"):
        clause = next((p.get("value", "") for p in case.iter("property") if p.get("name") == "clause"),
                      "-")
        outcome, message = "passed", ""
        for tag in ("failure", "error", "skipped"):
            node = case.find(tag)
            if node is not None:
                outcome = "failed" if tag == "failure" else tag
                message = (node.get("message") or "").splitlines()[0][:100] if node.get("message") else ""
                break
        results.append(ClauseResult(clause, case.get("name", ""), outcome,
                                    float(case.get("time", 0) or 0), message))
    return results


def format_table(results: list[ClauseResult]) -> str:
    width = max((len(r.clause) for r in results), default=6)
    lines = [f"{'CLAUSE':<{width}}  {'RESULT':<7}  {'TIME':>7}  TEST"]
    for r in results:
        extra = f"  ({r.message})" if r.message and r.outcome != "passed" else ""
        lines.append(f"{r.clause:<{width}}  {r.outcome:<7}  {r.seconds:>6.2f}s  {r.test}{extra}")
    passed = sum(r.outcome == "passed" for r in results)
    lines.append(f"{passed} of {len(results)} passed")
    return "\n".join(lines)


@click.command()
@click.option("--target", type=click.Choice(["local", "kind", "cluster"]), default="local",
              show_default=True)
@click.option("--state", "state_path", default=None,
              help="State file of a running platform; without it (local) one is brought up.")
@click.option("--junit", "junit_path", type=click.Path(path_type=Path),
              default=Path("reports/conformance/junit.xml"), show_default=True)
@click.option("-k", "keyword", default=None, help="Only clauses/tests matching this expression.")
def conformance(target: str, state_path: str | None, junit_path: Path, keyword: str | None) -> None:
    """Run the target-agnostic conformance suite; exit 1 if any clause fails."""
    junit_path.parent.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "pytest", str(SUITE), "-q", "-p", "no:cacheprovider",
            f"--kl-target={target}", f"--junitxml={junit_path}", "-o", "junit_family=xunit1"]
    if state_path:
        argv.append(f"--kl-state={state_path}")
    if keyword:
        argv += ["-k", keyword]
    code = subprocess.call(argv, cwd=SUITE.parents[1])
    if junit_path.exists():
        click.echo(format_table(parse_junit(junit_path)))
        click.echo(f"JUnit: {junit_path}")
    sys.exit(code)
