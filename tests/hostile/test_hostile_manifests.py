"""Hostile manifests: trigger specs to the broker, service specs to the gateway.

Each gets 400 (404/405/413) with a JSON error naming the problem; anything
created by mistake is deleted again. Afterwards every part is healthy and an
event published is still delivered.
"""

from __future__ import annotations

import contextlib
from typing import Any

import httpx
import pytest

from knative_lambda.errors import KLError
from knative_lambda.harness.hostile import HttpCase, send_http, unhealthy_parts, verdict
from knative_lambda.platform.broker.store import TriggerStore
from tests.hostile.corpus_manifests import (
    SERVICE_CASES,
    SERVICE_NAMESPACE_CASES,
    TRIGGER_CASES,
    TRIGGER_NAMESPACE_CASES,
    trigger,
)

TRIGGERS = TRIGGER_CASES + TRIGGER_NAMESPACE_CASES
SERVICES = SERVICE_CASES + SERVICE_NAMESPACE_CASES


def _param(case: HttpCase) -> Any:
    marks = [pytest.mark.xfail(strict=True, reason=case.bug)] if case.bug else []
    return pytest.param(case, id=case.id, marks=marks)


def _send(target: Any, base: str, case: HttpCase) -> list[str]:
    """Send, judge, and make sure nothing stays behind (a rejected spec must not be stored)."""
    answer = send_http(target.http, base, case)
    problems = verdict(case, answer)
    if case.method == "PUT":  # delete whatever the PUT may have left, even after an error
        with contextlib.suppress(httpx.HTTPError):
            deleted = target.http.delete(base + case.path, timeout=10).status_code == 200
            if deleted and answer.status not in (200, 201):
                problems.append(f"answered HTTP {answer.status} but the spec was stored anyway")
    return problems


@pytest.fixture(scope="module")
def gateway_url(hostile_target: Any) -> str:
    url = hostile_target.settings.gateway_url
    try:
        healthy = bool(url) and httpx.get(url + "/healthz", timeout=5).is_success
    except httpx.HTTPError:
        healthy = False
    if not healthy:
        pytest.skip("no gateway in this platform (kl up skipped it): service specs not tested")
    return url


@pytest.mark.parametrize("case", [_param(c) for c in TRIGGERS])
def test_hostile_trigger_spec_gets_400_naming_the_problem(case: HttpCase, hostile_target: Any) -> None:
    problems = _send(hostile_target, hostile_target.settings.broker_url, case)
    assert not problems, f"{case.id}: " + "; ".join(problems)


@pytest.mark.parametrize("case", [_param(c) for c in SERVICES])
def test_hostile_service_spec_gets_400_naming_the_problem(case: HttpCase, hostile_target: Any,
                                                          gateway_url: str) -> None:
    problems = _send(hostile_target, gateway_url, case)
    assert not problems, f"{case.id}: " + "; ".join(problems)


def _names(target: Any, url: str, key: str) -> list[str]:
    response = target.http.get(url, timeout=10)
    response.raise_for_status()
    return [item["name"] for item in response.json()[key] if item["name"].startswith("hostile-")]


def test_no_hostile_trigger_or_service_was_left_behind(hostile_target: Any) -> None:
    settings = hostile_target.settings
    assert _names(hostile_target, f"{settings.broker_url}/apis/v1/triggers", "items") == []
    with contextlib.suppress(httpx.HTTPError):  # no gateway: nothing to look at
        assert _names(hostile_target, f"{settings.gateway_url}/apis/v1/services", "services") == []


def test_a_rejected_trigger_cannot_stop_the_broker_from_restarting(hostile_target: Any) -> None:
    if not hasattr(hostile_target, "restart"):
        pytest.skip("the target cannot restart its parts")
    name = "hostile-restore"
    url = f"{hostile_target.settings.broker_url}/apis/v1/namespaces/default/triggers/{name}"
    hostile_target.http.put(url, json=trigger(delivery={"retry": 1_000_000}), timeout=10)
    try:  # whatever the answer was (the retry-huge case judges it), the broker must restart
        hostile_target.restart("broker", timeout=30)
        assert unhealthy_parts(hostile_target) == {}
    finally:  # leave a broker that starts, whatever happened above
        with contextlib.suppress(httpx.HTTPError):
            hostile_target.http.delete(url, timeout=10)
        if unhealthy_parts(hostile_target):
            TriggerStore(hostile_target.settings.data_dir).delete("default", name)
            with contextlib.suppress(KLError):
                hostile_target.restart("broker", timeout=30)


def test_after_the_manifest_corpus_platform_is_healthy_and_nothing_lost(platform_ok: Any) -> None:
    platform_ok("manifests")
