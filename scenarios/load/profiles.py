"""Load profiles of the original platform's QA plan, as plain data. Pure: no locust here.

The locustfiles wrap these in a ``LoadTestShape`` whose ``tick()`` calls
:func:`tick`; tests check the numbers without locust (which must never be
imported in-process: gevent monkey-patching).

Rates are requests (or events) per second. Locust drives users, so a rate
becomes ``ceil(rate / per_user_rps)`` users, each paced by
``constant_throughput(per_user_rps)``.

Scaling so a profile fits a laptop: ``KL_LOAD_SCALE`` multiplies every rate,
``KL_LOAD_TIME_SCALE`` every duration (both default 1). E.g. ``KL_LOAD_SCALE=0.1
KL_LOAD_TIME_SCALE=0.2`` turns "spike 500/s for 2 min" into 50/s for 24 s.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_PER_USER_RPS = 5.0


class ProfileError(ValueError):
    """A bad profile name or scale (the locustfile turns it into a one-line exit)."""


@dataclass(frozen=True)
class Stage:
    """``duration`` seconds with the rate going linearly from ``start`` to ``end``."""

    duration: float
    start: float
    end: float | None = None  # None: constant at ``start``

    def rate_at(self, t: float) -> float:
        end = self.start if self.end is None else self.end
        if self.duration <= 0:
            return end
        return self.start + (end - self.start) * min(max(t / self.duration, 0.0), 1.0)


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    stages: tuple[Stage, ...]

    @property
    def duration(self) -> float:
        return sum(s.duration for s in self.stages)

    def rate_at(self, t: float) -> float | None:
        """The target rate at ``t`` seconds into the run; None once the profile is over."""
        if t < 0:
            return None
        for stage in self.stages:
            if t < stage.duration:
                return stage.rate_at(t)
            t -= stage.duration
        return None

    def scaled(self, rate_scale: float = 1.0, time_scale: float = 1.0) -> Profile:
        return Profile(
            self.name,
            self.description,
            tuple(
                Stage(s.duration * time_scale, s.start * rate_scale,
                      None if s.end is None else s.end * rate_scale)
                for s in self.stages
            ),
        )

    def peak_rate(self) -> float:
        return max(max(s.start, s.end if s.end is not None else s.start) for s in self.stages)


def _steps(rates: tuple[float, ...], each: float) -> tuple[Stage, ...]:
    return tuple(Stage(each, r) for r in rates)


# The QA plan of the original platform (rates per second, durations in seconds).
PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile("baseline", "baseline: 10/s for 5 min", (Stage(300, 10),)),
        Profile("ramp", "ramp: 10/s -> 200/s over 10 min, then 1 min at 200/s",
                (Stage(600, 10, 200), Stage(60, 200))),
        Profile("spike", "spike: 1 min at 10/s, 500/s for 2 min, 1 min recovery at 10/s",
                (Stage(60, 10), Stage(120, 500), Stage(60, 10))),
        Profile("sustained", "sustained: 100/s for 10 min", (Stage(600, 100),)),
        Profile("parser_events", "parser events: 800/s, 1,200/s, 1,500/s, 2 min each",
                _steps((800, 1200, 1500), 120)),
    )
}


def users_for_rate(rate: float, per_user_rps: float = DEFAULT_PER_USER_RPS) -> int:
    """Users needed for ``rate``/s when each user is paced at ``per_user_rps``; 0 for no load."""
    if per_user_rps <= 0:
        raise ProfileError("per-user rate must be > 0")
    if rate <= 0:
        return 0
    # round() first so float noise (2.0000000001) does not add a user
    return max(1, math.ceil(round(rate / per_user_rps, 9)))


def tick(
    profile: Profile, t: float, per_user_rps: float = DEFAULT_PER_USER_RPS
) -> tuple[int, float] | None:
    """What ``LoadTestShape.tick()`` returns at ``t`` s: (users, spawn rate) or None to stop.

    The spawn rate equals the user count so every change lands within a second.
    """
    rate = profile.rate_at(t)
    if rate is None:
        return None
    users = users_for_rate(rate, per_user_rps)
    return users, float(max(users, 1))


def _positive(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "")
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ProfileError(f"{name}={raw!r} is not a number") from None
    if not value > 0 or math.isinf(value):
        raise ProfileError(f"{name}={raw!r} must be a positive number")
    return value


def from_env(env: Mapping[str, str], default: str = "baseline") -> tuple[Profile, float]:
    """The profile picked by ``KL_LOAD_PROFILE``, scaled by ``KL_LOAD_SCALE`` and
    ``KL_LOAD_TIME_SCALE``, and the per-user rate ``KL_LOAD_USER_RPS``."""
    name = env.get("KL_LOAD_PROFILE") or default
    if name not in PROFILES:
        raise ProfileError(f"KL_LOAD_PROFILE={name!r} is not one of {', '.join(PROFILES)}")
    profile = PROFILES[name].scaled(
        _positive(env, "KL_LOAD_SCALE", 1.0), _positive(env, "KL_LOAD_TIME_SCALE", 1.0)
    )
    return profile, _positive(env, "KL_LOAD_USER_RPS", DEFAULT_PER_USER_RPS)
