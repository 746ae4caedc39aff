"""Progress: duration formatting, the ETA arithmetic, and the lines printed."""

from __future__ import annotations

import io

import pytest

from knative_lambda.bench.progress import Progress, estimate_remaining, format_duration


@pytest.mark.parametrize("seconds, text", [
    (0, "0:00"), (59.4, "0:59"), (75.2, "1:15"), (3725, "1:02:05"),
    (None, "?"), (-1, "?"), (float("nan"), "?"),
])
def test_format_duration(seconds, text) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize("done, remaining, expected, elapsed, fraction, eta", [
    # nothing known yet
    ([], 2, [], 0.0, None, None),
    # expected durations of the current and the next ones
    ([], 2, [10, 20, 30], 4.0, None, 6 + 20 + 30),
    # the current one reports progress: 25 % done after 5 s -> 15 s left
    ([], 0, [], 5.0, 0.25, 15.0),
    # unknown expectations fall back to the mean of the finished ones
    ([10, 20], 1, [None, None], 5.0, None, 10 + 15),
    # a current one past its expectation counts as nearly done
    ([], 0, [10], 12.0, None, 0.0),
    # mixed: next one has an expectation, the one after uses the mean
    ([8], 2, [None, 30, None], 2.0, None, 6 + 30 + 8),
])
def test_estimate_remaining(done, remaining, expected, elapsed, fraction, eta) -> None:
    got = estimate_remaining(done, remaining, expected, elapsed, fraction)
    assert got == (pytest.approx(eta) if eta is not None else None)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_progress_lines() -> None:
    clock, out = Clock(), io.StringIO()
    p = Progress(["cold_start", "build"], [10.0, 20.0], stream=out, clock=clock, min_interval=2)
    p.begin(0)
    clock.now = 1.0
    p.update("sample 1/4", 0.25)
    clock.now = 1.5
    p.update("sample 2/4", 0.5)  # rate-limited: not printed
    clock.now = 4.0
    p.update("sample 3/4", 0.75)
    p.end("ok")
    p.begin(1)
    clock.now = 30.0
    p.end("failed", "boom")
    p.finish("failed")
    lines = out.getvalue().splitlines()
    assert lines == [
        "[1/2 0:00 ETA 0:30] cold_start: started",
        "[1/2 0:01 ETA 0:23] cold_start: sample 1/4",
        "[1/2 0:04 ETA 0:21] cold_start: sample 3/4",
        "[1/2 0:04 ETA 0:20] cold_start: ok in 0:04",
        "[2/2 0:04 ETA 0:20] build: started",
        "[2/2 0:30 ETA 0:00] build: failed in 0:26 (boom)",
        "[0:30] run failed",
    ]
