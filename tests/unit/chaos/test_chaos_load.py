"""Background load: pacing, bounds, recovery time, retries (no network: fake senders)."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from knative_lambda.chaos.load import LoadPlan, LoadRun, Outcome, pace, recovery
from knative_lambda.chaos.senders import backoff, retry_call
from knative_lambda.errors import ConfigError


@pytest.mark.parametrize(
    ("index", "rate", "started", "expected"),
    [(0, 0, 5.0, 5.0), (10, 0, 5.0, 5.0), (0, 10, 5.0, 5.0), (10, 10, 5.0, 6.0), (3, 2, 0.0, 1.5)],
)
def test_pace(index: int, rate: float, started: float, expected: float) -> None:
    assert pace(index, rate, started) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("outcomes", "expected"),
    [
        ([], (None, None, None, None)),
        ([(0.1, True), (0.2, True)], (None, None, None, None)),
        ([(0.1, True), (1.0, False), (1.5, False), (2.5, True), (3.0, True)], (1.0, 1.5, 2.5, 1.5)),
        ([(1.0, False), (2.0, False)], (1.0, 2.0, None, None)),  # never recovered
        ([(2.5, True), (1.0, False), (1.5, False)], (1.0, 1.5, 2.5, 1.5)),  # unsorted input
        ([(1.0, False), (1.2, True), (3.0, False), (3.1, True)], (1.0, 3.0, 3.1, 2.1)),
    ],
)
def test_recovery(outcomes: list, expected: tuple) -> None:
    r = recovery(outcomes)
    got = (r["first_error_s"], r["last_error_s"], r["recovered_at_s"], r["time_to_recover_s"])
    assert got == pytest.approx(expected) if expected[3] is not None else got == expected


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"kind": "mqtt"}, "kind"),
        ({"kind": "events", "count": 0}, "count"),
        ({"kind": "events", "rate": -1}, "rate"),
        ({"kind": "events", "duration_s": 0}, "duration_s"),
        ({"kind": "events", "duration_s": 99999}, "duration_s"),
        ({"kind": "http", "concurrency": 0}, "concurrency"),
    ],
)
def test_load_plan_rejects_unbounded_or_bad_plans(kwargs: dict, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        LoadPlan(**kwargs)


def test_run_sends_exactly_count_items_once_each() -> None:
    seen: list[int] = []
    lock = threading.Lock()

    def send(i: int) -> Outcome:
        with lock:
            seen.append(i)
        return Outcome(i % 10 != 0, 1, "" if i % 10 else "HTTP 503")

    result = LoadRun("t", LoadPlan("events", count=200, concurrency=5), send).start().wait(10)
    assert sorted(seen) == list(range(200))
    assert (result["done"], result["ok"], result["errors"]) == (200, 180, 20)
    assert result["error_rate"] == pytest.approx(0.1)
    assert result["error_kinds"] == {"HTTP 503": 20}
    assert result["complete"] is True


def test_run_is_bounded_in_time_and_can_be_stopped() -> None:
    def slow(i: int) -> Outcome:
        time.sleep(0.05)
        return Outcome(True)

    result = LoadRun("t", LoadPlan("http", count=100_000, duration_s=0.3, concurrency=2),
                     slow).start().wait(10)
    assert 0 < result["done"] < 100
    assert result["complete"] is False

    run = LoadRun("t2", LoadPlan("http", count=100_000, concurrency=2), slow).start()
    stopped = run.stop(5)
    assert not run.running
    assert stopped["done"] < 100_000


def test_a_raising_sender_is_an_error_not_a_dead_stream() -> None:
    def boom(i: int) -> Outcome:
        if i == 3:
            raise RuntimeError("bug")
        return Outcome(True)

    result = LoadRun("t", LoadPlan("http", count=10, concurrency=1), boom).start().wait(5)
    assert (result["done"], result["errors"]) == (10, 1)
    assert result["error_kinds"] == {"RuntimeError: bug": 1}


def test_sender_close_is_called_once_the_run_ends() -> None:
    closed = []

    def send(i: int) -> Outcome:
        return Outcome(True)

    send.close = lambda: closed.append(True)  # type: ignore[attr-defined]
    LoadRun("t", LoadPlan("http", count=3), send).start().wait(5)
    assert closed == [True]


@pytest.mark.parametrize(("attempt", "expected"), [(1, 0.1), (2, 0.2), (3, 0.4), (4, 0.8), (5, 1.0), (9, 1.0)])
def test_backoff(attempt: int, expected: float) -> None:
    assert backoff(attempt) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("answers", "ok", "attempts", "detail"),
    [
        ([202], True, 1, "HTTP 202"),
        ([503, 502, 202], True, 3, "HTTP 202"),
        ([httpx.ConnectError("x"), 202], True, 2, "HTTP 202"),
        ([400], False, 1, "HTTP 400"),  # the event itself is wrong: not retried
        ([413], False, 1, "HTTP 413"),
        ([429, 404, 409, 202], True, 4, "HTTP 202"),  # the contract's retryable 4xx
    ],
)
def test_retry_call(answers: list, ok: bool, attempts: int, detail: str) -> None:
    queue = list(answers)

    def call() -> int:
        answer = queue.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    outcome = retry_call(call, retry_s=60, is_ok=lambda s: s == 202, sleep=lambda _s: None)
    assert (outcome.ok, outcome.attempts, outcome.detail) == (ok, attempts, detail)


def test_retry_call_gives_up_when_the_budget_is_spent() -> None:
    outcome = retry_call(lambda: 503, retry_s=0.0, is_ok=lambda s: s == 202, sleep=lambda _s: None)
    assert (outcome.ok, outcome.attempts, outcome.detail) == (False, 1, "HTTP 503")


def test_retried_items_count_as_disruption_for_recovery_but_not_as_errors() -> None:
    def send(i: int) -> Outcome:
        return Outcome(True, 3 if 2 <= i <= 4 else 1, "HTTP 202")

    result = LoadRun("t", LoadPlan("events", count=8, concurrency=1), send).start().wait(5)
    assert (result["errors"], result["retried"]) == (0, 3)
    assert result["time_to_recover_s"] is not None and result["time_to_recover_s"] >= 0
    assert result["first_error_s"] <= result["last_error_s"] <= result["recovered_at_s"]
