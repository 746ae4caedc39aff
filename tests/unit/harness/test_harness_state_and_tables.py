"""State file and conformance table: pure parts of the harness."""

from __future__ import annotations

from pathlib import Path

import pytest

from knative_lambda.errors import ConfigError
from knative_lambda.harness import state as statefile
from knative_lambda.harness.conformance import format_table, parse_junit
from knative_lambda.settings import Settings


def test_state_round_trips_settings(tmp_path: Path) -> None:
    settings = Settings(amqp_url="amqp://x", token="t", data_dir=tmp_path / "d", port=0)
    state = statefile.State(settings=statefile.settings_to_dict(settings),
                            components={"broker": {"pid": 1, "url": "http://127.0.0.1:1"}})
    statefile.save(state, tmp_path / "env.json")
    loaded = statefile.load(tmp_path / "env.json")
    assert loaded.platform_settings() == settings
    assert loaded.components == state.components


@pytest.mark.parametrize("content, expected", [
    (None, "run 'kl up' first"),
    ("{broken", "cannot read state file"),
    ("[1, 2]", "not a JSON object"),
])
def test_unusable_state_file_gives_an_actionable_error(tmp_path: Path, content, expected) -> None:
    path = tmp_path / "env.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError, match=expected):
        statefile.load(path)


def test_unknown_keys_in_state_are_ignored(tmp_path: Path) -> None:
    path = tmp_path / "env.json"
    path.write_text('{"target": "local", "future_field": 1, "settings": {"amqp_url": "a", "x": 2}}')
    assert statefile.load(path).platform_settings().amqp_url == "a"


def test_env_round_trip_of_settings() -> None:
    settings = Settings(amqp_url="amqp://h", s3_endpoint="http://s3", port=99, token="tok")
    import os

    old = dict(os.environ)
    try:
        os.environ.update(settings.to_env())
        assert Settings.from_env() == settings
    finally:
        os.environ.clear()
        os.environ.update(old)


JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="3">
 <testcase classname="c" name="test_a" time="0.50"><properties><property name="clause" value="BUILD-COMPLETE"/></properties></testcase>
 <testcase classname="c" name="test_b" time="1.25"><properties><property name="clause" value="DELETE"/></properties><failure message="assert 1 == 2&#10;more">trace</failure></testcase>
 <testcase classname="c" name="test_c" time="0"><skipped message="no docker"/></testcase>
</testsuite></testsuites>"""


def test_junit_rows_carry_clause_outcome_and_time(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    path.write_text(JUNIT)
    rows = parse_junit(path)
    assert [(r.clause, r.outcome, r.seconds) for r in rows] == [
        ("BUILD-COMPLETE", "passed", 0.5), ("DELETE", "failed", 1.25), ("-", "skipped", 0.0)]
    assert rows[1].message == "assert 1 == 2"
    table = format_table(rows)
    assert "1 of 3 passed" in table and "(assert 1 == 2)" in table
