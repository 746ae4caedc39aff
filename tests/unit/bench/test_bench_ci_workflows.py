"""The CI workflows in ci/: valid YAML that run suite, gate and upload what they should."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

CI = Path(__file__).resolve().parents[3] / "ci"


def _workflow(name: str) -> dict:
    data = yaml.safe_load((CI / name).read_text())
    assert data["name"] and data["jobs"]
    return data


def _runs(data: dict) -> str:
    return "\n".join(s.get("run", "") for job in data["jobs"].values() for s in job["steps"])


def _uses(data: dict) -> list[str]:
    return [s["uses"] for job in data["jobs"].values() for s in job["steps"] if "uses" in s]


def test_local_workflow_runs_make_bench_and_uploads() -> None:
    data = _workflow("bench-local.yml")
    assert "make bench" in _runs(data)
    assert any(u.startswith("actions/upload-artifact@") for u in _uses(data))
    upload = next(s for j in data["jobs"].values() for s in j["steps"]
                  if s.get("uses", "").startswith("actions/upload-artifact@"))
    assert upload["if"] == "always()" and upload["with"]["path"] == "reports/latest/"


def test_kind_workflow_brings_up_kind_and_gates_on_kind_budgets() -> None:
    data = _workflow("bench-kind.yml")
    runs = _runs(data)
    assert "kl up --target kind" in runs
    assert 'kl bench "$SUITE" --target kind' in runs
    assert "--budgets benchmarks/budgets/kind.yaml" in runs and "--junit" in runs
    assert "kl down" in runs
    assert "default" in data["env"]["SUITE"]


@pytest.mark.parametrize("name", ["bench-local.yml", "bench-kind.yml"])
def test_workflows_are_bounded(name: str) -> None:
    data = _workflow(name)
    for job in data["jobs"].values():
        assert 0 < job["timeout-minutes"] <= 120
