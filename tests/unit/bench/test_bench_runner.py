"""The runner: kind registry, Recorder, the journal, partial saves on failure and Ctrl-C."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from knative_lambda.bench import runner as rn
from knative_lambda.bench.progress import Progress
from knative_lambda.bench.results import BenchmarkRecord, load
from knative_lambda.bench.suite import parse_suite
from knative_lambda.errors import ConfigError, PlatformError

SUITE = parse_suite("""\
benchmarks:
  - {name: first, kind: cold_start, params: {n: 3}}
  - {name: second, kind: build}
  - {name: third, kind: events}
""", "t.yaml")


def _progress() -> Progress:
    return Progress([b.name for b in SUITE.benchmarks], stream=io.StringIO())


def ok_kind(target: Any, params: dict, rec: rn.Recorder) -> None:
    for i in range(params.get("n", 2)):
        rec.sample(0.01 * (i + 1))
    rec.sample(0.5, "sub")
    rec.window(1.0)
    rec.point("instances", 1, t=0.0)
    rec.point("instances", 2, t=1.0)
    rec.phases(a=0.1, b=0.2)
    rec.note("target", target)


def failing_kind(target: Any, params: dict, rec: rn.Recorder) -> None:
    rec.sample(1.0)
    raise PlatformError("gateway went away")


def test_resolve_kinds_names_every_missing_kind() -> None:
    with pytest.raises(ConfigError) as info:
        rn.resolve_kinds(SUITE, {"cold_start": ok_kind}, modules={})
    assert "no implementation registered for kind(s) build, events" in str(info.value)


def test_resolve_kinds_imports_the_kind_module() -> None:
    registry: dict[str, rn.SuiteKind] = {}
    with pytest.raises(ConfigError):
        rn.resolve_kinds(SUITE, registry, modules={"build": "knative_lambda.bench.no_such_module"})


def test_run_suite_journal(tmp_path: Path) -> None:
    registry = {"cold_start": ok_kind, "build": failing_kind, "events": ok_kind}
    out = tmp_path / "r.json"
    record = rn.run_suite(SUITE, "T", out, {"target": "local"}, registry=registry,
                          progress=_progress())
    assert record.status == "failed"
    assert [(b.name, b.status) for b in record.benchmarks] == [
        ("first", "ok"), ("second", "failed"), ("third", "ok")]
    assert record.benchmarks[1].error == "gateway went away"
    saved = load(out)
    assert saved.to_dict() == record.to_dict()
    first = saved.benchmarks[0]
    assert first.measurements["first"].samples == pytest.approx([0.01, 0.02, 0.03])
    assert first.measurements["first.sub"].samples == [0.5]
    assert first.measurements["first"].summary.rps.value == pytest.approx(3.0)
    assert first.series["instances"].v == [1.0, 2.0]
    assert first.breakdown == [{"a": 0.1, "b": 0.2}]
    assert first.extra == {"target": "T"}
    assert first.started and first.ended and first.duration is not None
    assert saved.metadata["suite"] == "t"


def test_ctrl_c_keeps_partial_results(tmp_path: Path) -> None:
    def interrupted(target: Any, params: dict, rec: rn.Recorder) -> None:
        rec.sample(0.2)
        raise KeyboardInterrupt

    registry = {"cold_start": ok_kind, "build": interrupted, "events": ok_kind}
    out = tmp_path / "r.json"
    record = rn.run_suite(SUITE, None, out, {}, registry=registry, progress=_progress())
    assert record.status == "interrupted"
    data = json.loads(out.read_text())
    assert data["status"] == "interrupted"
    assert [(b["name"], b["status"]) for b in data["benchmarks"]] == [
        ("first", "ok"), ("second", "interrupted")]
    assert data["benchmarks"][1]["measurements"]["second"]["samples"] == [0.2]
    assert data["metadata"]["not_run"] == ["third"]


def test_file_is_saved_after_each_benchmark(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    seen: list[list[str]] = []

    def peek(target: Any, params: dict, rec: rn.Recorder) -> None:
        seen.append([b["name"] for b in json.loads(out.read_text())["benchmarks"]])

    rn.run_suite(SUITE, None, out, {}, registry={"cold_start": peek, "build": peek, "events": peek},
                 progress=_progress())
    assert seen == [[], ["first"], ["first", "second"]]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_recorder_timed_records_samples_and_errors() -> None:
    clock = Clock()
    rec = rn.Recorder(BenchmarkRecord("b", "build"), clock=clock, timeout_s=10)
    with rec.timed():
        clock.now += 0.25
    with rec.timed("x"):
        clock.now += 1
        raise ValueError("bad reply")
    rec.error("lost", count=3)
    m = rec.record.measurements
    assert m["b"].samples == [0.25] and m["b"].errors == 3
    assert m["b.x"].errors == 1 and m["b.x"].error_messages == ["ValueError: bad reply"]
    assert rec.time_left() == pytest.approx(8.75)
    clock.now += 100
    assert rec.time_left() == 0.0
    assert rn.Recorder(BenchmarkRecord("c", "build")).time_left() is None


def test_recorder_keeps_few_error_messages() -> None:
    rec = rn.Recorder(BenchmarkRecord("b", "build"))
    for i in range(20):
        rec.error(f"e{i}")
    m = rec.record.measurements["b"]
    assert m.errors == 20 and len(m.error_messages) == rn.MAX_ERROR_MESSAGES


def test_recorder_series_and_measurement_units() -> None:
    clock = Clock()
    rec = rn.Recorder(BenchmarkRecord("b", "burst"), clock=clock)
    clock.now += 2
    rec.point("instances", 3, unit="instances")
    rec.series("rps", [0, 1], [10, 12], unit="1/s")
    rec.measurement("peak", unit="instances").samples.append(4)
    assert rec.record.series["instances"].t == [2.0]
    assert rec.record.series["rps"].v == [10.0, 12.0]
    assert rec.record.measurements["b.peak"].unit == "instances"


def test_register_rejects_unknown_kinds() -> None:
    with pytest.raises(ValueError):
        rn.register("teleport")


def test_recorder_turns_non_finite_values_into_errors(tmp_path: Path) -> None:
    rec = rn.Recorder(BenchmarkRecord("b", "build"))
    rec.samples([0.1, float("nan"), float("inf")])
    rec.point("s", float("nan"), t=1.0)
    rec.series("r", [0.0, 1.0], [1.0, float("inf")])
    rec.window(float("nan"))
    rec.phases(a=0.1, b=float("nan"))
    m = rec.record.measurements["b"]
    assert m.samples == [0.1] and m.errors == 2 and m.duration is None
    assert rec.record.series["s"].t == [] and rec.record.series["r"].v == [1.0]
    assert rec.record.breakdown == [{"a": 0.1}]
    from knative_lambda.bench.results import RunRecord, save

    save(RunRecord(benchmarks=[rec.record]), tmp_path / "r.json")  # valid JSON, no NaN
