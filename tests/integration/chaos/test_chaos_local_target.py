"""Chaos actions, probes and experiment 1 on a real local target (skipped when none can run)."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from knative_lambda.chaos import actions, probes
from knative_lambda.chaos.run import REPO_EXPERIMENTS, run_experiment_file
from knative_lambda.harness.faults.control import FaultProxyClient
from knative_lambda.harness.faults.links import start_link_proxies, stop_link_proxies

NEEDED = ("broker", "gateway", "builder", "deployer")


@pytest.fixture(scope="module")
def state(request: pytest.FixtureRequest) -> str:
    """State file of the session's local target; skip when the platform cannot run here."""
    try:
        target = request.getfixturevalue("kl_target")
    except pytest.skip.Exception:
        raise
    except Exception as exc:  # no platform in this checkout yet: a skip, with the reason
        pytest.skip(f"no local target: {type(exc).__name__}: {str(exc)[:200]}")
    state_path = getattr(target, "state_path", None)
    if state_path is None:
        pytest.skip(f"chaos tests need the local target, not {target.name}")
    missing = [p for p in NEEDED if p not in target.parts()]
    if missing:
        pytest.skip(f"local target lacks {', '.join(missing)}")
    return str(state_path)


@pytest.fixture
def config(state: str, tmp_path: Path) -> dict[str, Any]:
    return {"kl_state": state, "kl_chaos_dir": str(tmp_path / "chaos")}


def test_pause_resume_kill_restart_a_part(config: dict[str, Any]) -> None:
    assert probes.platform_healthy(wait_s=30, configuration=config)
    actions.pause_part("builder", configuration=config)
    try:
        assert probes.platform_health(configuration=config)["builder"]["ok"] is False
    finally:
        actions.resume_part("builder", configuration=config)
    assert probes.platform_healthy(wait_s=10, configuration=config)

    actions.kill_part("builder", configuration=config)
    assert probes.platform_healthy(configuration=config) is False
    assert actions.restart_part("builder", timeout=60, configuration=config)["restart_s"] >= 0
    assert probes.platform_healthy(wait_s=10, configuration=config)

    actions.pause_part("builder", configuration=config)  # the rollback resumes a paused part
    assert "builder" in actions.ensure_healthy(timeout=60, configuration=config)
    assert probes.platform_healthy(wait_s=10, configuration=config)


@pytest.fixture
def state_with_links(state: str, tmp_path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """A copy of the state file recording fault proxies, as 'kl up --faults' would."""
    from knative_lambda.harness import state as statefile

    loaded = statefile.load(state)
    links = start_link_proxies(loaded.platform_settings(), tmp_path)
    copy = tmp_path / "env.json"
    shutil.copy(state, copy)
    raw = json.loads(copy.read_text())
    raw["settings"]["fault_links"] = links
    copy.write_text(json.dumps(raw))
    try:
        yield str(copy), links
    finally:
        stop_link_proxies(links)


def test_link_actions_drive_the_fault_proxies(state_with_links: tuple[str, dict[str, Any]]) -> None:
    state, links = state_with_links
    rabbit = FaultProxyClient(links["rabbitmq"]["control_url"])
    s3 = FaultProxyClient(links["s3"]["control_url"])

    actions.inject_latency("rabbitmq", 200, state=state)
    assert rabbit.faults()["up"]["latency_ms"] == 200 and rabbit.faults()["down"]["latency_ms"] == 200
    actions.inject_latency("rabbitmq", 50, direction="down", state=state)
    assert rabbit.faults()["up"]["latency_ms"] == 200 and rabbit.faults()["down"]["latency_ms"] == 50
    assert actions.inject_resets("s3", 0.5, state=state)["faults"]["reset_fraction"] == 0.5
    actions.blackhole("s3", state=state)
    assert s3.faults()["blackhole"] is True and s3.faults()["reset_fraction"] == 0.5
    assert sorted(actions.heal("all", state=state)) == ["rabbitmq", "s3"]
    assert rabbit.faults()["up"]["latency_ms"] == 0 and s3.faults()["blackhole"] is False


def test_function_actions_and_probes(config: dict[str, Any]) -> None:
    deployed = actions.deploy_counter(timeout=120, configuration=config)
    service = deployed["service"]
    assert probes.function_reachable(service, wait_s=30, configuration=config)
    assert probes.function_reachable("chaos/counter", configuration=config)  # tp/parser form
    # a light load keeps an instance up (the test autoscaler scales to zero within seconds)
    actions.start_load(name="keepalive", kind="http", count=2000, rate=40, duration_s=40,
                       configuration=config)
    try:
        assert actions.await_instances(service, 1, within_s=20, configuration=config) >= 0
        assert probes.instance_count(service, configuration=config) >= 1
        assert actions.kill_instances(service, 1, configuration=config) == 1
        assert actions.await_instances(service, 1, within_s=10, configuration=config) >= 0
        assert probes.instances_at_least(service, 1, configuration=config)
    finally:
        load = actions.stop_load("keepalive", stop=True, configuration=config)
    assert load["ok"] > 0
    assert probes.deployed_intact(wait_s=10, configuration=config)
    assert probes.dead_letter_depth(configuration=config) == 0
    assert probes.no_builds_in_flight(wait_s=30, configuration=config)
    assert probes.builds_in_flight(configuration=config) == 0


def test_event_stream_fills_the_ledger(config: dict[str, Any]) -> None:
    actions.deploy_counter(timeout=120, configuration=config)
    actions.start_load(name="small", count=100, concurrency=4, duration_s=60, configuration=config)
    result = actions.stop_load("small", wait_s=60, configuration=config)
    assert (result["done"], result["ok"]) == (100, 100)
    balance = probes.ledger_balance("small", settle_s=30, configuration=config)
    assert (balance["sent"], balance["lost"]) == (100, 0)
    assert probes.ledger_balanced("small", configuration=config)
    assert probes.load_result("small", configuration=config)["done"] == 100


def _settle(experiment: dict[str, Any], seconds: float) -> None:
    for activity in [*experiment["steady-state-hypothesis"]["probes"], *experiment["method"]]:
        arguments = activity["provider"].get("arguments", {})
        if "settle_s" in arguments:
            arguments["settle_s"] = seconds


@pytest.mark.slow
def test_experiment_broker_restart_passes(state: str, tmp_path: Path) -> None:
    result = run_experiment_file(REPO_EXPERIMENTS / "broker-restart.yaml", state=Path(state),
                                 out_dir=tmp_path)
    summary = result.summary
    assert summary["ok"], json.dumps(summary, indent=1)
    assert summary["events"]["sent"] == 1000
    assert summary["events_lost"] == 0
    assert json.loads(result.summary_path.read_text())["events_lost"] == 0
    assert json.loads(result.journal_path.read_text())["status"] == "completed"


@pytest.mark.slow
def test_experiment_broker_restart_can_fail(state: str, tmp_path: Path) -> None:
    """Purge the trigger's queue mid-stream: events are really lost, the run must say how many."""

    def purge_instead_of_restart(experiment: dict[str, Any]) -> None:
        method = experiment["method"]
        stream = next(a for a in method if a["name"] == "start-event-stream")
        stream["provider"]["arguments"]["work_s"] = 1.0  # a slow consumer: the queue fills up
        stream["provider"]["arguments"]["count"] = 600  # enough to fill it, short enough to drain
        stream["pauses"] = {"after": 3}
        index = next(i for i, a in enumerate(method) if a["name"] == "restart-rabbitmq")
        method[index] = {
            "type": "action", "name": "purge-the-trigger-queue",
            "provider": {"type": "python", "module": "knative_lambda.chaos.actions",
                         "func": "purge_trigger_queue", "arguments": {"service": "chaos/counter"}},
        }
        _settle(experiment, 10)  # lost events never arrive: do not wait two minutes for them

    started = time.monotonic()
    result = run_experiment_file(REPO_EXPERIMENTS / "broker-restart.yaml", state=Path(state),
                                 out_dir=tmp_path, mutate=purge_instead_of_restart)
    summary = result.summary
    purged = next(r["output"] for r in result.journal["run"]
                  if r["activity"]["name"] == "purge-the-trigger-queue")
    assert purged > 0
    assert summary["deviated"] is True and summary["ok"] is False
    assert summary["hypothesis"]["after"]["met"] is False
    assert summary["events_lost"] == purged  # every purged event, and only those, is reported lost
    assert json.loads(result.summary_path.read_text())["events_lost"] == purged
    assert time.monotonic() - started < 110
