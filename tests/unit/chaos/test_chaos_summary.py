"""The run summary, from synthetic Chaos Toolkit journals."""

from __future__ import annotations

from typing import Any

import pytest

from knative_lambda.chaos.summary import render, summarize


def probe(name: str, output: Any, met: bool) -> dict[str, Any]:
    return {"activity": {"name": name}, "output": output, "tolerance_met": met, "status": "succeeded"}


def journal(*, status: str = "completed", deviated: bool = False, before: bool = True,
            after: bool | None = True, failed_step: bool = False) -> dict[str, Any]:
    run = [{"activity": {"name": "restart"}, "status": "succeeded", "output": {"restart_s": 4.5}}]
    if failed_step:
        run.append({"activity": {"name": "build"}, "status": "failed",
                    "exception": ["Traceback", "PlatformError: stuck\n"]})
    steady: dict[str, Any] = {"before": {"steady_state_met": before,
                                         "probes": [probe("healthy", before, before)]}}
    if after is not None:
        steady["after"] = {"steady_state_met": after, "probes": [probe("nothing-lost", after, after)]}
    return {"status": status, "deviated": deviated, "duration": 12.5, "steady_states": steady,
            "run": run, "rollbacks": [], "experiment": {"title": "T"}}


@pytest.mark.parametrize(
    ("kwargs", "ok"),
    [
        ({}, True),
        ({"deviated": True, "status": "failed", "after": False}, False),
        ({"before": False, "status": "failed", "after": None}, False),  # aborted before the method
        ({"failed_step": True}, False),  # chaoslib calls it completed; we do not
        ({"status": "interrupted"}, False),
    ],
)
def test_ok_verdict(kwargs: dict, ok: bool) -> None:
    assert summarize("x", journal(**kwargs))["ok"] is ok


def test_events_error_rate_and_recovery_are_gathered() -> None:
    loads = {"stream": {"kind": "events", "done": 1000, "ok": 1000, "errors": 0, "time_to_recover_s": None},
             "http": {"kind": "http", "done": 1000, "ok": 996, "errors": 4, "time_to_recover_s": 1.25}}
    balances = {"stream": {"sent": 1000, "processed_once": 990, "lost": 10, "duplicated": 3,
                           "deliveries": 993, "unexpected": 0}}
    s = summarize("broker-restart", journal(), loads, balances)
    assert s["events_lost"] == 10
    assert s["events"]["duplicated"] == 3
    assert s["error_rate"] == pytest.approx(0.002)
    assert s["time_to_recover_s"] == 4.5  # the restart took longer than the load's recovery
    assert s["hypothesis"]["before"]["met"] is True
    text = render(s)
    assert "lost 10" in text and "error rate 0.0020" in text and "PASSED" in text


def test_failed_step_and_no_events_are_reported() -> None:
    s = summarize("x", journal(failed_step=True))
    assert s["events"] is None and s["events_lost"] is None and s["error_rate"] is None
    assert s["failed_steps"] == [{"name": "build", "status": "failed", "error": "PlatformError: stuck"}]
    assert "step failed: build: PlatformError: stuck" in render(s)
    assert render(summarize("y", journal(deviated=True, after=False, status="failed"))).startswith(
        "y: DEVIATED")
