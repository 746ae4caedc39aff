"""Autoscaler configuration: Knative's ``config-autoscaler`` keys plus per-revision annotations.

Layers, later wins:

1. Knative's defaults, read from the ``_example`` block of
   ``shared/schemas/knative/serving-config-autoscaler.yaml`` (an embedded copy
   when the file is not beside the checkout);
2. the platform defaults of DESIGN §2 (target 10, utilization 50 %, max-scale 50,
   stable window 10 s, grace 30 s, panic 10 % / 200 %);
3. operator overrides (``KL_AUTOSCALER_<KEY>`` in the gateway's environment, e.g.
   ``KL_AUTOSCALER_STABLE_WINDOW=1s``; tests use these for short windows);
4. the revision's ``autoscaling.knative.dev/*`` annotations and its containerConcurrency.

Every bad value raises :class:`AutoscalerConfigError` naming the key. Operator
keys only need to be positive (a local platform may want sub-second windows);
annotations get Knative's ranges (window 6 s..1 h, panic threshold 110..1000 %).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import yaml

from knative_lambda.errors import ConfigError

ANNOTATION_PREFIX = "autoscaling.knative.dev/"
KPA_CLASS = "kpa.autoscaling.knative.dev"
DEFAULT_TICK = 2.0
DEFAULT_CONTAINER_CONCURRENCY = 10

# Knative's own defaults (the _example block), used when the schema file is absent.
KNATIVE_DEFAULTS: dict[str, str] = {
    "container-concurrency-target-percentage": "70",
    "container-concurrency-target-default": "100",
    "requests-per-second-target-default": "200",
    "target-burst-capacity": "211",
    "stable-window": "60s",
    "panic-window-percentage": "10.0",
    "panic-threshold-percentage": "200.0",
    "max-scale-up-rate": "1000.0",
    "max-scale-down-rate": "2.0",
    "enable-scale-to-zero": "true",
    "scale-to-zero-grace-period": "30s",
    "scale-to-zero-pod-retention-period": "0s",
    "pod-autoscaler-class": KPA_CLASS,
    "activator-capacity": "100.0",
    "initial-scale": "1",
    "allow-zero-initial-scale": "false",
    "min-scale": "0",
    "max-scale": "0",
    "scale-down-delay": "0s",
    "max-scale-limit": "0",
}

# DESIGN §2: what the original platform set on every function.
PLATFORM_DEFAULTS: dict[str, str] = {
    "container-concurrency-target-default": "10",
    "container-concurrency-target-percentage": "50",
    "max-scale": "50",
    "stable-window": "10s",
    "scale-to-zero-grace-period": "30s",
    "panic-window-percentage": "10.0",
    "panic-threshold-percentage": "200.0",
}

# annotation suffix -> config-autoscaler key it overrides (None: handled specially)
ANNOTATIONS: dict[str, str | None] = {
    "class": "pod-autoscaler-class",
    "metric": None,
    "target": None,
    "target-utilization-percentage": "container-concurrency-target-percentage",
    "min-scale": "min-scale",
    "minScale": "min-scale",
    "max-scale": "max-scale",
    "maxScale": "max-scale",
    "initial-scale": "initial-scale",
    "initialScale": "initial-scale",
    "activation-scale": None,
    "window": "stable-window",
    "panic-window-percentage": "panic-window-percentage",
    "panicWindowPercentage": "panic-window-percentage",
    "panic-threshold-percentage": "panic-threshold-percentage",
    "panicThresholdPercentage": "panic-threshold-percentage",
    "scale-down-delay": "scale-down-delay",
    "scale-to-zero-pod-retention-period": "scale-to-zero-pod-retention-period",
    "target-burst-capacity": "target-burst-capacity",
}

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|us|µs|ns|h|m|s)")
_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


class AutoscalerConfigError(ConfigError):
    """A config-autoscaler key or autoscaling annotation has a bad value."""


@dataclass(frozen=True)
class AutoscalerConfig:
    """Everything the KPA decision needs for one revision (times in seconds)."""

    metric: str = "concurrency"  # "concurrency" | "rps"
    target: float = 10.0  # per instance, before utilization
    target_utilization: float = 0.5  # fraction
    container_concurrency: int = DEFAULT_CONTAINER_CONCURRENCY  # 0 = unlimited
    stable_window: float = 10.0
    panic_window_percentage: float = 10.0
    panic_threshold_percentage: float = 200.0
    max_scale_up_rate: float = 1000.0
    max_scale_down_rate: float = 2.0
    min_scale: int = 0
    max_scale: int = 50  # 0 = unlimited
    initial_scale: int = 1
    allow_zero_initial_scale: bool = False
    activation_scale: int = 1
    enable_scale_to_zero: bool = True
    scale_to_zero_grace: float = 30.0
    scale_to_zero_retention: float = 0.0
    scale_down_delay: float = 0.0
    tick: float = DEFAULT_TICK

    @property
    def panic_window(self) -> float:
        return self.stable_window * self.panic_window_percentage / 100.0

    @property
    def panic_threshold(self) -> float:
        """As a ratio of desired panic pods to ready pods (200 % -> 2.0)."""
        return self.panic_threshold_percentage / 100.0

    @property
    def target_value(self) -> float:
        """Per-instance value the autoscaler aims at: 10 x 50 % = 5 concurrent requests."""
        return max(self.target * self.target_utilization, 0.01)


# --- parsing -----------------------------------------------------------------


def parse_duration(key: str, value: str | float | int) -> float:
    """``30s``, ``1m30s``, ``500ms``, ``1h`` or a bare number of seconds -> seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        text = str(value).strip()
        try:
            seconds = float(text)
        except ValueError:
            parts = _DURATION.findall(text)
            if not parts or "".join(n + u for n, u in parts) != text:
                raise AutoscalerConfigError(
                    f"{key}: {value!r} is not a duration (use e.g. 30s, 1m, 500ms)"
                ) from None
            seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    if seconds < 0 or math.isnan(seconds):
        raise AutoscalerConfigError(f"{key}: must not be negative, got {value!r}")
    return seconds


def _number(key: str, value: str | float, lo: float | None = None, hi: float | None = None) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise AutoscalerConfigError(f"{key}: {value!r} is not a number") from None
    if math.isnan(x) or (lo is not None and x < lo) or (hi is not None and x > hi):
        rng = f"[{lo if lo is not None else '-inf'}, {hi if hi is not None else 'inf'}]"
        raise AutoscalerConfigError(f"{key}: must be in {rng}, got {value!r}")
    return x


def _int(key: str, value: str | int, lo: int = 0) -> int:
    text = str(value).strip()
    if not re.fullmatch(r"-?\d+", text):
        raise AutoscalerConfigError(f"{key}: {value!r} is not an integer")
    n = int(text)
    if n < lo:
        raise AutoscalerConfigError(f"{key}: must be >= {lo}, got {value!r}")
    return n


def _bool(key: str, value: str | bool) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise AutoscalerConfigError(f"{key}: {value!r} is not true or false")


def _percentage(key: str, value: str | float) -> float:
    """Knative accepts 70 (percent) or legacy 0.7 (fraction) for target percentage."""
    x = _number(key, value, lo=0.0)
    x = x * 100.0 if x <= 1.0 else x
    if not 0 < x <= 100:
        raise AutoscalerConfigError(f"{key}: must be in (0, 100], got {value!r}")
    return x / 100.0


def schema_file() -> Path | None:
    """``shared/schemas/knative/serving-config-autoscaler.yaml`` beside the checkout, if there."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent / "shared" / "schemas" / "knative" / "serving-config-autoscaler.yaml"
        if candidate.is_file():
            return candidate
    return None


def knative_defaults(path: Path | None = None) -> dict[str, str]:
    """The ``_example`` block of the config-autoscaler ConfigMap as a key -> string dict."""
    path = path or schema_file()
    if path is None:
        return dict(KNATIVE_DEFAULTS)
    try:
        doc = yaml.safe_load(path.read_text())
        example = yaml.safe_load(doc["data"]["_example"]) or {}
    except (OSError, KeyError, TypeError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read autoscaler defaults from {path}: {exc}") from None
    return {str(k): str(v) for k, v in example.items()}


def platform_defaults(path: Path | None = None) -> dict[str, str]:
    return {**knative_defaults(path), **PLATFORM_DEFAULTS}


def env_overrides(env: Mapping[str, str]) -> dict[str, str]:
    """``KL_AUTOSCALER_STABLE_WINDOW=1s`` -> ``{"stable-window": "1s"}`` (and ``tick``)."""
    out: dict[str, str] = {}
    for name, value in env.items():
        if name.startswith("KL_AUTOSCALER_") and value != "":
            out[name[len("KL_AUTOSCALER_") :].lower().replace("_", "-")] = value
    return out


def from_configmap(data: Mapping[str, str], base: AutoscalerConfig | None = None) -> AutoscalerConfig:
    """An AutoscalerConfig from config-autoscaler keys (unknown keys are ignored, like Knative)."""
    cfg = base or AutoscalerConfig()
    changes: dict[str, object] = {}
    g = data.get
    if (v := g("pod-autoscaler-class")) is not None and v != KPA_CLASS:
        raise AutoscalerConfigError(f"pod-autoscaler-class: only {KPA_CLASS} is supported, got {v!r}")
    if (v := g("container-concurrency-target-default")) is not None:
        changes["target"] = _number("container-concurrency-target-default", v, lo=0.01)
    if (v := g("container-concurrency-target-percentage")) is not None:
        changes["target_utilization"] = _percentage("container-concurrency-target-percentage", v)
    for key, attr in (("stable-window", "stable_window"),):
        if (v := g(key)) is not None:
            changes[attr] = parse_duration(key, v)
            if changes[attr] <= 0:
                raise AutoscalerConfigError(f"{key}: must be positive, got {v!r}")
    for key, attr in (
        ("scale-to-zero-grace-period", "scale_to_zero_grace"),
        ("scale-to-zero-pod-retention-period", "scale_to_zero_retention"),
        ("scale-down-delay", "scale_down_delay"),
    ):
        if (v := g(key)) is not None:
            changes[attr] = parse_duration(key, v)
    if (v := g("tick")) is not None:
        changes["tick"] = parse_duration("tick", v)
        if changes["tick"] <= 0:
            raise AutoscalerConfigError(f"tick: must be positive, got {v!r}")
    if (v := g("panic-window-percentage")) is not None:
        changes["panic_window_percentage"] = _number("panic-window-percentage", v, 1.0, 100.0)
    if (v := g("panic-threshold-percentage")) is not None:
        changes["panic_threshold_percentage"] = _number("panic-threshold-percentage", v, 100.0)
    for key, attr in (("max-scale-up-rate", "max_scale_up_rate"), ("max-scale-down-rate", "max_scale_down_rate")):
        if (v := g(key)) is not None:
            x = _number(key, v)
            if x <= 1.0:
                raise AutoscalerConfigError(f"{key}: must be greater than 1, got {v!r}")
            changes[attr] = x
    if (v := g("enable-scale-to-zero")) is not None:
        changes["enable_scale_to_zero"] = _bool("enable-scale-to-zero", v)
    if (v := g("allow-zero-initial-scale")) is not None:
        changes["allow_zero_initial_scale"] = _bool("allow-zero-initial-scale", v)
    for key, attr in (("min-scale", "min_scale"), ("max-scale", "max_scale"), ("initial-scale", "initial_scale")):
        if (v := g(key)) is not None:
            changes[attr] = _int(key, v)
    cfg = replace(cfg, **changes)  # type: ignore[arg-type]
    _check_consistent(cfg, "")
    return cfg


def _check_consistent(cfg: AutoscalerConfig, prefix: str) -> None:
    if cfg.max_scale and cfg.min_scale > cfg.max_scale:
        raise AutoscalerConfigError(
            f"{prefix}min-scale: {cfg.min_scale} is above {prefix}max-scale {cfg.max_scale}"
        )
    if cfg.initial_scale == 0 and not cfg.allow_zero_initial_scale:
        raise AutoscalerConfigError(
            f"{prefix}initial-scale: 0 needs allow-zero-initial-scale: \"true\" in config-autoscaler"
        )


def with_annotations(
    base: AutoscalerConfig,
    annotations: Mapping[str, str] | None,
    container_concurrency: int | None = None,
) -> AutoscalerConfig:
    """``base`` overridden by a revision's ``autoscaling.knative.dev/*`` annotations.

    Target resolution follows Knative's ResolveMetricTarget: the annotation
    target (or the default) clamped to containerConcurrency when that is set.
    """
    annotations = annotations or {}
    changes: dict[str, object] = {}
    cc = base.container_concurrency if container_concurrency is None else container_concurrency
    if not isinstance(cc, int) or isinstance(cc, bool) or cc < 0:
        raise AutoscalerConfigError(f"container_concurrency: must be an integer >= 0, got {cc!r}")
    changes["container_concurrency"] = cc
    A = ANNOTATION_PREFIX
    for full, value in annotations.items():
        if not full.startswith(A):
            continue
        suffix = full[len(A) :]
        if suffix not in ANNOTATIONS:
            known = ", ".join(sorted(k for k in ANNOTATIONS if k[0].islower() and "S" not in k))
            raise AutoscalerConfigError(f"{full}: unknown autoscaling annotation (known: {known})")
        value = str(value)
        if suffix == "class":
            if value not in (KPA_CLASS, "kpa"):
                raise AutoscalerConfigError(f"{full}: only {KPA_CLASS} is supported locally, got {value!r}")
        elif suffix == "metric":
            if value not in ("concurrency", "rps"):
                raise AutoscalerConfigError(f"{full}: must be concurrency or rps, got {value!r}")
            changes["metric"] = value
        elif suffix == "target":
            changes["target"] = _number(full, value, lo=0.01)
        elif suffix == "target-utilization-percentage":
            changes["target_utilization"] = _number(full, value, 1.0, 100.0) / 100.0
        elif suffix in ("min-scale", "minScale"):
            changes["min_scale"] = _int(full, value)
        elif suffix in ("max-scale", "maxScale"):
            changes["max_scale"] = _int(full, value)
        elif suffix in ("initial-scale", "initialScale"):
            changes["initial_scale"] = _int(full, value)
        elif suffix == "activation-scale":
            changes["activation_scale"] = _int(full, value, lo=1)
        elif suffix == "window":
            w = parse_duration(full, value)
            if not 6.0 <= w <= 3600.0:
                raise AutoscalerConfigError(f"{full}: must be between 6s and 1h, got {value!r}")
            changes["stable_window"] = w
        elif suffix in ("panic-window-percentage", "panicWindowPercentage"):
            changes["panic_window_percentage"] = _number(full, value, 1.0, 100.0)
        elif suffix in ("panic-threshold-percentage", "panicThresholdPercentage"):
            changes["panic_threshold_percentage"] = _number(full, value, 110.0, 1000.0)
        elif suffix == "scale-down-delay":
            d = parse_duration(full, value)
            if d > 3600.0:
                raise AutoscalerConfigError(f"{full}: must be at most 1h, got {value!r}")
            changes["scale_down_delay"] = d
        elif suffix == "scale-to-zero-pod-retention-period":
            changes["scale_to_zero_retention"] = parse_duration(full, value)
        elif suffix == "target-burst-capacity":
            _number(full, value, lo=-1.0)  # accepted for compatibility; the gateway always buffers
    cfg = replace(base, **changes)  # type: ignore[arg-type]
    if cfg.metric == "concurrency" and cc > 0:
        cfg = replace(cfg, target=min(cfg.target, float(cc)))
    _check_consistent(cfg, A)
    return cfg


def platform_config(env: Mapping[str, str] | None = None, path: Path | None = None) -> AutoscalerConfig:
    """Knative defaults + DESIGN §2 defaults + ``KL_AUTOSCALER_*`` overrides."""
    data = {**platform_defaults(path), **env_overrides(env or {})}
    return from_configmap(data)
