"""Pure parts of observability and security: who gets the token, tenants and quotas,
secret scrubbing, headline metrics, trace helpers, the security environment of kl up."""

from __future__ import annotations

import json
import logging

import pytest

from knative_lambda.harness.headline import render, summarize
from knative_lambda.harness.local import security_env
from knative_lambda.platform import logs, tracing
from knative_lambda.platform.broker.auth import delivery_headers, sends_token, trusted_prefixes
from knative_lambda.platform.limits import Quotas, quota_problem
from knative_lambda.platform.observe import secrets_of
from knative_lambda.platform.serving.tenancy import (
    TENANT_LABEL,
    instance_room,
    services_of,
    tenant_of,
)
from knative_lambda.settings import Settings

BUILDER = "http://127.0.0.1:5001/"


@pytest.mark.parametrize(("subscriber", "expected"), [
    ("http://127.0.0.1:5001/", True),
    ("http://127.0.0.1:5001", True),
    ("http://127.0.0.1:5001/sub/path", True),
    ("HTTP://127.0.0.1:5001/", True),
    ("http://127.0.0.1:5002/", False),  # another port: a function, not the builder
    ("https://127.0.0.1:5001/", False),
    ("http://127.0.0.1.evil.example:5001/", False),
    ("http://127.0.0.1:5001@evil.example/", False),
    ("http://evil.example/?http://127.0.0.1:5001/", False),
    ("not a url", False),
    ("", False),
])
def test_only_the_platform_receivers_get_the_token(subscriber: str, expected: bool) -> None:
    assert sends_token(subscriber, [BUILDER.rstrip("/")]) is expected


def test_a_path_prefix_matches_whole_segments_only() -> None:
    assert sends_token("http://h:1/recv/x", ["http://h:1/recv"])
    assert not sends_token("http://h:1/receiver", ["http://h:1/recv"])


def test_delivery_headers() -> None:
    assert delivery_headers(BUILDER, "tok", [BUILDER]) == {"Authorization": "Bearer tok"}
    assert delivery_headers(BUILDER, "", [BUILDER]) == {}
    assert delivery_headers("http://127.0.0.1:9/", "tok", [BUILDER]) == {}
    assert trusted_prefixes({"KL_BROKER_TOKEN_SUBSCRIBERS": " http://a:1/ ,, http://b:2/x/ "}) == [
        "http://a:1", "http://b:2/x"]
    assert trusted_prefixes({}) == []


def test_kl_up_security_environment() -> None:
    urls = {"broker": "http://127.0.0.1:1", "builder": "http://127.0.0.1:2", "deployer": "http://127.0.0.1:3"}
    secure = Settings(token="t" * 24)
    assert security_env("broker", secure, urls) == {
        "KL_RECEIVER_TOKEN": "1",
        "KL_BROKER_TOKEN_SUBSCRIBERS": "http://127.0.0.1:2/,http://127.0.0.1:3/",
    }
    assert security_env("builder", secure, urls) == {"KL_RECEIVER_TOKEN": "1"}
    assert security_env("broker", Settings(token=""), urls) == {}  # --open


@pytest.mark.parametrize(("doc", "tenant"), [
    ({"tenant": "acme"}, "acme"),
    ({"labels": {TENANT_LABEL: "acme"}}, "acme"),
    ({"tenant": "", "labels": {TENANT_LABEL: "b"}}, "b"),
    ({"tenant": 5, "labels": {TENANT_LABEL: 7}}, ""),
    ({"labels": "x"}, ""),
    ({}, ""),
    ([], ""),
    (None, ""),
    ({"tenant": "x" * 1000}, "x" * 253),
])
def test_tenant_of(doc: object, tenant: str) -> None:
    assert tenant_of(doc) == tenant


def test_services_of_and_instance_room() -> None:
    tenants = {("d", "a"): "acme", ("d", "b"): "acme", ("d", "c"): "other", ("d", "gone"): "acme"}
    assert services_of(tenants, "acme", [("d", "a"), ("d", "b"), ("d", "c")]) == 2
    assert services_of(tenants, "nobody", [("d", "a")]) == 0
    for limit, in_use, wanted, room in [(0, 99, 3, 3), (5, 0, 3, 3), (5, 4, 3, 1), (5, 5, 3, 0), (5, 9, 1, 0)]:
        assert instance_room(limit, in_use, wanted) == room


def test_quota_problem_names_tenant_and_limit() -> None:
    quotas = Quotas(services=2, instances=0, concurrent_builds=1)
    assert quota_problem(quotas, "services", "acme", 1) is None
    assert quota_problem(quotas, "services", "acme", 2) == "quota exceeded: tenant 'acme' has 2 services (limit 2)"
    assert "concurrent builds (limit 1)" in (quota_problem(quotas, "concurrent_builds", "t", 1) or "")
    assert quota_problem(quotas, "instances", "acme", 10_000) is None  # 0 = unlimited


def test_secrets_are_scrubbed_by_value() -> None:
    values = ["s3cr3t-value", "tok-abcdef"]
    assert logs.scrub("key=s3cr3t-value and tok-abcdef", values) == "key=[redacted] and [redacted]"
    assert logs.scrub("nothing here", values) == "nothing here"
    settings = Settings(token="tok-abcdef", s3_secret_key="s3cr3t-value",
                        amqp_url="amqp://user:p4ssw0rd!@127.0.0.1:5672/")
    assert secrets_of(settings) == ["tok-abcdef", "s3cr3t-value", "p4ssw0rd!"]
    assert secrets_of(Settings(amqp_url="amqp://127.0.0.1:5672/")) == []


def test_a_log_line_never_carries_a_secret() -> None:
    logs.add_secrets("tok-abcdef-123", "short")  # too short to scrub safely: ignored
    formatter = logs.JsonFormatter("unit")
    record = logging.LogRecord("kl", logging.INFO, __file__, 1, "cannot reach amqp://u:%s@h/", ("tok-abcdef-123",),
                               None)
    record.fields = {"url": "http://x/?t=tok-abcdef-123", "token": "anything", "kind": "short"}
    line = json.loads(formatter.format(record))
    assert "tok-abcdef-123" not in json.dumps(line)
    assert line["token"] == "[redacted]" and line["kind"] == "short"


METRICS = """\
# TYPE cloudevents_total counter
cloudevents_total{namespace="default",broker="default",trigger="",outcome="published"} 7.0
cloudevents_total{namespace="default",broker="default",trigger="a",outcome="delivered"} 3.0
cloudevents_total{namespace="default",broker="default",trigger="b",outcome="delivered"} 2.0
cloudevents_total{namespace="default",broker="default",trigger="b",outcome="dead_lettered"} 1.0
# TYPE kl_gateway_instances gauge
kl_gateway_instances{namespace="d",service="s",revision="r",state="ready"} 2.0
"""


def test_headline_metrics() -> None:
    assert summarize("broker", METRICS) == {"published": 7, "delivered": 5, "retried": 0, "dead-lettered": 1}
    assert summarize("gateway", METRICS) == {"requests": 0, "instances": 2, "cold starts": 0}
    assert summarize("unknown", METRICS) == {}
    assert render({"delivered": 5.0, "p": 0.25}) == "delivered 5, p 0.25"


def test_trace_helpers() -> None:
    header, trace_id = tracing.new_traceparent()
    version, tid, span_id, flags = header.split("-")
    assert (version, tid, flags) == ("00", trace_id, "01") and len(tid) == 32 and len(span_id) == 16
    spans = [
        {"name": "b", "trace_id": "t", "start_ns": 2, "end_ns": 5},
        {"name": "a", "trace_id": "t", "start_ns": 1, "end_ns": 1_000_000_001},
        {"name": "x", "trace_id": "other", "start_ns": 0, "end_ns": 1},
    ]
    mine = tracing.trace_of(spans, "t")
    assert [s["name"] for s in mine] == ["a", "b"]
    assert tracing.breakdown(mine) == {"a": 1.0, "b": 3e-9}


def test_read_spans_skips_partial_lines(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "traces").mkdir()
    (tmp_path / "traces" / "x.jsonl").write_text('{"name": "a"}\n\n{"name": "b", "tra')
    assert tracing.read_spans(tmp_path) == [{"name": "a"}]


@pytest.mark.parametrize(("text", "ratio"), [("", 0.1), ("  ", 0.1), ("0", 0.0), ("0.25", 0.25), (" 1 ", 1.0)])
def test_trace_sample_ratio(text: str, ratio: float) -> None:
    assert tracing.sample_ratio(text) == ratio


@pytest.mark.parametrize("text", ["x", "-0.1", "1.5", "nan"])
def test_trace_sample_ratio_rejects(text: str) -> None:
    from knative_lambda.errors import ConfigError

    with pytest.raises(ConfigError, match="KL_TRACE_SAMPLE"):
        tracing.sample_ratio(text)


def test_kl_up_flags() -> None:
    from click.testing import CliRunner

    from knative_lambda.harness.commands import up

    usage = CliRunner().invoke(up, ["--help"]).output
    assert "--open" in usage and "--faults" in usage


def test_the_state_file_is_readable_by_its_owner_only(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from knative_lambda.harness import state as statefile

    path = tmp_path / "env.json"
    statefile.save(statefile.State(target="local", settings={"token": "t" * 24}), path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert statefile.load(path).settings["token"] == "t" * 24


SAMPLED = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
UNSAMPLED = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"


@pytest.mark.parametrize(("traceparent", "ratio", "want"), [
    (SAMPLED, 0.0, True), (SAMPLED.encode(), 0.0, True),  # the caller's decision wins
    (UNSAMPLED, 1.0, False),
    (None, 0.0, False), (None, 1.0, True), ("garbage", 1.0, True), ("garbage", 0.0, False),  # new traces
])
def test_draw_follows_the_parent_else_the_ratio(traceparent, ratio: float, want: bool) -> None:
    assert tracing.draw(traceparent, ratio) is want


def test_draw_records_about_the_ratio_of_new_traces() -> None:
    hits = sum(tracing.draw(None, 0.1) for _ in range(20000))
    assert 1600 < hits < 2400  # 2,000 expected; outside is a 1-in-10^10 event for a fair draw


def _parent(traceparent: str):  # type: ignore[no-untyped-def]
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    return TraceContextTextMapPropagator().extract({"traceparent": traceparent})


@pytest.mark.parametrize(("parent", "attributes", "ratio", "recorded"), [
    (None, {tracing.DRAWN: True, "kl.type": "t"}, 0.0, True),  # drawn by the caller: recorded, not drawn again
    (None, {"kl.type": "t"}, 0.0, False), (None, {"kl.type": "t"}, 1.0, True),  # else the ratio
    (UNSAMPLED, {tracing.DRAWN: True}, 1.0, False), (SAMPLED, {}, 0.0, True),  # a parent's decision wins
])
def test_sampler(parent, attributes: dict, ratio: float, recorded: bool) -> None:  # type: ignore[no-untyped-def]
    sampler = tracing._Sampler(ratio)
    result = sampler.should_sample(_parent(parent) if parent else None, 0x0AF7651916CD43DD8448EB211C80319C,
                                   "broker.ingress", attributes=attributes)
    assert result.decision.is_sampled() is recorded
    if recorded:
        assert tracing.DRAWN not in result.attributes  # the mark is not a span attribute
        assert {k: v for k, v in attributes.items() if k != tracing.DRAWN}.items() <= dict(result.attributes).items()
