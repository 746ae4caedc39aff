"""The shared wait-for-a-condition loop."""

from __future__ import annotations

import pytest

from knative_lambda.harness.polling import poll


def test_true_at_once_does_not_wait() -> None:
    calls = []
    assert poll(lambda: calls.append(1) or True, wait_s=10) is True
    assert calls == [1]


def test_zero_wait_is_a_single_check() -> None:
    calls = []
    assert poll(lambda: calls.append(1), wait_s=0) is False
    assert calls == [1]


def test_becomes_true_within_the_wait() -> None:
    answers = iter([False, False, True])
    assert poll(lambda: next(answers), wait_s=5, interval=0.001) is True


def test_ignored_errors_mean_not_yet_others_propagate() -> None:
    answers = iter([ConnectionError(), True])

    def check() -> bool:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert poll(check, wait_s=5, interval=0.001, ignore=(ConnectionError,)) is True
    with pytest.raises(ValueError):
        poll(lambda: int("x"), wait_s=5, ignore=(ConnectionError,))


def test_gives_up_after_the_wait() -> None:
    assert poll(lambda: False, wait_s=0.05, interval=0.01) is False
