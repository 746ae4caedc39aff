"""Summaries of benchmark samples with confidence intervals. Pure: numbers in, numbers out.

Why intervals: the gate must not flip on a noisy 2-core CI box. Every estimate
carries a 95 % interval and the budget verdict looks at the whole interval.

- Quantiles and the mean: percentile bootstrap with a fixed seed (the same
  samples always give the same interval) and a bounded amount of work
  (``resamples`` is lowered for very large sample sets, see ``_resample_count``).
  Quantiles use numpy's default (linear interpolation, "type 7"). The bootstrap
  distribution of a quantile is drawn through order statistics instead of
  resampling whole arrays (same distribution, O(resamples) instead of
  O(resamples x n)): see ``_bootstrap_quantile``.
- min and max: exact observations, not estimates, so their interval is the point.
- Error rate: the Wilson score interval. A bootstrap of 0 errors out of 10
  would claim [0, 0] ("certainly below 1 %"); Wilson says [0, 28 %], which is
  what 10 tries can actually tell.
- Throughput: successful samples per second of the measurement window, with a
  Poisson interval on the count (normal approximation, ``n +- z*sqrt(n)``).

Undefined values (a quantile of no samples) are ``None``, never NaN, so that
summaries round-trip through JSON.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

DEFAULT_SEED = 20240601
DEFAULT_RESAMPLES = 1000
CONFIDENCE = 0.95
# Upper bound of resampled values drawn per summary (resamples x n): ~1 s of work.
MAX_BOOTSTRAP_DRAWS = 20_000_000
MIN_RESAMPLES = 200
_CHUNK_DRAWS = 2_000_000  # memory bound per numpy call (~16 MB of float64)

QUANTILES: dict[str, float] = {"p50": 0.50, "p90": 0.90, "p95": 0.95, "p99": 0.99}
# Every statistic a summary holds, in display order.
STATS: tuple[str, ...] = (
    "count", "errors", "min", "p50", "p90", "p95", "p99", "max", "mean", "error_rate", "rps",
)


@dataclass(frozen=True)
class Estimate:
    """A point estimate and its confidence interval (low <= value <= high)."""

    value: float
    low: float
    high: float

    @classmethod
    def exact(cls, value: float) -> Estimate:
        return cls(value, value, value)

    def to_dict(self) -> dict[str, float]:
        return {"value": self.value, "low": self.low, "high": self.high}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Estimate:
        return cls(float(data["value"]), float(data["low"]), float(data["high"]))


@dataclass(frozen=True)
class Summary:
    count: int  # attempts: successful samples + errors
    errors: int
    min: Estimate | None
    p50: Estimate | None
    p90: Estimate | None
    p95: Estimate | None
    p99: Estimate | None
    max: Estimate | None
    mean: Estimate | None
    error_rate: Estimate | None  # None when nothing was attempted
    rps: Estimate | None  # successful samples per second; None without a window

    def get(self, stat: str) -> Estimate | None:
        """The estimate of ``stat`` (one of STATS); counts are exact estimates."""
        if stat in ("count", "errors"):
            return Estimate.exact(float(getattr(self, stat)))
        if stat not in STATS:
            raise KeyError(stat)
        return getattr(self, stat)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"count": self.count, "errors": self.errors}
        for name in STATS[2:]:
            est = getattr(self, name)
            out[name] = est.to_dict() if est is not None else None
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Summary:
        fields: dict[str, Any] = {"count": int(data["count"]), "errors": int(data["errors"])}
        for name in STATS[2:]:
            raw = data.get(name)
            fields[name] = Estimate.from_dict(raw) if raw is not None else None
        return cls(**fields)


def _resample_count(n: int, resamples: int) -> int:
    """Bound the bootstrap's work: fewer resamples for huge sample sets, never below 200."""
    if n * resamples <= MAX_BOOTSTRAP_DRAWS:
        return resamples
    return max(MIN_RESAMPLES, MAX_BOOTSTRAP_DRAWS // n)


def _bootstrap_quantile(xs: np.ndarray, q: float, rng: np.random.Generator, b: int) -> np.ndarray:
    """``b`` bootstrap replicates of the q-quantile of the sorted sample ``xs``.

    A resample is ``xs[floor(U_i * n)]`` for n uniforms U_i, and floor(U*n) is
    monotone, so its k-th order statistic is ``xs[floor(U_(k) * n)]`` where the
    k-th uniform order statistic U_(k) ~ Beta(k, n+1-k); the next one is
    U_(k) + (1 - U_(k)) * Beta(1, n-k). Linear interpolation needs just those two.
    """
    n = len(xs)
    h = (n - 1) * q
    lo = int(math.floor(h))
    frac = h - lo
    k = lo + 1  # 1-based order statistic
    u_k = rng.beta(k, n + 1 - k, size=b)
    i_lo = np.minimum((u_k * n).astype(np.int64), n - 1)
    if frac == 0 or k >= n:
        return xs[i_lo]
    u_next = u_k + (1.0 - u_k) * rng.beta(1, n - k, size=b)
    i_hi = np.minimum((u_next * n).astype(np.int64), n - 1)
    return xs[i_lo] + frac * (xs[i_hi] - xs[i_lo])


def _bootstrap(
    x: np.ndarray, stats: list[float | str], *, seed: int, resamples: int
) -> np.ndarray:
    """Bootstrap distribution of several statistics; returns shape (len(stats), resamples).

    A stat is a quantile in [0, 1] or "mean". Means resample in chunks to bound memory.
    """
    n = len(x)
    b = _resample_count(n, resamples)
    rng = np.random.default_rng(seed)
    xs = np.sort(x)
    out = np.empty((len(stats), b))
    for si, s in enumerate(stats):
        if s != "mean":
            out[si] = _bootstrap_quantile(xs, float(s), rng, b)
    if "mean" in stats:
        si = stats.index("mean")
        chunk = max(1, _CHUNK_DRAWS // n)
        for start in range(0, b, chunk):
            rows = min(chunk, b - start)
            out[si, start : start + rows] = x[rng.integers(0, n, size=(rows, n))].mean(axis=1)
    return out


def _percentile_interval(dist: np.ndarray, point: float) -> Estimate:
    alpha = (1.0 - CONFIDENCE) / 2.0
    low, high = np.quantile(dist, [alpha, 1.0 - alpha])
    # The percentile interval can miss the point by float rounding; keep low <= value <= high.
    return Estimate(float(point), float(min(low, point)), float(max(high, point)))


def wilson_interval(errors: int, count: int, z: float = 1.959964) -> Estimate | None:
    """Error rate ``errors/count`` with the Wilson score interval; None when count is 0."""
    if count <= 0:
        return None
    p = errors / count
    denom = 1.0 + z * z / count
    centre = (p + z * z / (2 * count)) / denom
    half = z * math.sqrt(p * (1 - p) / count + z * z / (4 * count * count)) / denom
    low = 0.0 if errors == 0 else max(0.0, centre - half)
    high = 1.0 if errors == count else min(1.0, centre + half)
    return Estimate(p, min(low, p), max(high, p))


def rate_interval(n: int, seconds: float | None, z: float = 1.959964) -> Estimate | None:
    """Events per second with a Poisson interval on the count; None without a window."""
    if seconds is None or seconds <= 0:
        return None
    spread = z * math.sqrt(n)
    return Estimate(n / seconds, max(0.0, n - spread) / seconds, (n + spread) / seconds)


def summarize(
    samples: Sequence[float],
    errors: int = 0,
    duration: float | None = None,
    *,
    seed: int = DEFAULT_SEED,
    resamples: int = DEFAULT_RESAMPLES,
) -> Summary:
    """Summary of successful ``samples`` plus ``errors`` failed attempts.

    ``duration`` is the measurement window in seconds, for the throughput (rps).
    """
    if errors < 0:
        raise ValueError("errors must be >= 0")
    x = np.asarray(samples, dtype=float)
    if x.ndim != 1 or not np.all(np.isfinite(x)):
        raise ValueError("samples must be a flat sequence of finite numbers")
    n = len(x)
    count = n + errors
    fields: dict[str, Estimate | None] = dict.fromkeys(
        ("min", "p50", "p90", "p95", "p99", "max", "mean"), None
    )
    if n:
        fields["min"] = Estimate.exact(float(x.min()))
        fields["max"] = Estimate.exact(float(x.max()))
        names = list(QUANTILES)
        points = np.quantile(x, list(QUANTILES.values()))
        mean = float(x.mean())
        if n == 1 or fields["min"].value == fields["max"].value:
            # Nothing to resample: every resample equals the data.
            for name, point in zip(names, points, strict=True):
                fields[name] = Estimate.exact(float(point))
            fields["mean"] = Estimate.exact(mean)
        else:
            stats: list[float | str] = [*QUANTILES.values(), "mean"]
            dist = _bootstrap(x, stats, seed=seed, resamples=resamples)
            for i, (name, point) in enumerate(zip(names, points, strict=True)):
                fields[name] = _percentile_interval(dist[i], float(point))
            fields["mean"] = _percentile_interval(dist[-1], mean)
    return Summary(
        count=count,
        errors=errors,
        error_rate=wilson_interval(errors, count),
        rps=rate_interval(n, duration),
        **fields,
    )


def ratio_of_quantiles(
    a: Sequence[float],
    b: Sequence[float],
    q: float = 0.5,
    *,
    seed: int = DEFAULT_SEED,
    resamples: int = DEFAULT_RESAMPLES,
) -> Estimate | None:
    """quantile(a)/quantile(b) with a bootstrap interval (a and b resampled independently).

    None when either side is empty or b's quantile is not positive.
    """
    xa, xb = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if not len(xa) or not len(xb):
        return None
    qb = float(np.quantile(xb, q))
    if qb <= 0:
        return None
    point = float(np.quantile(xa, q)) / qb
    da = _bootstrap(xa, [q], seed=seed, resamples=resamples)[0]
    db = _bootstrap(xb, [q], seed=seed + 1, resamples=resamples)[0]
    m = min(len(da), len(db))
    with np.errstate(divide="ignore", invalid="ignore"):
        dist = da[:m] / db[:m]
    dist = dist[np.isfinite(dist)]
    if not len(dist):
        return Estimate.exact(point)
    return _percentile_interval(dist, point)


def ratio_of_medians(
    a: Sequence[float], b: Sequence[float], *, seed: int = DEFAULT_SEED,
    resamples: int = DEFAULT_RESAMPLES,
) -> Estimate | None:
    """median(a)/median(b) with a bootstrap 95 % interval: "a is 1.2x b (1.1-1.3)"."""
    return ratio_of_quantiles(a, b, 0.5, seed=seed, resamples=resamples)


def difference_of_quantiles(
    a: Sequence[float],
    b: Sequence[float],
    q: float = 0.5,
    *,
    seed: int = DEFAULT_SEED,
    resamples: int = DEFAULT_RESAMPLES,
) -> Estimate | None:
    """quantile(a) - quantile(b) with a bootstrap interval; None when either side is empty."""
    xa, xb = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if not len(xa) or not len(xb):
        return None
    point = float(np.quantile(xa, q) - np.quantile(xb, q))
    da = _bootstrap(xa, [q], seed=seed, resamples=resamples)[0]
    db = _bootstrap(xb, [q], seed=seed + 1, resamples=resamples)[0]
    m = min(len(da), len(db))
    return _percentile_interval(da[:m] - db[:m], point)


# Without raw samples (a stored summary only), combine two intervals approximately:
# treat each as normal (on the log scale for ratios) with sd = half-width / z.
_Z = 1.959964


def ratio_of_estimates(a: Estimate, b: Estimate) -> Estimate | None:
    """a/b from two intervals (delta method on logs); None unless all bounds are positive."""
    if min(a.low, a.value, b.low, b.value) <= 0:
        return None
    sa = (math.log(a.high) - math.log(a.low)) / (2 * _Z)
    sb = (math.log(b.high) - math.log(b.low)) / (2 * _Z)
    point = a.value / b.value
    spread = _Z * math.hypot(sa, sb)
    return Estimate(point, point * math.exp(-spread), point * math.exp(spread))


def difference_of_estimates(a: Estimate, b: Estimate) -> Estimate:
    """a - b from two intervals (independent normals)."""
    sa = (a.high - a.low) / (2 * _Z)
    sb = (b.high - b.low) / (2 * _Z)
    point = a.value - b.value
    spread = _Z * math.hypot(sa, sb)
    return Estimate(point, point - spread, point + spread)
