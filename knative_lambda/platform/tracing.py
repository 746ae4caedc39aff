"""OpenTelemetry tracing for platform processes.

Spans go to OTLP/HTTP when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set, else to a
local JSON-lines file (``<data_dir>/traces/<component>.jsonl``) that the
cold-start benchmark and tests read. Context crosses process boundaries in the
W3C ``traceparent`` header (HTTP) or message header (AMQP); every span carries
the event's correlation id as ``kl.correlation_id``.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from opentelemetry import context, propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

_configured = False


class JsonLinesExporter(SpanExporter):
    """Append finished spans as JSON lines (one small record per span)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = [json.dumps(span_record(s)) for s in spans]
        with self._lock, open(self.path, "a") as out:
            out.write("".join(line + "\n" for line in lines))
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


def span_record(span: ReadableSpan) -> dict[str, Any]:
    ctx = span.get_span_context()
    return {
        "name": span.name,
        "trace_id": format(ctx.trace_id, "032x"),
        "span_id": format(ctx.span_id, "016x"),
        "parent_id": format(span.parent.span_id, "016x") if span.parent else None,
        "start_ns": span.start_time,
        "end_ns": span.end_time,
        "service": span.resource.attributes.get("service.name"),
        "attributes": dict(span.attributes or {}),
    }


def setup(component: str, data_dir: Path) -> None:
    """Install the tracer provider once per process."""
    global _configured
    if _configured:
        return
    provider = TracerProvider(resource=Resource.create({"service.name": f"kl-{component}"}))
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter: SpanExporter = OTLPSpanExporter()
    else:
        exporter = JsonLinesExporter(Path(data_dir) / "traces" / f"{component}.jsonl")
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=200))
    trace.set_tracer_provider(provider)
    _configured = True


def tracer(name: str = "knative_lambda") -> trace.Tracer:
    return trace.get_tracer(name)


def inject(carrier: MutableMapping[str, Any]) -> None:
    """Write the current trace context into outgoing headers."""
    propagate.inject(carrier)


@contextmanager
def span_from(carrier: Mapping[str, Any], name: str, correlation: str = "",
              **attributes: Any) -> Iterator[trace.Span]:
    """A span continuing the trace found in ``carrier`` (incoming headers)."""
    lowered = {str(k).lower(): str(v) for k, v in carrier.items()}
    token = context.attach(propagate.extract(lowered))
    try:
        with tracer().start_as_current_span(name) as span:
            if correlation:
                span.set_attribute("kl.correlation_id", correlation)
            for key, value in attributes.items():
                span.set_attribute(f"kl.{key}", value)
            yield span
    finally:
        context.detach(token)


def read_spans(data_dir: Path) -> list[dict[str, Any]]:
    """Every span the local platform wrote (for benchmarks and tests)."""
    spans = []
    for path in sorted((Path(data_dir) / "traces").glob("*.jsonl")):
        for line in path.read_text().splitlines():
            if line.strip():
                spans.append(json.loads(line))
    return spans
