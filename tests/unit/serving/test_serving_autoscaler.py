"""The KPA decision as a table: pure inputs, pinned clock, no I/O."""

from __future__ import annotations

from dataclasses import replace

import pytest

from knative_lambda.platform.serving.autoscaler import (
    Decision,
    MetricWindow,
    Sample,
    ScalerState,
    decide,
)
from knative_lambda.platform.serving.config import AutoscalerConfig

# target 10 x 50 % = 5 per instance; stable window 10 s; panic window 1 s; threshold 2.0
CFG = AutoscalerConfig(scale_to_zero_grace=30.0, max_scale=50)
NOW = 1000.0


def flat(value: float, seconds: float = 10.0, now: float = NOW, step: float = 1.0) -> MetricWindow:
    """One sample per ``step`` over the last ``seconds``, all ``value``."""
    n = int(seconds / step)
    return MetricWindow(tuple(Sample(now - seconds + step * (i + 1), value, value) for i in range(n)))


def run(cfg=CFG, state=None, metrics=None, ready=1, now=NOW, routable=True) -> tuple[Decision, ScalerState]:
    return decide(cfg, state or ScalerState(reached_initial=True, last_desired=ready), metrics or flat(0), now, ready,
                  routable=routable)


@pytest.mark.parametrize(
    ("name", "cfg", "metrics", "ready", "expect"),
    [
        ("steady 20 -> 4", CFG, flat(20), 4, 4),
        ("steady 5 -> 1", CFG, flat(5), 1, 1),
        ("steady 5.01 -> 2", CFG, flat(5.01), 2, 2),
        ("max-scale bounds", CFG, flat(1000), 50, 50),
        ("unlimited max-scale", replace(CFG, max_scale=0), flat(1000), 200, 200),
        ("min-scale holds up", replace(CFG, min_scale=3), flat(0), 3, 3),
        ("scale-up rate: ready 2 x rate 2", replace(CFG, max_scale_up_rate=2.0), flat(100), 2, 4),
        ("scale-up from zero at least 1 x rate", replace(CFG, max_scale_up_rate=3.0), flat(100), 0, 3),
        ("scale-down rate: 10 -> 5 at most", CFG, flat(0), 10, 5),
        ("scale-down rate 4: 10 -> 2", replace(CFG, max_scale_down_rate=4.0), flat(0), 10, 2),
        ("rps metric", replace(CFG, metric="rps", target=100, target_utilization=1.0), flat(250), 3, 3),
        ("activation-scale lifts a small demand", replace(CFG, activation_scale=3), flat(1), 1, 3),
        ("activation-scale leaves zero demand alone", replace(CFG, activation_scale=3, scale_to_zero_grace=0), flat(0), 1, 0),
    ],
)
def test_table(name, cfg, metrics, ready, expect):
    decision, _ = run(cfg, metrics=metrics, ready=ready)
    assert decision.desired == expect, name


def test_empty_window_counts_as_no_traffic():
    assert MetricWindow().average("concurrency", NOW, 10) == 0.0
    w = MetricWindow().add(Sample(NOW - 20, 50), keep=30).add(Sample(NOW, 10), keep=30)
    assert w.average("concurrency", NOW, 10) == 10.0
    assert len(MetricWindow().add(Sample(1, 1), keep=5).add(Sample(10, 1), keep=5).samples) == 1


def test_zero_only_after_grace_period():
    cfg = replace(CFG, scale_to_zero_grace=30.0)
    state = ScalerState(reached_initial=True, last_desired=1)
    d, state = run(cfg, state, flat(0), ready=1, now=NOW)
    assert (d.desired, d.reason) == (1, "scale-to-zero grace")
    d, state = run(cfg, state, flat(0, now=NOW + 29), ready=1, now=NOW + 29)
    assert d.desired == 1
    d, state = run(cfg, state, flat(0, now=NOW + 30), ready=1, now=NOW + 30)
    assert (d.desired, d.reason) == (0, "scale to zero")
    # stays at zero without starting anything
    d, state = run(cfg, state, flat(0, now=NOW + 40), ready=0, now=NOW + 40)
    assert (d.desired, d.reason) == (0, "zero")


def test_traffic_during_grace_resets_it():
    cfg = replace(CFG, scale_to_zero_grace=30.0)
    state = ScalerState(reached_initial=True, last_desired=1)
    _, state = run(cfg, state, flat(0), ready=1, now=NOW)
    d, state = run(cfg, state, flat(1, now=NOW + 20), ready=1, now=NOW + 20)
    assert d.desired == 1 and state.zero_pending_since is None
    _, state = run(cfg, state, flat(0, now=NOW + 40), ready=1, now=NOW + 40)
    d, _ = run(cfg, state, flat(0, now=NOW + 60), ready=1, now=NOW + 60)
    assert d.desired == 1  # 20 s into a fresh grace period


def test_retention_period_longer_than_grace_wins():
    cfg = replace(CFG, scale_to_zero_grace=5.0, scale_to_zero_retention=20.0)
    state = ScalerState(reached_initial=True, last_desired=1)
    _, state = run(cfg, state, flat(0), ready=1, now=NOW)
    assert run(cfg, state, flat(0), ready=1, now=NOW + 10)[0].desired == 1
    assert run(cfg, state, flat(0), ready=1, now=NOW + 20)[0].desired == 0


def test_scale_to_zero_disabled_keeps_one():
    cfg = replace(CFG, enable_scale_to_zero=False, scale_to_zero_grace=0.0)
    d, _ = run(cfg, metrics=flat(0), ready=1)
    assert d.desired == 1


def test_new_revision_without_traffic_is_not_started_when_initial_scale_zero():
    cfg = replace(CFG, initial_scale=0, allow_zero_initial_scale=True)
    d, _ = decide(cfg, ScalerState(), MetricWindow(), NOW, 0)
    assert d.desired == 0


def test_initial_scale_until_reached():
    cfg = replace(CFG, initial_scale=3)
    state = ScalerState()
    d, state = decide(cfg, state, flat(0), NOW, 0)
    assert (d.desired, d.reason) == (3, "initial-scale")
    d, state = decide(cfg, state, flat(0), NOW + 1, 2)
    assert d.desired == 3
    d, state = decide(cfg, state, flat(0), NOW + 2, 3)
    assert state.reached_initial
    d, state = decide(cfg, state, flat(0), NOW + 3, 3)
    assert d.desired < 3  # back to the autoscaler's own answer


def test_initial_scale_ignored_for_unrouted_revision():
    d, _ = decide(replace(CFG, initial_scale=3), ScalerState(), flat(0), NOW, 0, routable=False)
    assert d.desired == 0


def test_min_scale_ignored_when_not_routable():
    d, _ = run(replace(CFG, min_scale=3, scale_to_zero_grace=0), metrics=flat(0), ready=3, routable=False)
    assert d.desired == 0  # an unrouted revision drops all at once


def test_panic_mode_starts_over_threshold_and_never_scales_down():
    # 1 ready; burst of 40 in the last second -> 8 panic pods, 8/1 >= 2: panic
    burst = MetricWindow((Sample(NOW, 40.0),))
    d, state = run(CFG, metrics=burst, ready=1)
    assert d.panicking and d.desired == 8 and d.reason == "panic"
    # demand falls while panicking: the count holds
    for k, value in enumerate((10.0, 0.0, 0.0), start=1):
        d, state = run(CFG, state, MetricWindow((Sample(NOW + k, value),)), ready=8, now=NOW + k)
        assert d.panicking and d.desired == 8
    # panic ends once the stable window has passed without crossing the threshold
    d, state = run(CFG, state, flat(0, now=NOW + 11), ready=8, now=NOW + 11)
    assert not d.panicking and d.desired == 4  # rate-limited scale down 8 -> 4
    assert state.max_panic_pods == 0


def test_panic_keeps_growing_with_demand():
    d, state = run(CFG, metrics=MetricWindow((Sample(NOW, 40.0),)), ready=1)
    d, state = run(CFG, state, MetricWindow((Sample(NOW + 1, 100.0),)), ready=8, now=NOW + 1)
    assert d.desired == 20


def test_below_threshold_is_stable_mode():
    # 1 ready, panic average 9 -> 2 pods; 2/1 >= 2.0 -> panic; 1 ready with 5 -> 1 pod, no panic
    d, _ = run(CFG, metrics=MetricWindow((Sample(NOW, 5.0),)), ready=1)
    assert not d.panicking
    d, _ = run(CFG, metrics=MetricWindow((Sample(NOW, 9.0),)), ready=1)
    assert d.panicking and d.desired == 2


def test_poke_from_zero_scales_to_one():
    state = ScalerState(reached_initial=True)
    window = flat(0).add(Sample(NOW + 0.001, 1.0), keep=12)
    d, _ = decide(CFG, state, window, NOW + 0.001, 0)
    assert d.desired == 1


def test_scale_down_delay_holds_the_max_of_the_window():
    cfg = replace(CFG, scale_down_delay=5.0)
    state = ScalerState(reached_initial=True, last_desired=4)
    d, state = run(cfg, state, flat(20), ready=4, now=NOW)
    assert d.desired == 4
    d, state = run(cfg, state, flat(5, now=NOW + 2), ready=4, now=NOW + 2)
    assert (d.desired, d.reason) == (4, "scale-down-delay")
    d, state = run(cfg, state, flat(5, now=NOW + 5.5), ready=4, now=NOW + 5.5)
    assert d.desired == 2  # the 4 left the 5 s window; rate-limited to 4/2 -> 1 would be too low
    assert d.reason == "scale-down-delay" or d.desired == 2


def test_scale_down_delay_does_not_delay_scale_up():
    cfg = replace(CFG, scale_down_delay=60.0)
    _, state = run(cfg, metrics=flat(5), ready=1)
    d, _ = run(cfg, state, flat(50, now=NOW + 1), ready=1, now=NOW + 1)
    assert d.desired == 10


def test_decide_is_pure():
    state = ScalerState(reached_initial=True, last_desired=2)
    metrics = flat(7)
    a = decide(CFG, state, metrics, NOW, 2)
    b = decide(CFG, state, metrics, NOW, 2)
    assert a == b
    assert state == ScalerState(reached_initial=True, last_desired=2)
