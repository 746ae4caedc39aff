"""Stats against known distributions, hand-computed cases and degenerate inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from knative_lambda.bench import stats as st


def _contains(est: st.Estimate, value: float) -> bool:
    return est.low <= value <= est.high


def test_hand_computed_small_case() -> None:
    s = st.summarize([4.0, 1.0, 3.0, 2.0], errors=0, duration=2.0)
    assert (s.count, s.errors) == (4, 0)
    assert s.min == st.Estimate.exact(1.0)
    assert s.max == st.Estimate.exact(4.0)
    assert s.p50.value == pytest.approx(2.5)  # linear interpolation
    assert s.p90.value == pytest.approx(3.7)
    assert s.mean.value == pytest.approx(2.5)
    assert s.rps.value == pytest.approx(2.0)
    assert s.error_rate == st.Estimate(0.0, 0.0, s.error_rate.high)
    for est in (s.p50, s.p90, s.p95, s.p99, s.mean):
        assert est.low <= est.value <= est.high
        assert est.low >= 1.0 and est.high <= 4.0


@pytest.mark.parametrize("name, q, expected", [
    ("p50", 0.50, 0.50), ("p90", 0.90, 0.90), ("p95", 0.95, 0.95), ("p99", 0.99, 0.99),
])
def test_uniform_quantiles_are_inside_their_intervals(name: str, q: float, expected: float) -> None:
    x = np.random.default_rng(7).uniform(0, 1, 5000)
    est = getattr(st.summarize(x), name)
    assert _contains(est, expected)
    assert est.high - est.low < 0.05  # and the interval is tight for n=5000


@pytest.mark.parametrize("name, q", [("p50", 0.5), ("p90", 0.9), ("p95", 0.95), ("p99", 0.99)])
def test_exponential_quantiles_match_the_analytic_value(name: str, q: float) -> None:
    x = np.random.default_rng(11).exponential(1.0, 4000)
    est = getattr(st.summarize(x), name)
    truth = -math.log(1 - q)
    assert est.value == pytest.approx(truth, rel=0.1)
    # a 95 % interval may miss now and then; it must not miss by more than its width
    width = est.high - est.low
    assert est.low - width <= truth <= est.high + width


@pytest.mark.parametrize("name, q", [("p50", 0.5), ("p90", 0.9)])
def test_interval_coverage_is_about_95_percent(name: str, q: float) -> None:
    """Over many data sets the interval contains the true quantile most of the time."""
    truth = -math.log(1 - q)
    hits = 0
    trials = 60
    for seed in range(trials):
        x = np.random.default_rng(100 + seed).exponential(1.0, 300)
        hits += _contains(getattr(st.summarize(x, resamples=300), name), truth)
    assert hits / trials >= 0.85


def test_exponential_mean_interval_contains_the_true_mean() -> None:
    x = np.random.default_rng(3).exponential(0.02, 2000)
    assert _contains(st.summarize(x).mean, 0.02)


def test_same_samples_same_summary() -> None:
    x = np.random.default_rng(5).normal(10, 2, 300)
    assert st.summarize(x) == st.summarize(list(x))


def test_empty() -> None:
    s = st.summarize([])
    assert (s.count, s.errors) == (0, 0)
    assert s.p50 is None and s.min is None and s.mean is None
    assert s.error_rate is None and s.rps is None


def test_one_sample_has_a_point_interval() -> None:
    s = st.summarize([0.25], duration=1.0)
    for est in (s.min, s.p50, s.p99, s.max, s.mean):
        assert est == st.Estimate.exact(0.25)


def test_identical_samples_have_point_intervals() -> None:
    s = st.summarize([3.0] * 10)
    assert s.p95 == st.Estimate.exact(3.0)


def test_all_errors() -> None:
    s = st.summarize([], errors=5, duration=1.0)
    assert (s.count, s.errors) == (5, 5)
    assert s.p50 is None
    assert s.error_rate.value == 1.0 and s.error_rate.high == 1.0 and s.error_rate.low > 0.4
    assert s.rps.value == 0.0


@pytest.mark.parametrize("errors, count, low, high", [
    (0, 10, 0.0, 0.2775),   # Wilson: 0/10 is "somewhere below 28 %"
    (0, 1000, 0.0, 0.00383),
    (5, 100, 0.0215, 0.1118),
    (10, 10, 0.7225, 1.0),
])
def test_wilson_interval(errors: int, count: int, low: float, high: float) -> None:
    est = st.wilson_interval(errors, count)
    assert est.value == pytest.approx(errors / count)
    assert est.low == pytest.approx(low, abs=5e-4)
    assert est.high == pytest.approx(high, abs=5e-4)


def test_wilson_of_nothing_is_none() -> None:
    assert st.wilson_interval(0, 0) is None


@pytest.mark.parametrize("n, seconds, value", [(100, 10.0, 10.0), (0, 5.0, 0.0)])
def test_rate_interval(n: int, seconds: float, value: float) -> None:
    est = st.rate_interval(n, seconds)
    assert est.value == value
    assert est.low <= value <= est.high


@pytest.mark.parametrize("seconds", [None, 0.0, -1.0])
def test_rate_without_window(seconds) -> None:
    assert st.rate_interval(10, seconds) is None


def test_bad_samples_are_refused() -> None:
    with pytest.raises(ValueError):
        st.summarize([1.0, float("nan")])
    with pytest.raises(ValueError):
        st.summarize([1.0], errors=-1)


def test_large_inputs_bound_the_resamples() -> None:
    assert st._resample_count(100, 1000) == 1000
    assert st._resample_count(1_000_000, 1000) == st.MIN_RESAMPLES
    assert st._resample_count(50_000, 1000) == 400


def test_ratio_of_medians_of_scaled_samples() -> None:
    rng = np.random.default_rng(2)
    a = rng.exponential(1.0, 2000)
    b = rng.exponential(1.0, 2000) * 2.0
    r = st.ratio_of_medians(b, a)
    assert _contains(r, 2.0)
    assert r.low > 1.0  # clearly larger


def test_ratio_of_medians_same_distribution_contains_one() -> None:
    rng = np.random.default_rng(4)
    r = st.ratio_of_medians(rng.normal(5, 1, 500), rng.normal(5, 1, 500))
    assert _contains(r, 1.0)


@pytest.mark.parametrize("a, b", [([], [1.0]), ([1.0], []), ([1.0], [0.0, 0.0])])
def test_ratio_undefined(a, b) -> None:
    assert st.ratio_of_medians(a, b) is None


def test_difference_of_quantiles() -> None:
    rng = np.random.default_rng(9)
    d = st.difference_of_quantiles(rng.normal(3, 0.1, 800), rng.normal(1, 0.1, 800))
    assert _contains(d, 2.0)
    assert st.difference_of_quantiles([], [1.0]) is None


def test_ratio_and_difference_of_estimates() -> None:
    a, b = st.Estimate(10, 9, 11), st.Estimate(5, 4.5, 5.5)
    r = st.ratio_of_estimates(a, b)
    assert r.value == 2.0 and r.low < 2.0 < r.high
    d = st.difference_of_estimates(a, b)
    assert d.value == 5.0 and d.low < 5.0 < d.high
    assert st.ratio_of_estimates(st.Estimate(1, 0, 2), b) is None
    exact = st.ratio_of_estimates(st.Estimate.exact(4.0), st.Estimate.exact(2.0))
    assert exact == st.Estimate(2.0, 2.0, 2.0)


def test_summary_roundtrips_through_a_dict() -> None:
    s = st.summarize([0.1, 0.2, 0.3], errors=1, duration=1.5)
    assert st.Summary.from_dict(s.to_dict()) == s
    empty = st.summarize([])
    assert st.Summary.from_dict(empty.to_dict()) == empty


def test_summary_get() -> None:
    s = st.summarize([1.0, 2.0], errors=1)
    assert s.get("errors") == st.Estimate.exact(1.0)
    assert s.get("count") == st.Estimate.exact(3.0)
    assert s.get("p50") is s.p50
    with pytest.raises(KeyError):
        s.get("p42")


@pytest.mark.parametrize("q", [0.5, 0.9, 0.95, 0.99])
def test_order_statistic_bootstrap_matches_naive_resampling(q: float) -> None:
    """The fast quantile bootstrap draws from the same distribution as resampling arrays."""
    x = np.sort(np.random.default_rng(8).lognormal(0, 0.5, 40))
    fast = st._bootstrap_quantile(x, q, np.random.default_rng(1), 20000)
    rng = np.random.default_rng(2)
    naive = np.quantile(x[rng.integers(0, len(x), size=(20000, len(x)))], q, axis=1)
    for p in (0.025, 0.25, 0.5, 0.75, 0.975):
        assert np.quantile(fast, p) == pytest.approx(np.quantile(naive, p), rel=0.03)
