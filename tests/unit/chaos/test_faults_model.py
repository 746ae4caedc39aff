"""The fault proxy's pure decisions: verdicts, chunk release times, parsing, URL rewriting."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from knative_lambda.errors import ConfigError
from knative_lambda.harness.faults.links import (
    plan_links,
    proxied_settings,
    rewrite_url,
    url_host_port,
)
from knative_lambda.harness.faults.model import (
    DOWN,
    UP,
    Faults,
    LinkFaults,
    Verdict,
    chunk_delay,
    connection_verdict,
    parse_faults,
    plan_chunk,
)
from knative_lambda.settings import Settings


@pytest.mark.parametrize(
    ("faults", "expected"),
    [
        (Faults(), Verdict.FORWARD),
        (Faults(reset_fraction=1.0), Verdict.RESET),
        (Faults(blackhole=True), Verdict.BLACKHOLE),
        (Faults(blackhole=True, reset_fraction=1.0), Verdict.BLACKHOLE),  # a partition cannot RST
        (Faults(up=LinkFaults(latency_ms=500)), Verdict.FORWARD),
    ],
)
def test_connection_verdict_is_deterministic_at_the_extremes(faults: Faults, expected: Verdict) -> None:
    for seed in range(20):
        assert connection_verdict(faults, random.Random(seed)) is expected


@pytest.mark.parametrize("fraction", [0.1, 0.25, 0.5, 0.9])
def test_reset_fraction_is_respected_over_many_connections(fraction: float) -> None:
    rng = random.Random(42)
    n = 10_000
    resets = sum(connection_verdict(Faults(reset_fraction=fraction), rng) is Verdict.RESET
                 for _ in range(n))
    assert abs(resets / n - fraction) < 0.03


def test_seeded_verdicts_are_reproducible() -> None:
    faults = Faults(reset_fraction=0.3)
    rng1, rng2 = random.Random(7), random.Random(7)
    assert [connection_verdict(faults, rng1) for _ in range(100)] == \
           [connection_verdict(faults, rng2) for _ in range(100)]


def test_healthy_link_draws_no_random_numbers() -> None:
    rng = random.Random(3)
    state = rng.getstate()
    connection_verdict(Faults(), rng)
    plan_chunk(Faults(), UP, 100, 1.0, 0.0, rng)
    assert rng.getstate() == state


@pytest.mark.parametrize(
    ("link", "low", "high"),
    [
        (LinkFaults(), 0.0, 0.0),
        (LinkFaults(latency_ms=200), 0.2, 0.2),
        (LinkFaults(latency_ms=200, jitter_ms=50), 0.15, 0.25),
        (LinkFaults(latency_ms=10, jitter_ms=50), 0.0, 0.06),  # never negative
    ],
)
def test_chunk_delay_stays_within_latency_plus_minus_jitter(link: LinkFaults, low: float,
                                                            high: float) -> None:
    rng = random.Random(1)
    for _ in range(500):
        assert low - 1e-9 <= chunk_delay(link, rng) <= high + 1e-9


@pytest.mark.parametrize(
    ("faults", "direction", "nbytes", "now", "previous", "hold", "release"),
    [
        # healthy: released at once
        (Faults(), UP, 100, 10.0, 0.0, False, 10.0),
        # latency applies per direction
        (Faults(up=LinkFaults(latency_ms=200)), UP, 100, 10.0, 0.0, False, 10.2),
        (Faults(up=LinkFaults(latency_ms=200)), DOWN, 100, 10.0, 0.0, False, 10.0),
        (Faults(down=LinkFaults(latency_ms=50)), DOWN, 100, 10.0, 0.0, False, 10.05),
        # never overtakes the chunk before it (no reordering)
        (Faults(), UP, 100, 10.0, 10.5, False, 10.5),
        (Faults(up=LinkFaults(latency_ms=100)), UP, 100, 10.0, 10.05, False, 10.1),
        # bandwidth: 1000 bytes at 10 kB/s occupy the link for 0.1 s after it is free
        (Faults(up=LinkFaults(bandwidth_bps=10_000)), UP, 1000, 10.0, 0.0, False, 10.1),
        (Faults(up=LinkFaults(bandwidth_bps=10_000)), UP, 1000, 10.0, 10.2, False, 10.3),
        (Faults(up=LinkFaults(latency_ms=100, bandwidth_bps=10_000)), UP, 1000, 0.01, 0.2, False, 0.3),
        # blackhole holds every chunk, both directions
        (Faults(blackhole=True), UP, 100, 10.0, 0.0, True, 10.0),
        (Faults(blackhole=True, down=LinkFaults(latency_ms=5)), DOWN, 100, 10.0, 0.0, True, 10.0),
    ],
)
def test_plan_chunk(faults: Faults, direction: str, nbytes: int, now: float, previous: float,
                    hold: bool, release: float) -> None:
    plan = plan_chunk(faults, direction, nbytes, now, previous, random.Random(0))
    assert plan.hold is hold
    assert plan.release_at == pytest.approx(release)


def test_release_times_never_decrease_under_jitter() -> None:
    faults = Faults(up=LinkFaults(latency_ms=50, jitter_ms=50))
    rng = random.Random(9)
    previous = 0.0
    for i in range(1000):
        plan = plan_chunk(faults, UP, 10, i * 0.001, previous, rng)
        assert plan.release_at >= previous
        assert plan.release_at >= i * 0.001
        previous = plan.release_at


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({}, Faults()),
        ({"latency_ms": 200}, Faults(up=LinkFaults(latency_ms=200), down=LinkFaults(latency_ms=200))),
        ({"up": {"latency_ms": 10, "jitter_ms": 2}},
         Faults(up=LinkFaults(latency_ms=10, jitter_ms=2))),
        ({"down": {"bandwidth_bps": 1000}}, Faults(down=LinkFaults(bandwidth_bps=1000))),
        ({"latency_ms": 5, "down": {"latency_ms": 7}},
         Faults(up=LinkFaults(latency_ms=5), down=LinkFaults(latency_ms=7))),
        ({"reset_fraction": 0.5}, Faults(reset_fraction=0.5)),
        ({"reset_fraction": 1}, Faults(reset_fraction=1.0)),
        ({"blackhole": True}, Faults(blackhole=True)),
    ],
)
def test_parse_faults(raw: dict, expected: Faults) -> None:
    assert parse_faults(raw) == expected
    assert parse_faults(expected.to_dict()) == expected  # to_dict round-trips


def test_parse_faults_merges_over_a_base() -> None:
    base = Faults(up=LinkFaults(latency_ms=100), blackhole=True)
    merged = parse_faults({"blackhole": False, "reset_fraction": 0.2}, base)
    assert merged == Faults(up=LinkFaults(latency_ms=100), reset_fraction=0.2)


@pytest.mark.parametrize(
    ("raw", "fragments"),
    [
        ([], ["JSON object"]),
        ({"latency_ms": -1}, ["faults.latency_ms", ">= 0"]),
        ({"latency_ms": "200"}, ["expected a number"]),
        ({"latency_ms": True}, ["expected a number"]),
        ({"reset_fraction": 1.5}, ["reset_fraction", "<= 1.0"]),
        ({"blackhole": "yes"}, ["blackhole", "true or false"]),
        ({"up": 5}, ["faults.up", "object"]),
        ({"up": {"latency": 5}}, ["faults.up.latency", "unknown"]),
        ({"latncy_ms": 5}, ["faults.latncy_ms", "unknown"]),
        # every problem, not the first
        ({"latency_ms": -1, "blackhole": 1, "zz": 0}, ["latency_ms", "blackhole", "zz"]),
    ],
)
def test_parse_faults_rejects_bad_input_naming_every_problem(raw: object, fragments: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        parse_faults(raw)
    for fragment in fragments:
        assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("url", "host", "port"),
    [
        ("amqp://guest:guest@127.0.0.1:5672/%2F", "127.0.0.1", 5672),
        ("amqp://localhost/", "localhost", 5672),
        ("http://127.0.0.1:9000", "127.0.0.1", 9000),
        ("https://s3.example", "s3.example", 443),
    ],
)
def test_url_host_port(url: str, host: str, port: int) -> None:
    assert url_host_port(url) == (host, port)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("amqp://guest:guest@127.0.0.1:5672/%2F", "amqp://guest:guest@127.0.0.1:6000/%2F"),
        ("amqp://user@h:1/vhost?heartbeat=5", "amqp://user@127.0.0.1:6000/vhost?heartbeat=5"),
        ("http://127.0.0.1:9000", "http://127.0.0.1:6000"),
        ("http://127.0.0.1:9000/prefix", "http://127.0.0.1:6000/prefix"),
    ],
)
def test_rewrite_url_keeps_credentials_and_path(url: str, expected: str) -> None:
    assert rewrite_url(url, "127.0.0.1", 6000) == expected


def test_plan_links_and_proxied_settings() -> None:
    settings = Settings(amqp_url="amqp://g:g@127.0.0.1:5672/%2F", s3_endpoint="http://127.0.0.1:9000")
    plan = plan_links(settings)
    assert plan["rabbitmq"]["upstream"] == "127.0.0.1:5672"
    assert plan["s3"]["upstream"] == "127.0.0.1:9000"
    for link, desc in plan.items():
        desc["url"] = rewrite_url(desc["upstream_url"], "127.0.0.1", 7000 + len(link))
    proxied = proxied_settings(settings, plan)
    assert proxied.amqp_url == "amqp://g:g@127.0.0.1:7008/%2F"
    assert proxied.s3_endpoint == "http://127.0.0.1:7002"


@pytest.mark.parametrize(
    ("settings", "links", "fragment"),
    [
        (Settings(), ("rabbitmq",), "amqp_url is empty"),
        (Settings(amqp_url="amqp://x:1/"), ("kafka",), "unknown link"),
        (Settings(s3_endpoint="ftp://host"), ("s3",), "no port"),
    ],
)
def test_plan_links_errors(settings: Settings, links: tuple[str, ...], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        plan_links(settings, links)


@given(
    latency=st.floats(0, 500), jitter=st.floats(0, 500), bandwidth=st.integers(0, 10**7),
    chunks=st.lists(st.tuples(st.floats(0, 1.0), st.integers(1, 65536)), min_size=1, max_size=50),
    seed=st.integers(0, 2**32),
)
def test_plan_chunk_never_reorders_and_never_releases_early(
        latency: float, jitter: float, bandwidth: int, chunks: list, seed: int) -> None:
    faults = Faults(up=LinkFaults(latency_ms=latency, jitter_ms=jitter, bandwidth_bps=bandwidth))
    rng = random.Random(seed)
    now, previous = 0.0, 0.0
    for gap, nbytes in chunks:
        now += gap
        plan = plan_chunk(faults, UP, nbytes, now, previous, rng)
        assert not plan.hold
        assert plan.release_at >= previous  # order kept
        assert plan.release_at >= now + max(0.0, latency - jitter) / 1000 - 1e-9  # never early
        previous = plan.release_at
