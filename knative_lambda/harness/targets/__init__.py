"""Targets: where scenarios run. See :mod:`knative_lambda.harness.targets.base`."""

from __future__ import annotations

from pathlib import Path

from knative_lambda.errors import ConfigError
from knative_lambda.harness.targets.base import BuildOutcome, Function, Invocation, Target

TARGETS = ("local", "kind", "cluster")


def load_target(name: str = "local", state_path: Path | str | None = None) -> Target:
    """The running target ``name``; local and kind are found through the state file."""
    if name in ("local", "kind"):
        from knative_lambda.harness import state as statefile

        state = statefile.load(state_path)
        if state.target == "local":
            from knative_lambda.harness.targets.local import LocalTarget

            return LocalTarget(state_path)
        from knative_lambda.harness.targets.cluster import ClusterTarget

        return ClusterTarget(state.platform_settings(), context=state.settings.get("kube_context"),
                             kubeconfig=state.settings.get("kubeconfig"))
    if name == "cluster":
        from knative_lambda.harness.targets.cluster import ClusterTarget

        return ClusterTarget()
    raise ConfigError(f"unknown target {name!r}; choose one of {', '.join(TARGETS)}")


__all__ = ["BuildOutcome", "Function", "Invocation", "Target", "TARGETS", "load_target"]
