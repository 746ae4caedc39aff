"""Hostile requests to the broker ingress: each answered with a clear error, nothing lost.

Every tenth case a valid canary event is published too; at the end every
canary must have been delivered and every part must still be healthy.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from knative_lambda.harness.hostile import HttpCase, RawCase, send_http, send_raw, verdict
from knative_lambda.harness.tap import EventTap
from tests.hostile import corpus_events

CASES = corpus_events.all_cases()


def with_token(data: bytes, token: str) -> bytes:
    """The raw request with the ingress token after its request line (when it has one),
    so that the case reaches the parsing or size check it is about, not the auth check."""
    line, sep, rest = data.partition(b"\r\n")
    if not token or not sep or not line.endswith(b"HTTP/1.1"):
        return data
    return line + sep + f"Authorization: Bearer {token}\r\n".encode() + rest
CANARY_EVERY = 10


def _param(case: HttpCase | RawCase) -> Any:
    marks = [pytest.mark.xfail(strict=True, reason=case.bug)] if case.bug else []
    return pytest.param(case, id=case.id, marks=marks)


@pytest.fixture(scope="module")
def everything(hostile_target: Any) -> Any:
    """A tap on every event the broker delivers while this module runs."""
    settings = hostile_target.settings
    tap = EventTap(settings.broker_url, [], token=settings.token, namespace=settings.namespace).start()
    yield tap
    tap.stop()


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_hostile_request_gets_a_clear_error(case: HttpCase | RawCase, hostile_target: Any, canary: Any,
                                            everything: Any) -> None:
    base = hostile_target.settings.broker_url
    if isinstance(case, RawCase):
        data = with_token(case.data, hostile_target.settings.token)
        answer = send_raw(base, data, half_close=case.status is None)
    else:
        answer = send_http(hostile_target.http, base, case)
    if CASES.index(case) % CANARY_EVERY == 0:
        canary.publish()  # valid traffic between the hostile requests
    problems = verdict(case, answer)
    assert not problems, f"{case.id}: " + "; ".join(problems)


def test_after_the_event_corpus_platform_is_healthy_and_nothing_lost(platform_ok: Any, canary: Any) -> None:
    assert len(canary.sent) >= len(CASES) // CANARY_EVERY
    platform_ok("events")


def test_no_rejected_event_was_delivered_to_anyone(canary: Any, everything: Any) -> None:
    last = canary.publish()  # once it is through, what was queued before it is through too
    deadline = time.monotonic() + 20
    while last not in {e.get_id() for e in everything.events} and time.monotonic() < deadline:
        time.sleep(0.05)
    delivered = {str(e.get_id()) for e in everything.events}
    assert last in delivered
    assert delivered & corpus_events.REJECTED_IDS == set()
