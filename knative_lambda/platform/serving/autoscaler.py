"""Knative's KPA as a pure function: ``decide(config, state, metrics, now, ready_pods)``.

The algorithm is Knative's ``pkg/autoscaler/scaling/autoscaler.go`` (``Scale``)
followed by the bounds of the KPA reconciler (``scaler.go``): min/max scale,
initial scale, scale to zero after a grace period. Knative keeps the panic
start, the max panic pod count and the scale-down-delay window inside the
autoscaler object; here they travel in and out in :class:`ScalerState`, so every
decision is a function of its arguments and can be tabled in tests.

Worked numbers with the platform defaults (target 10 x utilization 50 % = 5
per instance, stable window 10 s, panic window 1 s, panic threshold 200 %):
200 buffered requests on a revision at zero -> panic average 200 -> 40 desired
panic pods; 40 / max(1, 0 ready) >= 2.0 so panic mode starts and the revision
goes straight to 40 (bounded by max-scale 50 and max-scale-up-rate 1000 x 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from knative_lambda.platform.serving.config import AutoscalerConfig

_EPS = 1e-9


@dataclass(frozen=True)
class Sample:
    """One metric reading: average concurrency (and request rate) over a short interval."""

    t: float
    concurrency: float
    rps: float = 0.0


@dataclass(frozen=True)
class MetricWindow:
    """Recent samples, oldest first; averages are the mean of the samples inside a window."""

    samples: tuple[Sample, ...] = ()

    def add(self, sample: Sample, keep: float) -> MetricWindow:
        """A window with ``sample`` appended and samples older than ``keep`` seconds dropped."""
        cutoff = sample.t - keep
        kept = tuple(s for s in self.samples if s.t > cutoff)
        return MetricWindow(kept + (sample,))

    def average(self, metric: str, now: float, window: float) -> float:
        """Mean over samples with ``now - window < t <= now``; 0 when there are none."""
        lo = now - window
        values = [
            (s.concurrency if metric == "concurrency" else s.rps)
            for s in self.samples
            if lo < s.t <= now + _EPS
        ]
        return sum(values) / len(values) if values else 0.0


@dataclass(frozen=True)
class ScalerState:
    """What Knative's autoscaler and KPA reconciler remember between ticks."""

    panic_since: float | None = None  # last time the panic threshold was crossed
    max_panic_pods: int = 0
    delay_history: tuple[tuple[float, int], ...] = ()  # (t, desired) over scale-down-delay
    zero_pending_since: float | None = None  # when the bounded decision first reached 0
    reached_initial: bool = False  # initial-scale has been reached once
    last_desired: int = 0


@dataclass(frozen=True)
class Decision:
    desired: int
    stable_value: float
    panic_value: float
    panicking: bool
    reason: str  # which rule set the final number
    kpa_desired: int = 0  # before min/max/initial/zero handling
    notes: tuple[str, ...] = field(default_factory=tuple)


def _ceil(x: float) -> int:
    return int(math.ceil(x - _EPS)) if x > 0 else 0


def decide(
    config: AutoscalerConfig,
    state: ScalerState,
    metrics: MetricWindow,
    now: float,
    ready_pods: int,
    *,
    routable: bool = True,
) -> tuple[Decision, ScalerState]:
    """The desired instance count for one revision now, and the state for the next call.

    ``routable`` is False for a revision traffic has moved away from: min-scale
    no longer holds it up (Knative applies min-scale to routed revisions only).
    """
    notes: list[str] = []
    # --- autoscaler.go Scale() ---
    ready = float(max(1, ready_pods))
    max_up = math.ceil(config.max_scale_up_rate * ready)
    # Knative: an unreachable (unrouted) revision may drop any number of pods at once
    max_down = math.floor(ready / config.max_scale_down_rate) if routable else 0

    stable = metrics.average(config.metric, now, config.stable_window)
    panic = metrics.average(config.metric, now, config.panic_window)
    tv = config.target_value
    dspc = _ceil(stable / tv)
    dppc = _ceil(panic / tv)
    if config.activation_scale > 1:
        if 0 < dspc < config.activation_scale:
            dspc = config.activation_scale
        if 0 < dppc < config.activation_scale:
            dppc = config.activation_scale
    desired_stable = int(min(max(dspc, max_down), max_up))
    desired_panic = int(min(max(dppc, max_down), max_up))

    over_threshold = dppc / ready >= config.panic_threshold
    panic_since, max_panic = state.panic_since, state.max_panic_pods
    if over_threshold:
        panic_since = now  # begin or extend panic
    elif panic_since is not None and panic_since + config.stable_window < now:
        # the surge has made its way into the stable window: stop panicking
        panic_since, max_panic = None, 0
        notes.append("panic ended")

    if panic_since is not None:
        # panic mode never scales down
        max_panic = max(max_panic, desired_panic)
        desired, reason = max_panic, "panic"
    else:
        desired, reason = desired_stable, "stable"

    history = state.delay_history
    if config.scale_down_delay > 0:
        history = tuple(h for h in history if h[0] > now - config.scale_down_delay) + ((now, desired),)
        delayed = max(d for _, d in history)
        if delayed > desired:
            desired, reason = delayed, "scale-down-delay"
    else:
        history = ()
    kpa_desired = desired

    # --- KPA reconciler bounds (scaler.go) ---
    if routable and desired < config.min_scale:
        desired, reason = config.min_scale, "min-scale"
    reached_initial = state.reached_initial or ready_pods >= config.initial_scale
    if routable and not reached_initial and desired < config.initial_scale:
        desired, reason = config.initial_scale, "initial-scale"
    if config.max_scale and desired > config.max_scale:
        desired, reason = config.max_scale, "max-scale"

    zero_since = state.zero_pending_since
    if desired > 0:
        zero_since = None
    else:
        hold = max(config.scale_to_zero_grace, config.scale_to_zero_retention)
        already_zero = ready_pods == 0 and state.last_desired == 0
        if not config.enable_scale_to_zero and routable:
            desired, reason = 1, "scale-to-zero disabled"
        elif already_zero:
            reason = "zero"
        else:
            zero_since = now if zero_since is None else zero_since
            if now - zero_since < hold:
                desired, reason = 1, "scale-to-zero grace"
            else:
                reason = "scale to zero"

    decision = Decision(
        desired=desired,
        stable_value=stable,
        panic_value=panic,
        panicking=panic_since is not None,
        reason=reason,
        kpa_desired=kpa_desired,
        notes=tuple(notes),
    )
    new_state = replace(
        state,
        panic_since=panic_since,
        max_panic_pods=max_panic,
        delay_history=history,
        zero_pending_since=zero_since,
        reached_initial=reached_initial,
        last_desired=desired,
    )
    return decision, new_state
