"""The contract's clauses, checked against whichever target --kl-target names."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from knative_lambda.contract import bindings, names
from knative_lambda.contract.events import EventKind, event_type
from knative_lambda.contract.factory import new_event

BUILD_FIELDS = {"third_party_id", "parser_id", "content_hash", "job_name", "image_uri", "status",
                "error_message", "exit_code", "duration", "correlation_id"}


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def parser_start(target, tp: str, parser: str, data=None, **extensions):
    return new_event(EventKind.PARSER_START, data or {"n": 1}, source=f"network.notifi.{tp}",
                     subject=parser, prefix=target.settings.event_prefix, extensions=extensions)


def correlation(event) -> str:
    return event.get_attributes()["correlationid"]


def replies_for(tap, corr: str, wait: float):
    """Every function reply carrying ``corr`` seen within ``wait`` seconds."""
    time.sleep(wait)
    return [e for e in tap.events if e.get_attributes().get("correlationid") == corr]


def trigger_stats(target, name: str) -> dict:
    return next((t for t in target.triggers() if t.get("name") == name), {})


@pytest.mark.conformance("BUILD-COMPLETE")
def test_build_start_completes_with_every_field(kl_target, source):
    tp, parser = "conf", unique("build")
    outcome = kl_target.build(tp, parser, source("hello.py"))
    assert outcome.kind == "build.complete", outcome.data
    assert set(outcome.data) >= BUILD_FIELDS, BUILD_FIELDS - set(outcome.data)
    assert outcome.data["third_party_id"] == tp and outcome.data["parser_id"] == parser
    assert outcome.data["status"] in ("success", "succeeded", "complete", "completed")
    assert len(outcome.data["content_hash"]) == 12


@pytest.mark.conformance("BUILD-NAMES")
def test_build_names_follow_the_rules(kl_target, source):
    tp, parser = "conf", unique("names")
    outcome = kl_target.build(tp, parser, source("hello.py"))
    data = outcome.data
    assert data["job_name"] == names.job_name(tp, parser, data["content_hash"])
    assert names.is_dns1123_label(data["job_name"]) and len(data["job_name"]) <= 63
    assert data["image_uri"] == names.image_uri(kl_target.settings.registry, tp, parser,
                                                data["content_hash"])


@pytest.mark.conformance("BUILD-FAILED")
def test_failing_code_ends_in_build_failed_with_the_message(kl_target, source):
    outcome = kl_target.build("conf", unique("broken"), source("syntax_error.py"))
    assert outcome.kind == "build.failed"
    message = outcome.data["error_message"]
    assert "line 4" in message or ":4" in message, message
    assert outcome.data["exit_code"] != 0


@pytest.mark.conformance("BUILD-CACHED")
def test_second_build_of_same_content_is_cached(kl_target, source):
    tp, parser = "conf", unique("cache")
    first = kl_target.build(tp, parser, source("hello.py"))
    second = kl_target.build(tp, parser)
    assert first.kind == second.kind == "build.complete"
    assert first.data.get("cached") is False
    assert second.data.get("cached") is True
    assert second.data["content_hash"] == first.data["content_hash"]


@pytest.mark.conformance("BUILD-REBUILD")
def test_rebuild_forces_a_build(kl_target, source):
    tp, parser = "conf", unique("rebuild")
    kl_target.build(tp, parser, source("hello.py"))
    forced = kl_target.build(tp, parser, rebuild=True)
    assert forced.kind == "build.complete"
    assert forced.data.get("cached") is False


@pytest.mark.conformance("INVOKE-HTTP")
def test_http_invocation_returns_the_result_shape(kl_function, kl_target, source):
    fn = kl_function(source("hello.py"))
    result = kl_target.invoke(fn, {"greeting": "hi"})
    assert result.status == 200, result.body
    assert result.body["succeeded"] is True
    assert {"contextId", "eventEntries"} <= set(result.body)
    assert "hi" in json.dumps(result.body["eventEntries"])


@pytest.mark.conformance("INVOKE-SYNC")
def test_responsetype_sync_answers_inline_with_a_result_event(kl_function, kl_target, source):
    fn = kl_function(source("hello.py"))
    event = parser_start(kl_target, fn.third_party_id, fn.parser_id, {"q": 7}, responsetype="sync")
    result = kl_target.invoke_event(fn, event)
    assert result.status == 200, result.body
    reply = bindings.from_http(result.headers, result.body)
    attrs = reply.get_attributes()
    assert attrs["type"] == event_type(EventKind.RESULT, kl_target.settings.event_prefix)
    assert attrs.get("correlationid") == correlation(event)
    assert reply.get_data()["succeeded"] is True


@pytest.mark.conformance("EVENT-TRIGGER")
def test_parser_start_event_is_delivered_and_replied(kl_function, kl_target, kl_events, source):
    fn = kl_function(source("hello.py"))
    event = parser_start(kl_target, fn.third_party_id, fn.parser_id)
    assert kl_target.publish(event) == 202
    processed = event_type(EventKind.PROCESSED, kl_target.settings.event_prefix)
    reply = kl_events.wait_for(
        lambda e: e.get_attributes().get("correlationid") == correlation(event), timeout=30)
    assert reply.get_attributes()["type"] == processed


@pytest.mark.conformance("EVENT-FILTER")
def test_events_for_another_tp_or_parser_are_not_delivered(kl_function, kl_target, kl_events, source):
    fn = kl_function(source("hello.py"))
    own = parser_start(kl_target, fn.third_party_id, fn.parser_id)
    other_parser = parser_start(kl_target, fn.third_party_id, unique("other"))
    other_tp = parser_start(kl_target, unique("tp"), fn.parser_id)
    for event in (other_parser, other_tp, own):
        assert kl_target.publish(event) == 202
    # the function's own event arriving proves delivery is live; the others must not follow
    kl_events.wait_for(lambda e: e.get_attributes().get("correlationid") == correlation(own), 30)
    assert replies_for(kl_events, correlation(other_parser), 1.0) == []
    assert replies_for(kl_events, correlation(other_tp), 0.0) == []


@pytest.mark.conformance("EVENT-DEDUPE")
def test_duplicate_events_are_processed_once(kl_function, kl_target, kl_events, source):
    fn = kl_function(source("counter.py"))
    event = parser_start(kl_target, fn.third_party_id, fn.parser_id)
    assert kl_target.publish(event) == 202
    assert kl_target.publish(event) == 202  # same source and id
    kl_events.wait_for(lambda e: e.get_attributes().get("correlationid") == correlation(event), 30)
    assert len(replies_for(kl_events, correlation(event), 1.5)) == 1


@pytest.mark.conformance("EVENT-ERROR")
def test_raising_function_replies_with_an_error_event(kl_function, kl_target, kl_events, source):
    fn = kl_function(source("failing.py"))
    event = parser_start(kl_target, fn.third_party_id, fn.parser_id)
    assert kl_target.publish(event) == 202
    reply = kl_events.wait_for(
        lambda e: e.get_attributes().get("correlationid") == correlation(event), timeout=30)
    assert reply.get_attributes()["type"] == event_type(EventKind.ERROR, kl_target.settings.event_prefix)
    assert reply.get_data()["succeeded"] is False
    assert "deliberate failure" in reply.get_data()["errorMessage"]


@pytest.mark.conformance("EVENT-DLQ")
def test_unreachable_subscriber_is_retried_then_dead_lettered(kl_function, kl_target, source):
    fn = kl_function(source("crashing.py"))
    before = trigger_stats(kl_target, fn.service)
    assert kl_target.publish(parser_start(kl_target, fn.third_party_id, fn.parser_id)) == 202
    deadline = time.monotonic() + 60
    stats = before
    while time.monotonic() < deadline:
        stats = trigger_stats(kl_target, fn.service)
        if stats.get("dead_lettered", 0) > before.get("dead_lettered", 0):
            break
        time.sleep(0.2)
    assert stats.get("dead_lettered", 0) == before.get("dead_lettered", 0) + 1, stats
    assert stats.get("retried", 0) > before.get("retried", 0)


@pytest.mark.conformance("INGRESS-MALFORMED")
@pytest.mark.parametrize("headers, body, problem", [
    ({"ce-specversion": "1.0", "ce-type": "x", "ce-source": "s", "content-type": "application/json"},
     b"{}", "id"),
    ({"ce-specversion": "0.1", "ce-id": "1", "ce-type": "x", "ce-source": "s"}, b"{}", "specversion"),
    ({"content-type": "application/cloudevents+json"}, b"{not json", "json"),
    ({"ce-specversion": "1.0", "ce-id": "1", "ce-source": "network.notifi.acme",
      "ce-type": "network.notifi.lambda.build.start", "ce-subject": "p",
      "content-type": "application/json"}, b'{"third_party_id": 7}', "third_party_id"),
])
def test_malformed_events_are_rejected_and_change_nothing(kl_target, headers, body, problem):
    before = {t.get("name"): t.get("delivered", 0) for t in kl_target.triggers()}
    status, answer = kl_target.publish_raw(headers, body)
    assert status == 400, answer
    assert problem.lower() in json.dumps(answer).lower()
    after = {t.get("name"): t.get("delivered", 0) for t in kl_target.triggers()}
    assert {k: v for k, v in after.items() if k in before} == before


@pytest.mark.conformance("SCALE-ZERO")
def test_idle_function_scales_to_zero(kl_function, kl_target, source):
    fn = kl_function(source("hello.py"))
    assert kl_target.invoke(fn, {}).status == 200
    assert kl_target.instance_count(fn) >= 1
    kl_target.wait_scaled_to_zero(fn, timeout=90)
    assert kl_target.instance_count(fn) == 0


@pytest.mark.conformance("SCALE-COLD")
def test_cold_invocation_succeeds(kl_function, kl_target, source):
    fn = kl_function(source("hello.py"))
    kl_target.wait_scaled_to_zero(fn, timeout=90)
    result = kl_target.invoke(fn, {"cold": True})
    assert result.status == 200 and result.body["succeeded"] is True


@pytest.mark.conformance("DELETE")
def test_service_delete_removes_service_and_trigger(kl_target, source):
    fn = kl_target.deploy("conf", unique("del"), source("hello.py"))
    assert kl_target.service(fn.service) is not None
    kl_target.delete(fn)
    assert kl_target.service(fn.service) is None
    assert not any(t.get("name") == fn.service for t in kl_target.triggers())
