"""A short real bench run on the local target: valid results, a passing and a failing
gate, and a report that renders in Chromium."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from knative_lambda.bench.results import load

from .test_bench_report_render import _run_chromium

pytestmark = pytest.mark.slow

PASSING = """version: 1
target: local
thresholds:
  cold_start: [errors == 0, p50 < 30s]
  build.cached: [errors == 0]
  throughput.gateway: [error_rate < 5%, rps > 1]
  burst: [errors == 0]
"""
FAILING = """version: 1
target: local
thresholds:
  cold_start: [p50 < 0.001ms]
"""


def kl(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "knative_lambda", *args], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, "PYTHONUNBUFFERED": "1"})


@pytest.fixture(scope="module")
def results(kl_target: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    state = getattr(kl_target, "state_path", None)
    if state is None:
        pytest.skip("the short bench run needs a local target with a state file")
    out = tmp_path_factory.mktemp("bench") / "results.json"
    run = kl("bench", "quick", "--target", "local", "--state", str(state), "--out", str(out))
    assert run.returncode == 0, run.stderr[-3000:]
    return out


def test_results_are_valid_json_with_every_benchmark(results: Path) -> None:
    record = load(results)
    assert record.status == "ok"
    names = [b.name for b in record.benchmarks]
    assert names == ["cold_start", "build", "throughput", "events", "burst", "scale_to_zero"]
    assert all(b.status == "ok" for b in record.benchmarks), [(b.name, b.error) for b in record.benchmarks]
    cold = record.measurements()["cold_start"]
    assert cold.samples and cold.errors == 0
    assert record.metadata["target"] == "local"
    raw = json.loads(results.read_text())
    assert raw["benchmarks"][0]["measurements"]["cold_start"]["summary"]["p50"]["value"] > 0


def test_gate_passes_and_fails_on_the_same_results(results: Path, tmp_path: Path) -> None:
    (tmp_path / "pass.yaml").write_text(PASSING)
    (tmp_path / "fail.yaml").write_text(FAILING)
    passed = kl("gate", str(results), "--budgets", str(tmp_path / "pass.yaml"),
                "--junit", str(tmp_path / "pass.xml"))
    assert passed.returncode == 0, passed.stdout + passed.stderr
    failed = kl("gate", str(results), "--budgets", str(tmp_path / "fail.yaml"),
                "--junit", str(tmp_path / "fail.xml"))
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "FAIL" in failed.stdout and "<failure" in (tmp_path / "fail.xml").read_text()


def test_report_of_a_real_run_renders(results: Path, tmp_path: Path) -> None:
    made = kl("report", str(results), "--out", str(tmp_path / "report"))
    assert made.returncode == 0, made.stderr
    page = tmp_path / "report" / "index.html"
    dom = _run_chromium(tmp_path, "--dump-dom", page.as_uri()).stdout
    figures = re.findall(r'<figure class="plot" id="plot-([^"]+)"><svg', dom)
    assert "breakdown-cold_start" in figures and len(figures) >= 3, figures
    assert "<path" in dom
