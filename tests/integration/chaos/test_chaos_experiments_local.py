"""Every experiment in chaos/experiments, run against the local target with fault proxies."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from knative_lambda.chaos.run import REPO_EXPERIMENTS, run_experiment_file
from knative_lambda.harness.faults.links import attach_link_proxies, detach_link_proxies

pytestmark = pytest.mark.slow

# name -> reason it is expected to deviate today (a platform defect the experiment found)
KNOWN_DEVIATIONS: dict[str, str] = {}
EXPERIMENTS = ["broker-restart", "s3-outage-builds", "instance-kill-http", "builder-kill",
               "broker-latency", "gateway-restart"]  # gateway last: it may leave no service


@pytest.fixture(scope="module")
def faulted_state(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
                  ) -> Iterator[Path]:
    """The session's local target with proxies on its rabbitmq and s3 links."""
    try:
        target = request.getfixturevalue("kl_target")
    except pytest.skip.Exception:
        raise
    except Exception as exc:
        pytest.skip(f"no local target: {type(exc).__name__}: {str(exc)[:200]}")
    state_path = getattr(target, "state_path", None)
    if state_path is None:
        pytest.skip(f"chaos experiments run on the local target, not {target.name}")
    had_links = bool(target.state.settings.get("fault_links"))
    attach_link_proxies(Path(state_path), tmp_path_factory.mktemp("links"))
    try:
        yield Path(state_path)
    finally:
        if not had_links:
            detach_link_proxies(Path(state_path))


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_passes(name: str, faulted_state: Path, tmp_path: Path) -> None:
    result = run_experiment_file(REPO_EXPERIMENTS / f"{name}.yaml", state=faulted_state,
                                 out_dir=tmp_path)
    summary = result.summary
    if name in KNOWN_DEVIATIONS and not summary["ok"]:
        pytest.xfail(f"{KNOWN_DEVIATIONS[name]} ({summary['hypothesis']['after']})")
    assert summary["ok"], json.dumps(summary, indent=1, default=str)
    assert result.journal_path.is_file() and result.summary_path.is_file()
    if summary["events"] is not None:
        assert summary["events_lost"] == 0
