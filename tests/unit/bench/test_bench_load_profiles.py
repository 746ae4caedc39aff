"""QA load profiles as plain data (scenarios/load/profiles.py, no locust imported)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

PATH = Path(__file__).resolve().parents[3] / "scenarios" / "load" / "profiles.py"
_spec = importlib.util.spec_from_file_location("kl_load_profiles", PATH)
profiles = importlib.util.module_from_spec(_spec)
sys.modules["kl_load_profiles"] = profiles  # dataclasses look their module up
_spec.loader.exec_module(profiles)


def test_profiles_module_does_not_import_locust() -> None:
    assert "locust" not in sys.modules


@pytest.mark.parametrize("name, duration, checks", [
    ("baseline", 300, [(0, 10), (299, 10), (300, None)]),
    ("ramp", 660, [(0, 10), (300, 105), (599.9, pytest.approx(200, abs=0.1)), (630, 200), (660, None)]),
    ("spike", 240, [(0, 10), (60, 500), (179, 500), (180, 10), (240, None)]),
    ("sustained", 600, [(0, 100), (599, 100), (600, None)]),
    ("parser_events", 360, [(0, 800), (120, 1200), (240, 1500), (359, 1500), (360, None)]),
])
def test_profile_rates(name, duration, checks) -> None:
    p = profiles.PROFILES[name]
    assert p.duration == duration
    for t, rate in checks:
        assert p.rate_at(t) == rate


def test_before_start_is_none() -> None:
    assert profiles.PROFILES["baseline"].rate_at(-1) is None


@pytest.mark.parametrize("rate, per_user, users", [
    (0, 5, 0), (0.1, 5, 1), (5, 5, 1), (5.01, 5, 2), (10, 5, 2), (500, 5, 100), (1500, 10, 150),
])
def test_users_for_rate(rate, per_user, users) -> None:
    assert profiles.users_for_rate(rate, per_user) == users


def test_users_for_rate_needs_a_positive_pace() -> None:
    with pytest.raises(profiles.ProfileError):
        profiles.users_for_rate(10, 0)


def test_tick_follows_the_profile_and_stops() -> None:
    spike = profiles.PROFILES["spike"]
    assert profiles.tick(spike, 0, 5) == (2, 2.0)
    assert profiles.tick(spike, 90, 5) == (100, 100.0)
    assert profiles.tick(spike, 200, 5) == (2, 2.0)
    assert profiles.tick(spike, 240, 5) is None


def test_scaling_fits_a_laptop() -> None:
    p = profiles.PROFILES["spike"].scaled(rate_scale=0.1, time_scale=0.2)
    assert p.duration == pytest.approx(48)
    assert p.peak_rate() == pytest.approx(50)
    assert p.rate_at(20) == pytest.approx(50)  # 12 s warm-up, then the spike


@pytest.mark.parametrize("env, name, duration, peak, per_user", [
    ({}, "baseline", 300, 10, profiles.DEFAULT_PER_USER_RPS),
    ({"KL_LOAD_PROFILE": "parser_events", "KL_LOAD_SCALE": "0.1"}, "parser_events", 360, 150, 5.0),
    ({"KL_LOAD_PROFILE": "ramp", "KL_LOAD_TIME_SCALE": "0.1", "KL_LOAD_USER_RPS": "20"},
     "ramp", 66, 200, 20.0),
])
def test_from_env(env, name, duration, peak, per_user) -> None:
    p, pu = profiles.from_env(env)
    assert p.name == name
    assert p.duration == pytest.approx(duration)
    assert p.peak_rate() == pytest.approx(peak)
    assert pu == per_user


@pytest.mark.parametrize("env, message", [
    ({"KL_LOAD_PROFILE": "tsunami"}, "not one of"),
    ({"KL_LOAD_SCALE": "lots"}, "not a number"),
    ({"KL_LOAD_SCALE": "0"}, "positive"),
    ({"KL_LOAD_TIME_SCALE": "-1"}, "positive"),
    ({"KL_LOAD_USER_RPS": "inf"}, "positive"),
])
def test_from_env_errors(env, message) -> None:
    with pytest.raises(profiles.ProfileError, match=message):
        profiles.from_env(env)
