"""Fault state and the pure decisions the proxy applies to each connection and chunk.

The proxy's I/O loop asks two questions and obeys the answers:

- a new connection arrives: :func:`connection_verdict` -> FORWARD, RESET or BLACKHOLE;
- a chunk was read in one direction: :func:`plan_chunk` -> hold it (blackhole) or
  release it at a given time.

Both are pure functions of the fault state, a seedable ``random.Random`` and, for
chunks, the clock value and the previous chunk's release time, so they are
tested exhaustively without sockets.

Why "release at" instead of "sleep for": a chunk is never released before the
one read before it on the same direction (no reordering), and latency is
pipelined as on a real link: 200 ms of latency delays every byte by 200 ms but
does not cap throughput at one chunk per 200 ms. A bandwidth limit is the one
fault that does space chunks apart: a chunk of n bytes occupies the link for
n / bandwidth seconds after the previous one.
"""

from __future__ import annotations

import enum
import random
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from knative_lambda.errors import ConfigError

UP = "up"  # client -> upstream
DOWN = "down"  # upstream -> client
DIRECTIONS = (UP, DOWN)


@dataclass(frozen=True)
class LinkFaults:
    """Faults of one direction of the link."""

    latency_ms: float = 0.0
    jitter_ms: float = 0.0  # uniform in [-jitter, +jitter] around latency, never below zero
    bandwidth_bps: int = 0  # bytes per second; 0 = unlimited


@dataclass(frozen=True)
class Faults:
    """Everything the proxy currently injects. ``Faults()`` is a healthy link."""

    up: LinkFaults = field(default_factory=LinkFaults)
    down: LinkFaults = field(default_factory=LinkFaults)
    reset_fraction: float = 0.0  # of new connections, reset right after accept
    blackhole: bool = False  # new connections accepted and held; existing ones stall

    def direction(self, name: str) -> LinkFaults:
        return self.up if name == UP else self.down

    @property
    def healthy(self) -> bool:
        return self == Faults()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Verdict(enum.Enum):
    FORWARD = "forward"
    RESET = "reset"
    BLACKHOLE = "blackhole"


@dataclass(frozen=True)
class ChunkPlan:
    hold: bool  # blackholed: keep the bytes until the fault heals (TCP-like: nothing lost)
    release_at: float  # monotonic time at which the chunk may be written


def connection_verdict(faults: Faults, rng: random.Random) -> Verdict:
    """What to do with a newly accepted connection.

    Blackhole wins over resets: a partitioned link cannot answer with a RST. The
    random draw happens only when a reset fraction strictly between 0 and 1 is
    set, so a seeded run is reproducible whatever else changes.
    """
    if faults.blackhole:
        return Verdict.BLACKHOLE
    if faults.reset_fraction >= 1.0:
        return Verdict.RESET
    if faults.reset_fraction > 0.0 and rng.random() < faults.reset_fraction:
        return Verdict.RESET
    return Verdict.FORWARD


def chunk_delay(link: LinkFaults, rng: random.Random) -> float:
    """Seconds of latency for one chunk: latency ± uniform jitter, at least zero."""
    delay = link.latency_ms
    if link.jitter_ms > 0:
        delay += rng.uniform(-link.jitter_ms, link.jitter_ms)
    return max(0.0, delay) / 1000.0


def plan_chunk(faults: Faults, direction: str, nbytes: int, now: float, previous_release: float,
               rng: random.Random) -> ChunkPlan:
    """When a chunk of ``nbytes`` read at ``now`` may be written on ``direction``.

    ``previous_release`` is the release time of the chunk before it on the same
    direction (0.0 for the first). Worked example, 100 ms latency, 10 kB/s: a
    1 kB chunk read at t=0 may start at 0.1 s and occupies the link for 0.1 s,
    so it is released at 0.2 s; a second 1 kB chunk read at t=0.01 may start at
    0.11 s on latency alone, but the link is busy until 0.2 s, so it is
    released at 0.3 s.
    """
    if faults.blackhole:
        return ChunkPlan(hold=True, release_at=now)
    link = faults.direction(direction)
    release = now + chunk_delay(link, rng)
    release = max(release, previous_release)  # never overtake the chunk before
    if link.bandwidth_bps > 0:
        # the chunk occupies the link for nbytes / bandwidth once it may start
        release += nbytes / link.bandwidth_bps
    return ChunkPlan(hold=False, release_at=release)


# -- parsing (the control API's input) ----------------------------------------

def _number(value: Any, where: str, problems: list[str], *, integer: bool = False,
            upper: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        problems.append(f"{where}: expected a number, got {value!r}")
        return 0
    if value < 0:
        problems.append(f"{where}: must be >= 0, got {value}")
        return 0
    if upper is not None and value > upper:
        problems.append(f"{where}: must be <= {upper}, got {value}")
        return 0
    return int(value) if integer else float(value)


def _link(raw: Any, where: str, problems: list[str], base: LinkFaults) -> LinkFaults:
    if not isinstance(raw, dict):
        problems.append(f"{where}: expected an object, got {raw!r}")
        return base
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key in ("latency_ms", "jitter_ms"):
            values[key] = _number(value, f"{where}.{key}", problems, upper=600_000)
        elif key == "bandwidth_bps":
            values[key] = _number(value, f"{where}.{key}", problems, integer=True)
        else:
            problems.append(f"{where}.{key}: unknown field (latency_ms, jitter_ms, bandwidth_bps)")
    return replace(base, **values)


def parse_faults(raw: Any, base: Faults | None = None) -> Faults:
    """Faults from the JSON of ``PUT /faults``, merged over ``base`` (default: healthy).

    Top-level ``latency_ms``/``jitter_ms``/``bandwidth_bps`` apply to both
    directions; ``up``/``down`` objects set one direction. Raises ConfigError
    naming every bad field, so a typo never silently injects nothing.
    """
    base = base or Faults()
    if not isinstance(raw, dict):
        raise ConfigError(f"faults must be a JSON object, got {type(raw).__name__}")
    problems: list[str] = []
    up, down = base.up, base.down
    both = {k: raw[k] for k in ("latency_ms", "jitter_ms", "bandwidth_bps") if k in raw}
    if both:
        up = _link(both, "faults", problems, up)
        down = _link(both, "faults", problems, down)
    if "up" in raw:
        up = _link(raw["up"], "faults.up", problems, up)
    if "down" in raw:
        down = _link(raw["down"], "faults.down", problems, down)
    reset_fraction = base.reset_fraction
    if "reset_fraction" in raw:
        reset_fraction = _number(raw["reset_fraction"], "faults.reset_fraction", problems, upper=1.0)
    blackhole = base.blackhole
    if "blackhole" in raw:
        if not isinstance(raw["blackhole"], bool):
            problems.append(f"faults.blackhole: expected true or false, got {raw['blackhole']!r}")
        else:
            blackhole = raw["blackhole"]
    known = {"latency_ms", "jitter_ms", "bandwidth_bps", "up", "down", "reset_fraction", "blackhole"}
    problems.extend(f"faults.{k}: unknown field ({', '.join(sorted(known))})"
                    for k in raw if k not in known)
    if problems:
        raise ConfigError("invalid faults: " + "; ".join(problems))
    return Faults(up=up, down=down, reset_fraction=reset_fraction, blackhole=blackhole)
