"""The gate: pooling, the table, JUnit XML and JSON (pure parts, files in tmp)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from knative_lambda.bench import gate as gt
from knative_lambda.bench.results import BenchmarkRecord, Measurement, RunRecord, save
from knative_lambda.bench.stats import Estimate

BUDGETS = """\
thresholds:
  fast:
    - p50 < 20ms
    - p50 < 5ms
    - p50 < 12.5ms
  absent:
    - p99 < 1s
"""
FAST = [0.010 + 0.0001 * i for i in range(50)]


def _run(samples: list[float], errors: int = 0, status: str = "ok") -> RunRecord:
    b = BenchmarkRecord("fast", "cold_start", status=status, error=None if status == "ok" else "boom")
    b.measurements["fast"] = Measurement("fast", list(samples), errors, 1.0)
    return RunRecord(status="ok", benchmarks=[b])


@pytest.fixture()
def files(tmp_path: Path) -> tuple[Path, Path]:
    res, bud = tmp_path / "r.json", tmp_path / "b.yaml"
    save(_run(FAST), res)
    bud.write_text(BUDGETS)
    return res, bud


def test_pool_concatenates_samples_and_sums_errors() -> None:
    pooled, failed = gt.pool([_run([1.0, 2.0], 1), _run([3.0], 2, status="failed")])
    m = pooled["fast"]
    assert m.samples == [1.0, 2.0, 3.0]
    assert (m.errors, m.duration) == (3, 2.0)
    assert failed == {"fast": "benchmark failed: boom"}


def test_run_gate_table_and_verdicts(files: tuple[Path, Path]) -> None:
    result = gt.run_gate([files[0]], files[1])
    assert [c.verdict.value for c in result.checks] == ["pass", "fail", "noisy", "missing"]
    assert not result.passed
    table = gt.format_table(result)
    assert "measured [95% interval]" in table
    assert re.search(r"12\.5 ms \[1\d\.?\d* ms \.\. 1\d\.?\d* ms\]", table), table
    assert "gate FAIL: 1 pass, 1 fail, 1 noisy" in table
    assert "no measurement 'absent'" in table


def test_junit_has_one_testcase_per_threshold(files: tuple[Path, Path]) -> None:
    result = gt.run_gate([files[0]], files[1])
    root = ET.fromstring(gt.to_junit(result))
    cases = root.findall("testcase")
    assert len(cases) == 4 == int(root.get("tests"))
    assert root.get("failures") == "2"  # the breach and the missing measurement
    by_name = {c.get("name"): c for c in cases}
    assert by_name["p50 < 5ms"].find("failure") is not None
    noisy = by_name["p50 < 12.5ms"]
    assert noisy.find("failure") is None
    assert "NOISY" in noisy.find("system-out").text
    props = {p.get("name"): p.get("value") for p in noisy.iter("property")}
    assert props["verdict"] == "noisy"
    assert by_name["p50 < 20ms"].find("failure") is None


def test_junit_skips_missing_when_budgets_say_so(tmp_path: Path, files: tuple[Path, Path]) -> None:
    bud = tmp_path / "skip.yaml"
    bud.write_text("on_missing: skip\n" + BUDGETS)
    result = gt.run_gate([files[0]], bud)
    root = ET.fromstring(gt.to_junit(result))
    assert root.get("skipped") == "1" and root.get("failures") == "1"


def test_json_and_outputs(tmp_path: Path, files: tuple[Path, Path]) -> None:
    result = gt.run_gate([files[0]], files[1])
    gt.write_outputs(result, tmp_path / "j" / "junit.xml", tmp_path / "j" / "gate.json")
    data = gt.to_json(result)
    assert data["passed"] is False
    assert data["counts"] == {"pass": 1, "fail": 1, "noisy": 1, "missing": 1}
    assert data["checks"][0]["measured"]["value"] == pytest.approx(0.01245)
    assert (tmp_path / "j" / "junit.xml").read_bytes().startswith(b"<?xml")


@pytest.mark.parametrize("value, kind, text", [
    (0.0004, "time", "400 us"), (0.0123, "time", "12.3 ms"), (2.5, "time", "2.5 s"),
    (0.005, "percent", "0.5 %"), (1234.5, "plain", "1234"), (0.8696, "plain", "0.8696"),
])
def test_fmt_value(value: float, kind: str, text: str) -> None:
    assert gt.fmt_value(value, kind) == text


def test_fmt_estimate() -> None:
    assert gt.fmt_estimate(None, "time") == "-"
    assert gt.fmt_estimate(Estimate.exact(0), "plain") == "0"
    assert gt.fmt_estimate(Estimate(1, 0.5, 2), "time") == "1 s [500 ms .. 2 s]"


def test_report_comparison_rows_with_samples_and_with_summaries_only() -> None:
    from knative_lambda.bench.report import comparison_rows
    from knative_lambda.bench.stats import summarize

    now = {"m": Measurement("m", [0.2 + 0.001 * i for i in range(40)])}
    base = {"m": Measurement("m", [0.1 + 0.001 * i for i in range(40)])}
    [row] = comparison_rows(now, base)
    assert row["change"] == "slower" and row["ratio_value"]["low"] > 1
    slim = {"m": Measurement("m", summary=summarize(base["m"].samples))}
    [row] = comparison_rows(now, slim)
    assert row["change"] == "slower"
    same = comparison_rows(now, {"m": Measurement("m", list(now["m"].samples))})
    assert same[0]["change"] == "no clear change"
    assert comparison_rows(now, {}) == []


def test_budgets_of_another_target_are_flagged(tmp_path: Path) -> None:
    rec = _run(FAST)
    rec.metadata["target"] = "local"
    save(rec, tmp_path / "r.json")
    (tmp_path / "b.yaml").write_text("target: kind\n" + BUDGETS)
    result = gt.run_gate([tmp_path / "r.json"], tmp_path / "b.yaml")
    assert result.warnings == ("warning: budgets are for target 'kind', results come from local",)
    assert gt.format_table(result).endswith(result.warnings[0])
    (tmp_path / "b.yaml").write_text("target: local\n" + BUDGETS)
    assert gt.run_gate([tmp_path / "r.json"], tmp_path / "b.yaml").warnings == ()


def test_format_measurements() -> None:
    text = gt.format_measurements({
        "fast": Measurement("fast", FAST, 1, 2.0),
        "peak": Measurement("peak", [3.0, 5.0], unit="instances"),
    })
    lines = text.splitlines()
    assert lines[0].split() == ["measurement", "n", "errors", "p50", "p95", "p99", "rps"]
    assert lines[1].split()[:4] == ["fast", "51", "1", "12.5"]
    assert lines[1].endswith("25")  # 50 successes in 2 s
    assert lines[2].split()[:4] == ["peak", "2", "0", "4"]
