"""The pure parts of kl emit / kl triggers: type resolution, event building, batches, the table."""

from __future__ import annotations

import json

import pytest

from knative_lambda.contract.errors import ContractError
from knative_lambda.contract.events import EventKind
from knative_lambda.errors import ConfigError
from knative_lambda.platform.broker.commands import (
    build_event,
    format_triggers,
    load_settings,
    parse_batch,
    resolve_type,
)

P = "network.notifi.lambda"


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("build.start", EventKind.BUILD_START),
        ("parser.start", EventKind.PARSER_START),
        (f"{P}.build.complete", EventKind.BUILD_COMPLETE),
        ("service.delete", EventKind.SERVICE_DELETE),
    ],
)
def test_resolve_type(text, kind):
    assert resolve_type(text, P) is kind


@pytest.mark.parametrize("text", ["", "build", "com.example.build.start", "build.start.x"])
def test_resolve_type_rejects_with_the_choices(text):
    with pytest.raises(ConfigError, match="build.start"):
        resolve_type(text, P)


def test_build_event_derives_source_and_subject_from_data():
    ev = build_event("build.start", None, None, {"third_party_id": "acme", "parser_id": "p1"}, P)
    assert ev.get_type() == f"{P}.build.start"
    assert ev.get_source() == "network.notifi.acme" and ev.get_subject() == "p1"


def test_build_event_needs_a_source_when_it_cannot_be_derived():
    with pytest.raises(ConfigError, match="--source"):
        build_event("parser.start", None, "p1", {"x": 1}, P)


def test_build_event_checks_the_contract():
    with pytest.raises(ContractError):
        build_event("build.start", "network.notifi.acme", "p1", {"parser_id": 3}, P)


def test_parse_batch_accepts_both_line_forms_and_skips_blank_lines():
    structured = {"specversion": "1.0", "id": "x1", "source": "network.notifi.acme",
                  "type": f"{P}.parser.start", "subject": "p1", "data": {"a": 1}}
    lines = [json.dumps(structured), "",
             json.dumps({"type": "parser.start", "source": "network.notifi.acme", "subject": "p2",
                         "data": {"b": 2}})]
    events = parse_batch(lines, P)
    assert [e.get_subject() for e in events] == ["p1", "p2"]
    assert events[0].get_id() == "x1"


def test_parse_batch_reports_every_bad_line_and_sends_nothing():
    lines = ["{nope", json.dumps([1]), json.dumps({"type": "bogus", "source": "s"}),
             json.dumps({"type": "parser.start", "source": "network.notifi.acme", "subject": "ok"})]
    with pytest.raises(ConfigError) as info:
        parse_batch(lines, P)
    msg = str(info.value)
    assert "3 bad line(s)" in msg and "line 1" in msg and "line 2" in msg and "line 3" in msg
    assert "line 4" not in msg


def test_format_triggers():
    items = [{"namespace": "default", "name": "t1", "broker": "default", "filter": "type=a.b",
              "subscriber": "http://127.0.0.1:1/", "queue_depth": 3, "delivered": 10,
              "retried": 2, "dead_lettered": 1},
             {"namespace": "ns2", "name": "t2", "broker": "b", "filter": "x" * 100,
              "subscriber": "http://h/", "queue_depth": None, "delivered": 0, "retried": 0,
              "dead_lettered": 0}]
    lines = format_triggers(items).splitlines()
    assert lines[0].split() == ["NAME", "BROKER", "FILTER", "SUBSCRIBER", "DEPTH", "DELIVERED",
                                "RETRIED", "DEAD-LETTERED"]
    assert lines[1].split() == ["t1", "default", "type=a.b", "http://127.0.0.1:1/", "3", "10", "2", "1"]
    assert lines[2].startswith("ns2/t2") and "…" in lines[2] and " - " in lines[2]
    assert format_triggers([]).endswith("(no triggers)")


def test_load_settings_reads_the_state_file(tmp_path, monkeypatch):
    monkeypatch.delenv("KL_BROKER_URL", raising=False)
    state = tmp_path / "env.json"
    state.write_text(json.dumps({"settings": {"broker_url": "http://127.0.0.1:9", "token": "t",
                                              "unknown": 1}}))
    s = load_settings(str(state))
    assert s.broker_url == "http://127.0.0.1:9" and s.token == "t"
    with pytest.raises(ConfigError, match="kl up"):
        load_settings(str(tmp_path / "missing.json"))
