"""config-autoscaler keys and autoscaling.knative.dev/* annotations: defaults, overrides, errors."""

from __future__ import annotations

import pytest

from knative_lambda.platform.serving.config import (
    KNATIVE_DEFAULTS,
    AutoscalerConfig,
    AutoscalerConfigError,
    env_overrides,
    from_configmap,
    knative_defaults,
    parse_duration,
    platform_config,
    schema_file,
    with_annotations,
)

A = "autoscaling.knative.dev/"


def test_knative_defaults_come_from_the_schema_file():
    assert schema_file() is not None
    d = knative_defaults()
    assert d == {**d, **{k: KNATIVE_DEFAULTS[k] for k in ("stable-window", "max-scale-up-rate", "initial-scale")}}
    cfg = from_configmap(d)
    assert cfg.stable_window == 60.0 and cfg.target == 100.0 and cfg.target_utilization == 0.7
    assert cfg.max_scale == 0 and cfg.max_scale_down_rate == 2.0 and cfg.scale_to_zero_grace == 30.0


def test_platform_defaults_are_design_section_2():
    cfg = platform_config({})
    assert (cfg.target, cfg.target_utilization, cfg.min_scale, cfg.max_scale) == (10.0, 0.5, 0, 50)
    assert (cfg.stable_window, cfg.panic_window, cfg.panic_threshold) == (10.0, 1.0, 2.0)
    assert cfg.scale_to_zero_grace == 30.0 and cfg.container_concurrency == 10 and cfg.tick == 2.0
    assert cfg.target_value == 5.0


def test_env_overrides():
    env = {"KL_AUTOSCALER_STABLE_WINDOW": "2s", "KL_AUTOSCALER_TICK": "0.25",
           "KL_AUTOSCALER_SCALE_TO_ZERO_GRACE_PERIOD": "500ms", "OTHER": "x", "KL_AUTOSCALER_MAX_SCALE": ""}
    assert env_overrides(env) == {"stable-window": "2s", "tick": "0.25", "scale-to-zero-grace-period": "500ms"}
    cfg = platform_config(env)
    assert (cfg.stable_window, cfg.tick, cfg.scale_to_zero_grace) == (2.0, 0.25, 0.5)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("1m", 60), ("1m30s", 90), ("500ms", 0.5), ("1h", 3600), ("2", 2), ("0.5", 0.5), ("0s", 0)],
)
def test_durations(text, seconds):
    assert parse_duration("k", text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "abc", "10x", "-1s", "1s2", "s"])
def test_bad_durations_name_the_key(text):
    with pytest.raises(AutoscalerConfigError, match="^stable-window: "):
        parse_duration("stable-window", text)


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"max-scale-up-rate": "1"}, "max-scale-up-rate"),
        ({"max-scale-down-rate": "0.5"}, "max-scale-down-rate"),
        ({"panic-window-percentage": "0"}, "panic-window-percentage"),
        ({"panic-window-percentage": "101"}, "panic-window-percentage"),
        ({"min-scale": "-1"}, "min-scale"),
        ({"min-scale": "1.5"}, "min-scale"),
        ({"min-scale": "5", "max-scale": "2"}, "min-scale"),
        ({"initial-scale": "0"}, "initial-scale"),
        ({"enable-scale-to-zero": "maybe"}, "enable-scale-to-zero"),
        ({"pod-autoscaler-class": "hpa.autoscaling.knative.dev"}, "pod-autoscaler-class"),
        ({"stable-window": "0s"}, "stable-window"),
        ({"container-concurrency-target-default": "0"}, "container-concurrency-target-default"),
        ({"tick": "0"}, "tick"),
    ],
)
def test_configmap_errors_name_the_key(data, key):
    with pytest.raises(AutoscalerConfigError, match=f"^{key}: "):
        from_configmap(data)


def test_zero_initial_scale_allowed_when_configured():
    cfg = from_configmap({"initial-scale": "0", "allow-zero-initial-scale": "true"})
    assert cfg.initial_scale == 0


def test_fractional_target_percentage_is_legacy_fraction():
    assert from_configmap({"container-concurrency-target-percentage": "0.7"}).target_utilization == pytest.approx(0.7)


BASE = platform_config({})


@pytest.mark.parametrize(
    ("annotations", "cc", "field", "value"),
    [
        ({A + "target": "20"}, 0, "target", 20.0),
        ({A + "target": "20"}, 10, "target", 10.0),  # clamped to containerConcurrency
        ({A + "target-utilization-percentage": "80"}, 10, "target_utilization", 0.8),
        ({A + "min-scale": "2"}, 10, "min_scale", 2),
        ({A + "minScale": "2"}, 10, "min_scale", 2),
        ({A + "max-scale": "7"}, 10, "max_scale", 7),
        ({A + "initial-scale": "3"}, 10, "initial_scale", 3),
        ({A + "activation-scale": "2"}, 10, "activation_scale", 2),
        ({A + "window": "60s"}, 10, "stable_window", 60.0),
        ({A + "panic-window-percentage": "20"}, 10, "panic_window_percentage", 20.0),
        ({A + "panic-threshold-percentage": "300"}, 10, "panic_threshold_percentage", 300.0),
        ({A + "scale-down-delay": "15s"}, 10, "scale_down_delay", 15.0),
        ({A + "scale-to-zero-pod-retention-period": "1m"}, 10, "scale_to_zero_retention", 60.0),
        ({A + "metric": "rps"}, 10, "metric", "rps"),
        ({A + "class": "kpa.autoscaling.knative.dev"}, 10, "metric", "concurrency"),
        ({"other.io/x": "whatever"}, 10, "container_concurrency", 10),
        ({}, 25, "container_concurrency", 25),
    ],
)
def test_annotations(annotations, cc, field, value):
    assert getattr(with_annotations(BASE, annotations, cc), field) == value


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("target", "0"),
        ("target", "ten"),
        ("target-utilization-percentage", "0"),
        ("target-utilization-percentage", "101"),
        ("min-scale", "-1"),
        ("max-scale", "x"),
        ("initial-scale", "0"),
        ("activation-scale", "0"),
        ("window", "5s"),
        ("window", "2h"),
        ("panic-window-percentage", "0.5"),
        ("panic-threshold-percentage", "100"),
        ("scale-down-delay", "2h"),
        ("scale-to-zero-pod-retention-period", "soon"),
        ("metric", "memory"),
        ("class", "hpa.autoscaling.knative.dev"),
        ("no-such-thing", "1"),
    ],
)
def test_bad_annotations_name_the_key(key, value):
    with pytest.raises(AutoscalerConfigError, match=f"^{A}{key}: "):
        with_annotations(BASE, {A + key: value}, 10)


def test_min_above_max_names_the_annotation():
    with pytest.raises(AutoscalerConfigError, match="min-scale"):
        with_annotations(BASE, {A + "min-scale": "5", A + "max-scale": "2"}, 10)


@pytest.mark.parametrize("cc", [-1, "10", 1.5, True])
def test_bad_container_concurrency(cc):
    with pytest.raises(AutoscalerConfigError, match="^container_concurrency: "):
        with_annotations(BASE, {}, cc)


def test_defaults_object_matches_platform_defaults():
    assert AutoscalerConfig() == platform_config({})
