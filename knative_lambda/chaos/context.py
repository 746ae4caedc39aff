"""Where an activity finds its platform: state file, target, fault links, run directory.

Every action and probe takes an optional ``state`` (path of the state file) and
the Chaos Toolkit ``configuration``. Lookup order, first hit wins:

    state argument -> configuration["kl_state"] -> $KL_STATE -> .kl/env.json
    configuration["kl_target"] -> $KL_TARGET -> "local"
    configuration["kl_chaos_dir"] -> $KL_CHAOS_DIR -> <data_dir>/chaos    (ledgers, load results)

Targets are imported lazily (``harness.targets.load_target``), so importing the
extension costs nothing and validating an experiment needs no platform.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from knative_lambda.errors import ConfigError

Configuration = Mapping[str, Any] | None


def _config(configuration: Configuration, key: str) -> Any:
    return (configuration or {}).get(key) or None


def state_path(state: str | None = None, configuration: Configuration = None) -> Path:
    value = state or _config(configuration, "kl_state") or os.environ.get("KL_STATE") \
        or ".kl/env.json"
    return Path(value)


def target_name(configuration: Configuration = None) -> str:
    return _config(configuration, "kl_target") or os.environ.get("KL_TARGET") or "local"


@contextlib.contextmanager
def target(state: str | None = None, configuration: Configuration = None) -> Iterator[Any]:
    """The running target, closed afterwards."""
    from knative_lambda.harness.targets import load_target

    tgt = load_target(target_name(configuration), state_path(state, configuration))
    try:
        yield tgt
    finally:
        close = getattr(tgt, "close", None)
        if close is not None:
            close()


def chaos_dir(state: str | None = None, configuration: Configuration = None) -> Path:
    """Directory for ledgers and load results of this run."""
    explicit = _config(configuration, "kl_chaos_dir") or os.environ.get("KL_CHAOS_DIR")
    if explicit:
        return Path(explicit).resolve()
    from knative_lambda.harness import state as statefile

    try:
        data_dir = statefile.load(state_path(state, configuration)).settings.get("data_dir", ".kl")
    except ConfigError:
        data_dir = ".kl"
    return (Path(data_dir) / "chaos").resolve()


def ledger_dir(ledger: str, state: str | None = None, configuration: Configuration = None) -> Path:
    """A ledger by name (under the chaos dir) or by absolute path."""
    if os.path.isabs(ledger):
        return Path(ledger)
    if not ledger or "/" in ledger or ledger.startswith("."):
        raise ConfigError(f"ledger name {ledger!r} must be a plain name like 'stream' or an absolute path")
    return chaos_dir(state, configuration) / "ledgers" / ledger


def fault_links(state: str | None = None, configuration: Configuration = None) -> dict[str, dict[str, Any]]:
    """The fault proxies ``kl up --faults`` recorded: ``state.settings["fault_links"]``."""
    from knative_lambda.harness import state as statefile

    path = state_path(state, configuration)
    links = statefile.load(path).settings.get("fault_links") or {}
    if not isinstance(links, dict):
        raise ConfigError(f"state file {path}: fault_links is not an object; run 'kl up --faults' again")
    return links


def link_control_url(link: str, state: str | None = None, configuration: Configuration = None) -> str:
    links = fault_links(state, configuration)
    if link not in links:
        known = ", ".join(links) or "none"
        raise ConfigError(f"no fault proxy on link {link!r} (links: {known}); "
                          "start the platform with 'kl up --faults'")
    return str(links[link]["control_url"])
