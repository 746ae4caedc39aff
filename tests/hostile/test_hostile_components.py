"""Hostile requests to the builder and the gateway: clear errors, and both stay healthy."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from knative_lambda.harness.hostile import HttpCase, send_http, verdict
from tests.hostile.corpus_components import CASES


def _params() -> list[Any]:
    out = []
    for setting, cases in CASES.items():
        for case in cases:
            marks = [pytest.mark.xfail(strict=True, reason=case.bug)] if case.bug else []
            out.append(pytest.param(setting, case, id=case.id, marks=marks))
    return out


@pytest.mark.parametrize(("setting", "case"), _params())
def test_hostile_request_to_a_component_gets_a_clear_error(setting: str, case: HttpCase,
                                                           hostile_target: Any) -> None:
    base = getattr(hostile_target.settings, setting)
    try:
        up = bool(base) and httpx.get(base + "/healthz", timeout=5).is_success
    except httpx.HTTPError:
        up = False
    if not up:
        pytest.skip(f"no {setting.removesuffix('_url')} in this platform")
    problems = verdict(case, send_http(hostile_target.http, base, case))
    assert not problems, f"{case.id}: " + "; ".join(problems)


def test_after_the_component_corpus_platform_is_healthy_and_nothing_lost(platform_ok: Any) -> None:
    platform_ok("components")
