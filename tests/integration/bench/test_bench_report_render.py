"""The HTML report, rendered from synthetic results and opened in headless Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from knative_lambda.bench.gate import run_gate, to_json
from knative_lambda.bench.report import write_report
from knative_lambda.bench.results import save
from knative_lambda.bench.synthetic import synthetic_run

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("report")
    current, base = d / "current.json", d / "baseline.json"
    save(synthetic_run(2, slowdown=1.3), current)
    save(synthetic_run(1), base)
    gate = to_json(run_gate([current], REPO / "benchmarks" / "budgets" / "local.yaml"))
    return write_report([current], d / "out", baseline=base, gate=gate)


def test_report_is_self_contained(report: Path) -> None:
    doc = report.read_text()
    assert doc.startswith("<!DOCTYPE html>")
    assert not re.search(r"https?://", doc), "the report must not reference any URL"
    assert "<script" not in doc and "<link" not in doc


def test_report_has_every_section_and_plot(report: Path) -> None:
    doc = report.read_text()
    for section in ("gate", "benchmarks", "summary", "comparison", "plots", "chaos", "metadata"):
        assert f'id="{section}"' in doc
    for plot in ("cdf-cold_start", "breakdown-cold_start", "cdf-throughput",
                 "instances-burst", "throughput-throughput"):
        assert f'id="plot-{plot}"' in doc
    assert doc.count("<svg") >= 8
    assert "broker-restart" in doc and "events lost" in doc
    assert "gate PASS" in doc
    assert (report.parent / "summary.json").is_file()


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("chromium is not installed (apt-get install -y chromium)")


def _run_chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}"]
    return subprocess.run([_chromium(), *flags, *args], capture_output=True, text=True, timeout=90)


def test_chromium_renders_the_plots(report: Path, tmp_path: Path) -> None:
    out = _run_chromium(tmp_path, "--dump-dom", report.as_uri())
    dom = out.stdout
    assert out.returncode == 0, out.stderr[-500:]
    figures = re.findall(r'<figure class="plot" id="plot-([^"]+)"><svg', dom)
    assert len(figures) >= 8, figures
    # the SVG content is in the DOM as elements, with its text (titles) as text
    assert "cold_start: latency CDF" in dom
    assert "<path" in dom


def test_chromium_screenshot(report: Path, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    out = _run_chromium(tmp_path, "--window-size=1200,3000", f"--screenshot={shot}", report.as_uri())
    assert out.returncode == 0, out.stderr[-500:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 50_000  # a page with plots, not a blank one
