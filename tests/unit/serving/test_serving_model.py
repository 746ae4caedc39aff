"""Management API body validation, FunctionResult shaping, timeline filtering, routing."""

from __future__ import annotations

from pathlib import Path

import pytest

from knative_lambda.platform.runtime.app import failure, normalize
from knative_lambda.platform.serving.config import platform_config
from knative_lambda.platform.serving.gateway import Gateway, GatewayOptions
from knative_lambda.platform.serving.instances import Launcher, scrubbed_env
from knative_lambda.platform.serving.model import SpecError, Timeline, parse_revision

BASE = platform_config({})


def resolver(path: str):
    return (Path("/art"), "python") if path == "/art" else (None, None)


def test_minimal_revision():
    spec, cfg = parse_revision("svc", {"revision": {"artifact": "/art", "content_hash": "abcdef123456"}}, BASE, resolver)
    assert spec.name == "svc-abcdef12" and spec.runtime == "python" and spec.container_concurrency == 10
    assert cfg.target_value == 5.0


def test_every_problem_is_reported():
    doc = {"revision": {"name": "Bad_Name", "artifact": "/nope", "runtime": "ruby", "container_concurrency": -1,
                        "timeout": 0, "annotations": {"autoscaling.knative.dev/min-scale": "x"}}}
    with pytest.raises(SpecError) as info:
        parse_revision("svc", doc, BASE, resolver)
    where = [w for w, _ in info.value.problems]
    assert where == ["revision.name", "revision.artifact", "revision.runtime", "revision.container_concurrency",
                     "revision.timeout", "revision.annotations[autoscaling.knative.dev/min-scale]"]
    doc["revision"] = {"artifact": "/art", "annotations": {"autoscaling.knative.dev/min-scale": "x"}}
    with pytest.raises(SpecError) as info:
        parse_revision("svc", doc, BASE, resolver)
    assert info.value.problems[0][0] == "revision.annotations[autoscaling.knative.dev/min-scale]"


@pytest.mark.parametrize("doc", [None, [], {}, {"revision": "x"}])
def test_body_shape(doc):
    with pytest.raises(SpecError, match="revision"):
        parse_revision("svc", doc, BASE, resolver)


@pytest.mark.parametrize(
    ("result", "expect", "ok"),
    [
        ({"a": 1}, {"succeeded": True, "contextId": "c", "eventEntries": [{"a": 1}]}, True),
        ([1, 2], {"succeeded": True, "contextId": "c", "eventEntries": [1, 2]}, True),
        (None, {"succeeded": True, "contextId": "c", "eventEntries": []}, True),
        ({"succeeded": False, "errorMessage": "x"}, {"succeeded": False, "errorMessage": "x", "contextId": "c"}, False),
        ({"succeeded": True, "contextId": "mine", "eventEntries": []},
         {"succeeded": True, "contextId": "mine", "eventEntries": []}, True),
    ],
)
def test_normalize(result, expect, ok):
    assert normalize(result, "c") == (expect, ok)


def test_failure_message():
    assert failure(ValueError("bad"), None) == {"succeeded": False, "contextId": None, "errorMessage": "ValueError: bad"}


def test_timeline_filters():
    t = Timeline(size=3)
    t.record("a", "s1", namespace="default")
    t.record("b", "s2", namespace="default")
    t.record("c", "s1", namespace="other")
    t.record("d", "s1", namespace="default")
    assert [e["event"] for e in t.since()] == ["b", "c", "d"]  # bounded
    assert [e["event"] for e in t.since(0, "s1")] == ["c", "d"]
    assert [e["event"] for e in t.since(0, "default/s1")] == ["d"]
    assert [e["event"] for e in t.since(3)] == ["d"]


def test_scrubbed_env(monkeypatch):
    monkeypatch.setenv("KL_TOKEN", "secret")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    env = scrubbed_env({"K_SERVICE": "s"})
    assert "KL_TOKEN" not in env and "AWS_SECRET_ACCESS_KEY" not in env and env["K_SERVICE"] == "s"


@pytest.mark.parametrize(
    ("host", "path", "expect"),
    [
        ("hello.default.127.0.0.1.sslip.io", "/x?q=1", ("hello", "/x?q=1")),
        ("hello.default.example.com:8080", "/", ("hello", "/")),
        ("127.0.0.1:8080", "/default/hello/a/b?x=1", ("hello", "/a/b?x=1")),
        ("127.0.0.1:8080", "/default/hello", ("hello", "/")),
        ("127.0.0.1:8080", "/default/hello?x=1", ("hello", "/?x=1")),
        ("127.0.0.1:8080", "/default/nope/", (None, "")),
        ("nope.default.example.com", "/other/hello/", (None, "")),
    ],
)
def test_routing(host, path, expect, tmp_path):
    gw = Gateway(BASE, Launcher(tmp_path, "p"), GatewayOptions())
    spec, cfg = parse_revision("hello", {"revision": {"artifact": "/art"}}, BASE, resolver)
    gw.services[("default", "hello")] = type("S", (), {"name": "hello"})()
    svc, fwd = gw.route(host, path)
    assert (svc.name if svc else None, fwd) == expect


def test_functions_table():
    from knative_lambda.platform.serving.commands import table

    view = {"services": [{"namespace": "default", "name": "s", "traffic_revision": "s-1", "revisions": [
        {"name": "s-1", "desired": 1, "inflight": 0, "requests": 3,
         "instances": [{"id": "s-1-1", "pid": 42, "state": "ready", "inflight": 0}]}]}]}
    rows = table(view)
    assert rows[0].startswith("SERVICE") and "default/s" in rows[1] and "*" in rows[1]
    assert "pid 42" in rows[2]
