"""Budget parsing and verdicts: pure and table-driven, including the noisy case."""

from __future__ import annotations

from pathlib import Path

import pytest

from knative_lambda.bench import budgets as bd
from knative_lambda.bench.results import Measurement
from knative_lambda.bench.stats import Estimate
from knative_lambda.errors import ConfigError

REPO = Path(__file__).resolve().parents[3]


# -- expressions ------------------------------------------------------------

@pytest.mark.parametrize("expr, func, stats, op, value, kind", [
    ("p95 < 5s", "stat", ("p95",), "<", 5.0, "time"),
    ("p50 <= 20ms", "stat", ("p50",), "<=", 0.020, "time"),
    ("p(99) <= 60ms", "stat", ("p99",), "<=", 0.060, "time"),
    ("max < 250us", "stat", ("max",), "<", 250e-6, "time"),
    ("mean < 1.5min", "stat", ("mean",), "<", 90.0, "time"),
    ("error_rate < 1%", "stat", ("error_rate",), "<", 0.01, "percent"),
    ("error_rate < 0.01", "stat", ("error_rate",), "<", 0.01, "plain"),
    ("success_rate > 99%", "stat", ("success_rate",), ">", 0.99, "percent"),
    ("rps > 100", "stat", ("rps",), ">", 100.0, "plain"),
    ("throughput >= 2_000", "stat", ("rps",), ">=", 2000.0, "plain"),
    ("errors == 0", "stat", ("errors",), "==", 0.0, "plain"),
    ("count >= 1000", "stat", ("count",), ">=", 1000.0, "plain"),
    ("  p95   <   5s  ", "stat", ("p95",), "<", 5.0, "time"),
    ("ratio(gateway.rps / direct.rps) >= 0.8", "ratio", ("rps", "rps"), ">=", 0.8, "plain"),
    ("ratio(gateway.rps/direct.rps) >= 80%", "ratio", ("rps", "rps"), ">=", 0.8, "percent"),
    ("diff(gateway.p50 - direct.p50) <= 0.5ms", "diff", ("p50", "p50"), "<=", 0.0005, "time"),
])
def test_parse_threshold(expr, func, stats, op, value, kind) -> None:
    th = bd.parse_threshold(expr, "m", "f:1")
    assert th.func == func
    assert tuple(r.stat for r in th.refs) == stats
    assert th.op == op
    assert th.value == pytest.approx(value)
    assert th.unit_kind == kind


def test_ratio_refs_keep_their_ids() -> None:
    th = bd.parse_threshold("ratio(throughput.gateway.rps / direct.rps) >= 0.8", "k", "f:1")
    assert th.refs == (bd.Ref("throughput.gateway", "rps"), bd.Ref("direct", "rps"))


@pytest.mark.parametrize("expr, message", [
    ("p95 5s", "cannot parse threshold"),
    ("p95 < fast", "cannot parse threshold"),
    ("p42 < 5s", "unknown statistic 'p42'"),
    ("rps > 100ms", "rps is not a time"),
    ("p95 < 5%", "% only applies"),
    ("error_rate < 5", "fraction 0..1"),
    ("ratio(a.rps - b.rps) > 1", "ratio(...) takes 'a / b'"),
    ("diff(a.p50 / b.p50) < 1ms", "diff(...) takes 'a - b'"),
    ("ratio(a.rps / b.rps) > 1s", "a ratio has no time unit"),
    ("diff(a.p50 - b.p95) < 1ms", "diff of different statistics"),
    ("other.p95 < 5s", "under key 'other'"),
    ("p95 << 5s", "cannot parse threshold"),
])
def test_bad_threshold_names_the_problem(expr: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        bd.parse_threshold(expr, "cold_start", "budgets.yaml:7")
    assert str(info.value).startswith("budgets.yaml:7: ")
    assert message in str(info.value)


# -- files ------------------------------------------------------------------

GOOD = """\
version: 1
target: local
thresholds:
  cold_start:
    - p50 <= 20ms
    - errors == 0
  throughput:
    - ratio(gateway.rps / direct.rps) >= 0.8
  single: p95 < 1s
"""


def test_parse_file() -> None:
    b = bd.parse_budgets(GOOD, "local.yaml")
    assert b.target == "local" and b.on_missing == "fail"
    assert [(t.key, t.expr) for t in b.thresholds] == [
        ("cold_start", "p50 <= 20ms"), ("cold_start", "errors == 0"),
        ("throughput", "ratio(gateway.rps / direct.rps) >= 0.8"), ("single", "p95 < 1s"),
    ]
    assert [t.source for t in b.thresholds] == [
        "local.yaml:5", "local.yaml:6", "local.yaml:8", "local.yaml:9",
    ]


@pytest.mark.parametrize("text, message", [
    ("thresholds: [\n", "local.yaml:2: not valid YAML"),
    ("- a\n- b\n", "a mapping with 'thresholds:'"),
    ("version: 1\n", "missing 'thresholds:'"),
    ("version: 2\nthresholds: {a: p50 < 1s}\n", "local.yaml:1: budget version '2' not supported"),
    ("thresholds: {a: p50 < 1s}\nbogus: 1\n", "local.yaml:2: unknown key 'bogus'"),
    ("on_missing: maybe\nthresholds: {a: p50 < 1s}\n", "on_missing is 'fail' or 'skip'"),
    ("thresholds: [p50 < 1s]\n", "local.yaml:1: 'thresholds' must map"),
    ("thresholds:\n  a:\n    - p50 < 1s\n  a:\n    - p95 < 1s\n", "local.yaml:4: measurement 'a' listed twice"),
    ("thresholds:\n  a:\n    - {p50: 1}\n", "local.yaml:3: 'a': each threshold is a string"),
    ("thresholds:\n  a:\n    - p50 < 1s\n    - p95 < 1 parsec\n", "local.yaml:4: cannot parse threshold"),
    ("thresholds: {}\n", "no thresholds"),
    ("thresholds: {a: p50 < 1s}\nthresholds: {b: p50 < 1s}\n", "local.yaml:2: duplicate key"),
])
def test_bad_file_names_file_line_and_problem(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        bd.parse_budgets(text, "local.yaml")
    assert message in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read budget file"):
        bd.load_budgets(tmp_path / "nope.yaml")


@pytest.mark.parametrize("name", ["local", "kind", "cluster"])
def test_shipped_budget_files_parse(name: str) -> None:
    b = bd.load_budgets(REPO / "benchmarks" / "budgets" / f"{name}.yaml")
    assert b.target == name
    assert b.thresholds


# -- verdicts ---------------------------------------------------------------

@pytest.mark.parametrize("est, op, value, expected", [
    # whole interval on the right side -> PASS
    (Estimate(10, 9, 11), "<", 12, bd.Verdict.PASS),
    (Estimate(10, 9, 11), "<=", 11, bd.Verdict.PASS),
    (Estimate(10, 9, 11), ">", 8, bd.Verdict.PASS),
    (Estimate(10, 9, 11), ">=", 9, bd.Verdict.PASS),
    # whole interval on the wrong side -> FAIL
    (Estimate(10, 9, 11), "<", 9, bd.Verdict.FAIL),
    (Estimate(10, 9, 11), "<", 8, bd.Verdict.FAIL),
    (Estimate(10, 9, 11), ">", 11, bd.Verdict.FAIL),
    (Estimate(10, 9, 11), ">=", 11.5, bd.Verdict.FAIL),
    # interval straddles the threshold -> NOISY, whichever side the point is on
    (Estimate(10, 9, 11), "<", 10.5, bd.Verdict.NOISY),
    (Estimate(10, 9, 11), "<", 9.5, bd.Verdict.NOISY),
    (Estimate(10, 9, 11), ">=", 10, bd.Verdict.NOISY),
    (Estimate(10, 9, 11), "<", 11, bd.Verdict.NOISY),  # the high end touches it
    # exact values
    (Estimate.exact(0), "==", 0, bd.Verdict.PASS),
    (Estimate.exact(1), "==", 0, bd.Verdict.FAIL),
    (Estimate(0.5, 0, 1), "==", 0, bd.Verdict.NOISY),
    (Estimate(5, 4, 6), "==", 7, bd.Verdict.FAIL),
    (Estimate.exact(5), "<", 5, bd.Verdict.FAIL),
    (Estimate.exact(5), "<=", 5, bd.Verdict.PASS),
])
def test_verdict(est: Estimate, op: str, value: float, expected: bd.Verdict) -> None:
    assert bd.verdict(est, op, value) is expected


# -- evaluation -------------------------------------------------------------

def _budgets(*lines: str, on_missing: str = "fail") -> bd.Budgets:
    body = "".join(f"  {ln}\n" for ln in lines)
    return bd.parse_budgets(f"on_missing: {on_missing}\nthresholds:\n{body}", "b.yaml")


FAST = [0.010 + 0.0001 * i for i in range(50)]  # 10..15 ms
SLOW = [0.100 + 0.001 * i for i in range(50)]  # 100..149 ms


def _m(mid: str, samples: list[float], errors: int = 0, duration: float | None = None,
       unit: str = "s") -> Measurement:
    return Measurement(mid, list(samples), errors, duration, unit)


def _verdicts(checks: list[bd.Check]) -> list[str]:
    return [c.verdict.value for c in checks]


def test_evaluate_pass_fail_noisy() -> None:
    b = _budgets("fast: [p50 < 20ms, p50 < 5ms, p50 < 12.5ms]")
    checks = bd.evaluate(b, {"fast": _m("fast", FAST)})
    assert _verdicts(checks) == ["pass", "fail", "noisy"]
    assert checks[0].measured.value == pytest.approx(0.01245)
    assert not bd.gate_passes(checks)
    assert bd.gate_passes([checks[0], checks[2]])  # NOISY does not fail the gate
    assert checks[1].breach and not checks[2].breach


def test_missing_measurement_fails_unless_skipped() -> None:
    checks = bd.evaluate(_budgets("absent: [p50 < 1s]"), {})
    assert _verdicts(checks) == ["missing"]
    assert "no measurement 'absent'" in checks[0].detail
    assert not bd.gate_passes(checks, "fail")
    assert bd.gate_passes(checks, "skip")


def test_all_errors_has_no_latency_but_an_error_rate() -> None:
    b = _budgets("m: [p50 < 1s, error_rate < 1%, errors == 0, success_rate > 99%]")
    checks = bd.evaluate(b, {"m": _m("m", [], errors=20)})
    assert _verdicts(checks) == ["missing", "fail", "fail", "fail"]
    assert "no successful samples" in checks[0].detail


def test_failed_benchmark_fails_its_thresholds() -> None:
    b = _budgets("m: [p50 < 1s]", "gone.x: [p50 < 1s]")
    checks = bd.evaluate(b, {"m": _m("m", FAST)}, failed={"m": "benchmark failed: boom",
                                                        "gone": "benchmark failed: early"})
    assert _verdicts(checks) == ["fail", "fail"]
    assert "boom" in checks[0].detail and "early" in checks[1].detail


def test_ratio_with_raw_samples_and_relative_refs() -> None:
    ms = {"t.gateway": _m("t.gateway", SLOW), "t.direct": _m("t.direct", FAST)}
    b = _budgets("t: ['ratio(gateway.p50 / direct.p50) > 5', 'ratio(gateway.p50 / direct.p50) < 5']")
    checks = bd.evaluate(b, ms)
    assert _verdicts(checks) == ["pass", "fail"]
    assert checks[0].measured.value == pytest.approx(0.1245 / 0.01245)


def test_ratio_of_rates_uses_the_intervals() -> None:
    ms = {"t.gateway": _m("t.gateway", FAST * 20, duration=10.0),  # 100/s
          "t.direct": _m("t.direct", FAST * 24, duration=10.0)}  # 120/s
    checks = bd.evaluate(_budgets("t: ['ratio(gateway.rps / direct.rps) >= 0.8']"), ms)
    assert checks[0].measured.value == pytest.approx(100 / 120)
    assert checks[0].verdict is bd.Verdict.NOISY  # 0.83 with ~10 % noise: cannot say
    checks = bd.evaluate(_budgets("t: ['ratio(gateway.rps / direct.rps) >= 0.5']"), ms)
    assert checks[0].verdict is bd.Verdict.PASS


def test_missing_relative_ref_is_named_in_full() -> None:
    checks = bd.evaluate(_budgets("t: ['ratio(gateway.rps / direct.rps) >= 0.8']"), {})
    assert checks[0].detail == "no measurement 't.gateway' in the results"


def test_absolute_ref_when_no_relative_one() -> None:
    ms = {"a": _m("a", SLOW), "b": _m("b", FAST)}
    checks = bd.evaluate(_budgets("t: ['ratio(a.p50 / b.p50) > 5']"), ms)
    assert _verdicts(checks) == ["pass"]


def test_diff_of_medians() -> None:
    ms = {"t.a": _m("t.a", SLOW), "t.b": _m("t.b", FAST)}
    checks = bd.evaluate(_budgets("t: ['diff(a.p50 - b.p50) <= 0.5ms', 'diff(a.p50 - b.p50) <= 1s']"), ms)
    assert _verdicts(checks) == ["fail", "pass"]


def test_ratio_without_samples_or_rates_is_missing() -> None:
    ms = {"t.a": _m("t.a", FAST), "t.b": _m("t.b", FAST)}  # no window: no rps
    checks = bd.evaluate(_budgets("t: ['ratio(a.rps / b.rps) >= 0.8']"), ms)
    assert _verdicts(checks) == ["missing"]


def test_time_threshold_needs_a_unit_for_seconds() -> None:
    with pytest.raises(ConfigError, match=r"b.yaml:3: 'p50 < 5': m is measured in seconds"):
        bd.evaluate(_budgets("m: [p50 < 5]"), {"m": _m("m", FAST)})


def test_time_unit_on_a_count_measurement_is_refused() -> None:
    with pytest.raises(ConfigError, match="measured in instances, not time"):
        bd.evaluate(_budgets("m: [max < 5s]"), {"m": _m("m", [1.0, 3.0], unit="instances")})
    checks = bd.evaluate(_budgets("m: [max >= 3]"), {"m": _m("m", [1.0, 3.0], unit="instances")})
    assert _verdicts(checks) == ["pass"]


def test_stored_summary_is_used_without_samples() -> None:
    from knative_lambda.bench.stats import summarize

    m = _m("m", [])
    m.summary = summarize(FAST)
    assert _verdicts(bd.evaluate(_budgets("m: [p50 < 20ms]"), {"m": m})) == ["pass"]


def test_success_rate_flips_the_error_interval() -> None:
    checks = bd.evaluate(_budgets("m: ['success_rate > 99%']"), {"m": _m("m", FAST * 20, errors=0)})
    assert checks[0].measured.value == 1.0
    assert checks[0].measured.low < 1.0
    assert checks[0].verdict is bd.Verdict.PASS
