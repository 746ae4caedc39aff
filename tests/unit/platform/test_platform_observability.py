"""Structured logs and trace propagation (pure parts, in process)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from knative_lambda.platform import logs, tracing


def test_redact_hides_every_secret_looking_key() -> None:
    fields = {"token": "t", "S3_SECRET_KEY": "s", "Authorization": "Bearer x", "tp": "acme",
              "aws_access_key_id": "k", "password": "p"}
    assert logs.redact(fields) == {"token": "[redacted]", "S3_SECRET_KEY": "[redacted]",
                                   "Authorization": "[redacted]", "tp": "acme",
                                   "aws_access_key_id": "[redacted]", "password": "[redacted]"}


def test_json_lines_carry_component_correlation_and_decision() -> None:
    formatter = logs.JsonFormatter("builder")
    record = logging.LogRecord("kl", logging.INFO, __file__, 1, "build", None, None)
    record.fields = {"decision": "build", "parser": "p1", "token": "secret-value"}
    token = logs.correlation_id.set("c0ffee")
    try:
        line = json.loads(formatter.format(record))
    finally:
        logs.correlation_id.reset(token)
    assert line["component"] == "builder" and line["correlation_id"] == "c0ffee"
    assert line["decision"] == "build" and line["parser"] == "p1"
    assert "secret-value" not in json.dumps(line)


def test_trace_context_crosses_a_header_boundary(tmp_path: Path) -> None:
    exporter = tracing.JsonLinesExporter(tmp_path / "traces" / "t.jsonl")
    provider = TracerProvider(resource=Resource.create({"service.name": "kl-test"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    headers: dict[str, str] = {}
    with tracer.start_as_current_span("ingress"):
        tracing.inject(headers)
    assert "traceparent" in headers
    from opentelemetry import context, propagate

    token = context.attach(propagate.extract(headers))
    try:
        with tracer.start_as_current_span("instance") as span:
            span.set_attribute("kl.correlation_id", "c1")
    finally:
        context.detach(token)
    spans = tracing.read_spans(tmp_path)
    by_name = {s["name"]: s for s in spans}
    assert by_name["instance"]["trace_id"] == by_name["ingress"]["trace_id"]
    assert by_name["instance"]["parent_id"] == by_name["ingress"]["span_id"]
    assert by_name["instance"]["attributes"]["kl.correlation_id"] == "c1"
