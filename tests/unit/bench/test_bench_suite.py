"""Suite files: parsing, validation with file:line, lookup, selection."""

from __future__ import annotations

from pathlib import Path

import pytest

from knative_lambda.bench.suite import KINDS, load_suite, parse_suite
from knative_lambda.errors import ConfigError

REPO = Path(__file__).resolve().parents[3]

GOOD = """\
version: 1
description: two
benchmarks:
  - name: cold
    kind: cold_start
    expect_s: 5
    params: {iterations: 2}
  - name: tp
    kind: throughput
"""


def test_parse() -> None:
    s = parse_suite(GOOD, "x.yaml")
    assert s.name == "x" and s.description == "two"
    assert [(b.name, b.kind, b.params, b.expect_s) for b in s.benchmarks] == [
        ("cold", "cold_start", {"iterations": 2}, 5.0), ("tp", "throughput", {}, None),
    ]


@pytest.mark.parametrize("text, message", [
    ("benchmarks: [\n", "x.yaml:2: not valid YAML"),
    ("[]\n", "a suite is a mapping"),
    ("benchmarks: []\n", "x.yaml:1: 'benchmarks' must be a non-empty list"),
    ("version: 3\nbenchmarks: [{name: a, kind: build}]\n", "x.yaml:1: suite version '3'"),
    ("oops: 1\nbenchmarks: [{name: a, kind: build}]\n", "x.yaml:1: unknown key 'oops'"),
    ("benchmarks:\n  - name: a\n    kind: nope\n", "x.yaml:2: benchmark 'a': unknown kind 'nope'"),
    ("benchmarks:\n  - {name: a, kind: build}\n  - {name: a, kind: build}\n", "x.yaml:3: benchmark 'a' defined twice"),
    ("benchmarks:\n  - {name: Bad-Name, kind: build}\n", "must match"),
    ("benchmarks:\n  - {name: a, kind: build, params: [1]}\n", "params must be a mapping"),
    ("benchmarks:\n  - {name: a, kind: build, expect_s: -1}\n", "expect_s must be a positive"),
    ("benchmarks:\n  - {name: a, kind: build, colour: red}\n", "unknown key 'colour'"),
    ("benchmarks:\n  - just a string\n", "each benchmark is a mapping"),
])
def test_bad_suite(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_suite(text, "x.yaml")


@pytest.mark.parametrize("name", ["default", "quick", "platform"])
def test_shipped_suites_parse(name: str) -> None:
    s = load_suite(str(REPO / "benchmarks" / "suites" / f"{name}.yaml"))
    assert s.name == name
    assert {b.kind for b in s.benchmarks} <= set(KINDS)


def test_default_suite_covers_every_kind_within_five_minutes() -> None:
    s = load_suite(str(REPO / "benchmarks" / "suites" / "default.yaml"))
    assert {b.kind for b in s.benchmarks} == set(KINDS)
    assert sum(b.expect_s or 0 for b in s.benchmarks) < 300


def test_unknown_suite_lists_known_ones() -> None:
    with pytest.raises(ConfigError, match="no suite 'nope'.*default"):
        load_suite("nope")


def test_select() -> None:
    s = parse_suite(GOOD, "x.yaml")
    assert [b.name for b in s.select(["tp"]).benchmarks] == ["tp"]
    assert s.select([]) is s
    with pytest.raises(ConfigError, match="no benchmark named zz"):
        s.select(["zz"])
