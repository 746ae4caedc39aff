"""The result record: round trip, schema versions, bad files, metadata."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from knative_lambda.bench import results as rs
from knative_lambda.bench.synthetic import synthetic_run
from knative_lambda.errors import ConfigError


def test_roundtrip_keeps_everything(tmp_path: Path) -> None:
    record = synthetic_run(1)
    path = tmp_path / "sub" / "r.json"
    rs.save(record, path)
    loaded = rs.load(path)
    assert loaded.to_dict() == json.loads(path.read_text())
    assert [b.name for b in loaded.benchmarks] == [b.name for b in record.benchmarks]
    m = loaded.measurements()["throughput.gateway"]
    assert m.samples == record.measurements()["throughput.gateway"].samples
    assert loaded.benchmarks[0].breakdown == record.benchmarks[0].breakdown
    assert loaded.chaos == record.chaos
    assert not list(tmp_path.glob("sub/.*tmp*"))  # the atomic save leaves no temp file


def test_file_has_schema_summary_and_journal_fields(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    rs.save(synthetic_run(1), path)
    data = json.loads(path.read_text())
    assert data["schema"] == rs.SCHEMA and data["schema_version"] == rs.SCHEMA_VERSION
    bench = data["benchmarks"][0]
    assert set(bench) >= {"name", "kind", "status", "started", "ended", "duration", "error",
                          "measurements", "series", "breakdown"}
    summary = bench["measurements"]["cold_start"]["summary"]
    assert set(summary) == {"count", "errors", "min", "p50", "p90", "p95", "p99", "max", "mean",
                            "error_rate", "rps"}
    assert set(summary["p50"]) == {"value", "low", "high"}
    meta = data["metadata"]
    assert set(meta) >= {"target", "python", "packages", "machine", "git_revision", "started",
                         "command"}
    assert meta["machine"]["cpu_count"] >= 1


@pytest.mark.parametrize("content, message", [
    ("{not json", "not valid JSON"),
    ("[]", "not a benchmark result file"),
    ('{"schema": "other"}', "not a benchmark result file"),
    ('{"schema": "knative-lambda/bench-result", "schema_version": 99}', "newer than this kl"),
    ('{"schema": "knative-lambda/bench-result", "schema_version": 1, "benchmarks": [{}]}',
     "malformed result file"),
])
def test_bad_files_are_config_errors(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "r.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message) as info:
        rs.load(path)
    assert str(path) in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read result file"):
        rs.load(tmp_path / "nope.json")


def test_measurement_without_samples_keeps_its_stored_summary() -> None:
    from knative_lambda.bench.stats import summarize

    m = rs.Measurement("x", summary=summarize([1.0, 2.0]))
    again = rs.Measurement.from_dict(m.to_dict())
    assert again.summarize() == summarize([1.0, 2.0])


def test_metadata_has_versions() -> None:
    meta = rs.collect_metadata("local", ["kl", "bench"])
    assert meta["command"] == ["kl", "bench"]
    assert "numpy" in meta["packages"]


def test_save_never_fails_on_odd_notes(tmp_path: Path) -> None:
    record = rs.RunRecord(benchmarks=[rs.BenchmarkRecord(
        "b", "build", extra={"obj": object(), "nan": float("nan"), "nested": {"x": [float("inf")]}},
    )], chaos=[{"time_to_recover": float("nan")}])
    rs.save(record, tmp_path / "r.json")
    loaded = rs.load(tmp_path / "r.json")
    extra = loaded.benchmarks[0].extra
    assert extra["nan"] is None and extra["nested"] == {"x": [None]}
    assert extra["obj"].startswith("<object object")
    assert loaded.chaos == [{"time_to_recover": None}]
