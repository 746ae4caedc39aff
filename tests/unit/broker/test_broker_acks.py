"""The ack plan: one multiple ack below the lowest delivery in flight, single acks above it."""

from __future__ import annotations

import pytest

from knative_lambda.platform.broker.acks import plan_acks


@pytest.mark.parametrize(
    ("in_flight", "done", "upto", "singles"),
    [
        (set(), [], None, []),
        (set(), [1], None, [1]),
        (set(), [3, 1, 2], 3, []),  # all finished: one multiple ack
        ({4}, [1, 2, 3], 3, []),  # below the lowest in flight
        ({2}, [1, 3, 4], None, [1, 3, 4]),  # 2 still running: a multiple ack would cover it
        ({3}, [1, 2, 4, 5], 2, [4, 5]),
        ({3, 7}, [1, 2, 4, 8], 2, [4, 8]),
        ({10}, [11, 12], None, [11, 12]),
        ({1}, [2], None, [2]),
    ],
)
def test_plan_acks(in_flight, done, upto, singles):
    assert plan_acks(in_flight, done) == (upto, singles)


@pytest.mark.parametrize(
    ("in_flight", "done"),
    [({5}, [1, 2, 3, 4, 6, 7]), (set(), [9, 2, 5]), ({2, 4}, [1, 3, 5, 6]), ({1}, [])],
)
def test_plan_acks_acks_every_finished_tag_and_no_running_one(in_flight, done):
    upto, singles = plan_acks(in_flight, done)
    covered = {t for t in range(1, (upto or 0) + 1)} | set(singles)
    assert set(done) <= covered
    assert not (covered & set(in_flight))
