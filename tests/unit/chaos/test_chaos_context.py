"""Where activities find the platform: state file, target, chaos dir, ledgers, fault links."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from knative_lambda.chaos import actions, context
from knative_lambda.errors import ConfigError


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("KL_STATE", "KL_TARGET", "KL_CHAOS_DIR"):
        monkeypatch.delenv(key, raising=False)


@pytest.mark.parametrize(
    ("arg", "config", "env", "expected"),
    [
        (None, None, None, ".kl/env.json"),
        (None, None, "/e.json", "/e.json"),
        (None, {"kl_state": "/c.json"}, "/e.json", "/c.json"),
        ("/a.json", {"kl_state": "/c.json"}, "/e.json", "/a.json"),
        (None, {"kl_state": ""}, "/e.json", "/e.json"),  # empty config value falls through
    ],
)
def test_state_path_order(monkeypatch: pytest.MonkeyPatch, arg, config, env, expected) -> None:
    if env:
        monkeypatch.setenv("KL_STATE", env)
    assert context.state_path(arg, config) == Path(expected)


def test_target_name_order(monkeypatch: pytest.MonkeyPatch) -> None:
    assert context.target_name() == "local"
    monkeypatch.setenv("KL_TARGET", "kind")
    assert context.target_name() == "kind"
    assert context.target_name({"kl_target": "cluster"}) == "cluster"


def write_state(path: Path, settings: dict) -> None:
    path.write_text(json.dumps({"target": "local", "settings": settings, "services": {},
                                "components": {}}))


def test_chaos_dir_from_config_env_or_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    state = tmp_path / "env.json"
    write_state(state, {"data_dir": str(tmp_path / "data")})
    assert context.chaos_dir(str(state)) == tmp_path / "data" / "chaos"
    monkeypatch.setenv("KL_CHAOS_DIR", str(tmp_path / "env-dir"))
    assert context.chaos_dir(str(state)) == tmp_path / "env-dir"
    assert context.chaos_dir(str(state), {"kl_chaos_dir": str(tmp_path / "c")}) == tmp_path / "c"


@pytest.mark.parametrize("bad", ["", "a/b", "../x", ".hidden"])
def test_ledger_names_are_plain(bad: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="ledger name"):
        context.ledger_dir(bad, configuration={"kl_chaos_dir": str(tmp_path)})


def test_ledger_dir_by_name_or_absolute_path(tmp_path: Path) -> None:
    config = {"kl_chaos_dir": str(tmp_path)}
    assert context.ledger_dir("stream", configuration=config) == tmp_path / "ledgers" / "stream"
    assert context.ledger_dir(str(tmp_path / "abs"), configuration=config) == tmp_path / "abs"


def test_fault_links_come_from_the_state_file(tmp_path: Path) -> None:
    state = tmp_path / "env.json"
    write_state(state, {"fault_links": {"rabbitmq": {"control_url": "http://127.0.0.1:1"}}})
    assert context.link_control_url("rabbitmq", str(state)) == "http://127.0.0.1:1"
    with pytest.raises(ConfigError, match="no fault proxy on link 's3'.*kl up --faults"):
        context.link_control_url("s3", str(state))
    write_state(state, {})
    with pytest.raises(ConfigError, match=r"links: none"):
        context.link_control_url("s3", str(state))


def test_actions_without_a_platform_fail_with_one_actionable_line(tmp_path: Path) -> None:
    missing = str(tmp_path / "none.json")
    with pytest.raises(ConfigError, match="kl up"):
        actions.kill_part("broker", state=missing)
    with pytest.raises(ConfigError, match="kl up"):
        actions.blackhole("s3", state=missing)
    with pytest.raises(ConfigError, match="direction"):
        actions.inject_latency("s3", 10, direction="sideways", state=missing)
    with pytest.raises(ConfigError, match="no load named"):
        actions.stop_load("never-started", configuration={"kl_chaos_dir": str(tmp_path)})
    with pytest.raises(ConfigError, match="no build named"):
        actions.wait_build("never-started")


def test_counter_source_is_packaged() -> None:
    source = actions.counter_source()
    assert b"def handle(event)" in source
    assert b"import knative_lambda" not in source and b"from knative_lambda" not in source


def write_load(tmp_path: Path, name: str, **result: object) -> dict:
    config = {"kl_chaos_dir": str(tmp_path)}
    (tmp_path / "loads").mkdir(exist_ok=True)
    (tmp_path / "loads" / f"{name}.json").write_text(json.dumps(result))
    return config


@pytest.mark.parametrize(
    ("result", "recovered", "fast"),
    [
        (None, True, True),  # not run yet: the hypothesis before the method holds
        ({"errors": 0}, True, True),
        ({"errors": 5, "time_to_recover_s": 3.0, "error_kinds": {"ConnectError": 5}}, True, True),
        ({"errors": 5, "time_to_recover_s": 45.0, "error_kinds": {"HTTP 502": 5}}, False, True),
        ({"errors": 5, "time_to_recover_s": None, "error_kinds": {"HTTP 404": 5}}, False, True),
        ({"errors": 2, "time_to_recover_s": 1.0, "error_kinds": {"ReadTimeout": 2}}, True, False),
    ],
)
def test_load_probes(tmp_path: Path, result: dict | None, recovered: bool, fast: bool) -> None:
    from knative_lambda.chaos import probes

    config = write_load(tmp_path, "http", **result) if result else {"kl_chaos_dir": str(tmp_path)}
    assert probes.load_recovered("http", within_s=30, configuration=config) is recovered
    assert probes.load_failed_fast("http", configuration=config) is fast


@pytest.mark.parametrize(("before", "after", "dropped"), [(100.0, 10.0, True), (100.0, 100.0, False),
                                                          (0.0, 10.0, False)])
def test_compare_throughput(tmp_path: Path, before: float, after: float, dropped: bool) -> None:
    from knative_lambda.errors import PlatformError

    write_load(tmp_path, "base", throughput_per_s=before)
    config = write_load(tmp_path, "slow", throughput_per_s=after)
    if dropped:
        assert actions.compare_throughput("base", "slow", configuration=config)["ratio"] == 0.1
    else:
        with pytest.raises(PlatformError, match="did not drop"):
            actions.compare_throughput("base", "slow", configuration=config)
