"""Token buckets, rate parsing and quotas: pure, with a pinned clock."""

from __future__ import annotations

import pytest

from knative_lambda.errors import ConfigError
from knative_lambda.platform.limits import (
    Quotas,
    RateLimiter,
    TokenBucket,
    parse_rates,
    quota_problem,
    retry_after_header,
)


def test_bucket_starts_full_then_refills_at_its_rate() -> None:
    bucket = TokenBucket(rate=2.0, burst=3)
    assert [bucket.take(10.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(10.0) == pytest.approx(0.5)  # one token takes 1/rate
    assert bucket.take(10.25) == pytest.approx(0.25)
    assert bucket.take(10.5) == 0.0
    assert bucket.take(100.0) == 0.0  # long idle: refilled, but never beyond burst
    assert bucket.tokens == pytest.approx(2.0)


def test_zero_rate_disables_the_limit() -> None:
    bucket = TokenBucket(rate=0, burst=1)
    assert all(bucket.take(0.0) == 0.0 for _ in range(100))


@pytest.mark.parametrize("text, expected", [
    ("", {"build": (5.0, 10)}),
    ("build=1/2", {"build": (1.0, 2)}),
    ("build=0", {"build": (0.0, 1)}),
    ("invoke=100", {"invoke": (100.0, 100)}),
    (" build = 2.5 / 4 , ", {"build": (2.5, 4)}),
])
def test_parse_rates_overrides_defaults(text, expected) -> None:
    rates = parse_rates(text.replace(" ", ""))
    for name, value in expected.items():
        assert rates[name] == value


@pytest.mark.parametrize("text", ["build", "build=x", "build=1/0", "=3", "build=-1", "build=1/x"])
def test_bad_rate_items_are_named(text) -> None:
    with pytest.raises(ConfigError, match="KL_RATE_LIMITS"):
        parse_rates(text)


def test_limiter_keeps_tenants_apart() -> None:
    now = [0.0]
    limiter = RateLimiter({"build": (1.0, 1)}, clock=lambda: now[0])
    assert limiter.check("build", "acme") == 0.0
    assert limiter.check("build", "acme") == pytest.approx(1.0)
    assert limiter.check("build", "other") == 0.0  # another tenant has its own bucket
    assert limiter.check("unlimited-op", "acme") == 0.0
    now[0] = 1.0
    assert limiter.check("build", "acme") == 0.0


def test_limiter_memory_is_bounded() -> None:
    limiter = RateLimiter({"build": (1.0, 1)}, clock=lambda: 0.0, max_keys=10)
    for i in range(25):
        limiter.check("build", f"t{i}")
    assert len(limiter._buckets) <= 10


@pytest.mark.parametrize("wait, header", [(0.01, "1"), (1.0, "1"), (1.2, "2"), (30.0, "30")])
def test_retry_after_is_whole_seconds(wait, header) -> None:
    assert retry_after_header(wait) == header


@pytest.mark.parametrize("resource, in_use, refused", [
    ("services", 49, False), ("services", 50, True), ("instances", 200, True),
    ("concurrent_builds", 4, False), ("concurrent_builds", 5, True),
])
def test_quota_decisions(resource, in_use, refused) -> None:
    problem = quota_problem(Quotas(), resource, "acme", in_use)
    assert (problem is not None) == refused
    if refused:
        assert "acme" in problem and "limit" in problem


def test_zero_quota_means_unlimited() -> None:
    assert quota_problem(Quotas(services=0), "services", "acme", 10**6) is None
