"""Chaos Toolkit probes (python provider) reading the platform through the ``Target`` protocol.

Probes meant for a steady-state hypothesis return a bool or a number, so plain
tolerances work (``true``, ``0``, ``[0, 0.005]``); the ones returning a dict
(``ledger_balance``, ``load_result``) are for the journal. Each takes the same
optional ``state`` and ``configuration`` as the actions.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx

from knative_lambda.chaos import context
from knative_lambda.chaos.actions import function_of
from knative_lambda.chaos.ledger import Ledger
from knative_lambda.errors import ConfigError, KLError
from knative_lambda.harness.polling import poll

Configuration = dict[str, Any] | None


def platform_health(state: str | None = None, configuration: Configuration = None) -> dict[str, Any]:
    """Every part's health: {part: {"ok": bool, "detail": str}}."""
    with context.target(state, configuration) as target:
        report = target.health()
    return {part: {"ok": ok, "detail": detail} for part, (ok, detail) in report.items()}


def platform_healthy(wait_s: float = 0.0, state: str | None = None,
                     configuration: Configuration = None) -> bool:
    """True when every part is healthy (polling up to ``wait_s`` for it to become so)."""
    return poll(lambda: all(p["ok"] for p in platform_health(state, configuration).values()),
                wait_s, ignore=(KLError, httpx.HTTPError))


def function_reachable(service: str, data: Any = None, wait_s: float = 0.0, timeout: float = 10.0,
                       state: str | None = None, configuration: Configuration = None) -> bool:
    """True when a POST to the function answers 2xx (polling up to ``wait_s``)."""
    with context.target(state, configuration) as target:
        fn = function_of(target, service)
        payload = data if data is not None else {}
        return poll(lambda: 200 <= target.invoke(fn, payload, timeout=timeout).status < 300,
                    wait_s, ignore=(KLError, httpx.HTTPError))


def instance_count(service: str, state: str | None = None, configuration: Configuration = None) -> int:
    with context.target(state, configuration) as target:
        return target.instance_count(function_of(target, service))


def instances_at_least(service: str, count: int = 1, wait_s: float = 0.0,
                       state: str | None = None, configuration: Configuration = None) -> bool:
    """True once the service has ``count`` instances (replacement after a kill)."""
    return poll(lambda: instance_count(service, state, configuration) >= count, wait_s,
                interval=0.1)


def ledger_balance(ledger: str = "stream", settle_s: float = 0.0, state: str | None = None,
                   configuration: Configuration = None) -> dict[str, Any]:
    """Events sent against events processed; waits up to ``settle_s`` for stragglers."""
    book = Ledger(context.ledger_dir(ledger, state, configuration))
    deadline = time.monotonic() + settle_s
    while True:
        result = book.balance()
        if result.lost == 0 or time.monotonic() >= deadline:
            return result.to_dict()
        time.sleep(0.25)


def ledger_balanced(ledger: str = "stream", settle_s: float = 30.0, state: str | None = None,
                    configuration: Configuration = None) -> bool:
    """True when every sent event was processed at least once (duplicates allowed)."""
    return bool(ledger_balance(ledger, settle_s, state, configuration)["balanced"])


def events_lost(ledger: str = "stream", settle_s: float = 30.0, state: str | None = None,
                configuration: Configuration = None) -> int:
    return int(ledger_balance(ledger, settle_s, state, configuration)["lost"])


def load_result(name: str = "stream", state: str | None = None,
                configuration: Configuration = None) -> dict[str, Any]:
    """The result ``stop_load`` wrote for a background load ({} when it has not ended)."""
    path = context.chaos_dir(state, configuration) / "loads" / f"{name}.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {}


def load_error_rate(name: str = "stream", state: str | None = None,
                    configuration: Configuration = None) -> float:
    """Error rate of a finished background load (0.0 when it has not run)."""
    return float(load_result(name, state, configuration).get("error_rate", 0.0))


def builds_in_flight(state: str | None = None, configuration: Configuration = None) -> int:
    """Builds running or queued in the builder."""
    with context.target(state, configuration) as target:
        url = target.settings.builder_url
        if not url:
            raise ConfigError("this target exposes no builder URL; builds_in_flight needs one")
        response = target.http.get(f"{url}/apis/v1/builds", timeout=5)
        response.raise_for_status()
        body = response.json()
    return int(body.get("running", 0)) + int(body.get("queued", 0))


def no_builds_in_flight(wait_s: float = 0.0, state: str | None = None,
                        configuration: Configuration = None) -> bool:
    """True once no build runs or waits (a stuck build keeps this False)."""
    return poll(lambda: builds_in_flight(state, configuration) == 0, wait_s,
                ignore=(KLError, httpx.HTTPError))


def dead_letter_depth(state: str | None = None, configuration: Configuration = None) -> int:
    """Messages waiting in every trigger's dead-letter queue."""
    with context.target(state, configuration) as target:
        return sum(int(t.get("dead_letter_depth") or 0) for t in triggers_of(target))


def triggers_of(target: Any) -> list[dict[str, Any]]:
    """``target.triggers()``, tolerating the broker's ``{"items": [...]}`` envelope."""
    found = target.triggers()
    if isinstance(found, dict):
        found = found.get("items", [])
    return list(found)


def services_intact(names: list[str], state: str | None = None,
                    configuration: Configuration = None) -> bool:
    """True when every named service still exists and is ready."""
    with context.target(state, configuration) as target:
        for name in names:
            try:
                service = target.service(name)
            except (KLError, httpx.HTTPError):
                return False  # the management API is down: nothing can be said to be intact
            if not service or not service.get("ready", True):
                return False
    return True


def load_recovered(name: str = "http", within_s: float = 30.0, state: str | None = None,
                   configuration: Configuration = None) -> bool:
    """True when a finished load had no errors, or its errors ended within ``within_s``
    and it succeeded again afterwards (True too when the load has not run yet)."""
    result = load_result(name, state, configuration)
    if not result or not result.get("errors"):
        return True
    recover = result.get("time_to_recover_s")
    return recover is not None and recover <= within_s


def build_completes(tp: str = "chaos", parser: str = "counter", timeout: float = 180.0,
                    state: str | None = None, configuration: Configuration = None) -> bool:
    """True when a fresh build (new content hash) ends in build.complete."""
    from knative_lambda.chaos.actions import build_function

    try:
        build_function(tp, parser, "build.complete", True, timeout, state, configuration)
    except (KLError, httpx.HTTPError):
        return False
    return True


def deployed_intact(wait_s: float = 30.0, state: str | None = None,
                    configuration: Configuration = None) -> bool:
    """Every service this run deployed still exists, is ready and answers 2xx.

    True before anything was deployed, so it fits a hypothesis checked before
    and after the method. Polls up to ``wait_s`` for the platform to come back.
    """
    path = context.chaos_dir(state, configuration) / "deployed.json"
    names = json.loads(path.read_text()) if path.exists() else []
    deadline = time.monotonic() + wait_s
    return all(poll(lambda n=name: services_intact([n], state, configuration)
                    and function_reachable(n, state=state, configuration=configuration),
                    max(0.0, deadline - time.monotonic()))
               for name in names)


def load_failed_fast(name: str = "http", state: str | None = None,
                     configuration: Configuration = None) -> bool:
    """True when no request of a finished load hung until its client timeout."""
    kinds = load_result(name, state, configuration).get("error_kinds", {})
    return not any("Timeout" in kind for kind in kinds)
