"""OpenTelemetry tracing for platform processes.

Spans go to OTLP/HTTP when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set, else to a
local JSON-lines file (``<data_dir>/traces/<component>.jsonl``) that the
cold-start benchmark and tests read. ``KL_TRACE_SAMPLE`` (0..1, default 0.1, the
rate of Knative's own tracing example) is the share of new traces recorded: at
thousands of events a second, recording every one would cost the broker a fifth of
its CPU and fill the disk by gigabytes an hour; a caller's sampled ``traceparent``
is always followed. Context crosses process boundaries in the
W3C ``traceparent`` header (HTTP) or message header (AMQP); every span carries
the event's correlation id as ``kl.correlation_id``.
"""

from __future__ import annotations

import json
import os
import random
import re
import threading
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from opentelemetry import context, propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import (
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from knative_lambda.errors import ConfigError

_configured = False
_file_exporter: JsonLinesExporter | None = None
_tracers: dict[str, trace.Tracer] = {}
# The platform's own hops carry W3C trace context only: half the cost of the global
# composite propagator (which adds baggage) on the broker's per-event path.
_W3C = TraceContextTextMapPropagator()


class JsonLinesExporter(SpanExporter):
    """Append finished spans as JSON lines (one small record per span)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._out: TextIO | None = None  # held open by hold_open()

    def hold_open(self) -> None:
        """Open the file now and keep it: an instance that gives up root can still write."""
        with self._lock:
            if self._out is None:
                self._out = open(self.path, "a")  # noqa: SIM115 - closed by shutdown()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        text = "".join(json.dumps(span_record(s)) + "\n" for s in spans)
        with self._lock:
            if self._out is not None:
                self._out.write(text)
                self._out.flush()
            else:
                with open(self.path, "a") as out:
                    out.write(text)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        with self._lock:
            if self._out is not None:
                self._out.close()
                self._out = None


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


DEFAULT_SAMPLE = 0.1


def sample_ratio(text: str) -> float:
    """``KL_TRACE_SAMPLE``: the share of new traces recorded, 0..1 (default 0.1). Pure."""
    try:
        ratio = float(text) if text.strip() else DEFAULT_SAMPLE
    except ValueError:
        raise ConfigError(f"KL_TRACE_SAMPLE={text!r}: use a number from 0 to 1") from None
    if not 0.0 <= ratio <= 1.0:
        raise ConfigError(f"KL_TRACE_SAMPLE={text!r}: use a number from 0 to 1")
    return ratio


DRAWN = "kl.sampled"  # span attribute: the caller drew this new trace's sampling already


class _Sampler(Sampler):
    """ParentBased(TraceIdRatioBased): record a share of new traces, and always follow the
    caller's decision (a request with a sampled ``traceparent``, a benchmark's, is recorded
    end to end, even with ``KL_TRACE_SAMPLE=0``). A hot path that drew the ratio itself
    before paying for a span (:func:`draw`) marks the span :data:`DRAWN`: recorded."""

    def __init__(self, ratio: float) -> None:
        self._inner = ParentBased(TraceIdRatioBased(ratio))

    def should_sample(self, parent_context: Any, trace_id: int, name: str, kind: Any = None,
                      attributes: Any = None, links: Any = None, trace_state: Any = None) -> SamplingResult:
        if attributes and DRAWN in attributes:
            attributes = {k: v for k, v in attributes.items() if k != DRAWN}
            parent = trace.get_current_span(parent_context).get_span_context()
            if not parent.is_valid:
                return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes)
        return self._inner.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)

    def get_description(self) -> str:
        return f"KlSampler{{{self._inner.get_description()}}}"


def sampler_from_env() -> Sampler:
    return _Sampler(sample_ratio(os.environ.get("KL_TRACE_SAMPLE", "")))


def draw(traceparent: object, ratio: float) -> bool:
    """Is a request with this ``traceparent`` (value or None) recorded: its parent's decision,
    or for a new trace a draw at ``ratio``. A path that skips its span when False pays nothing
    for the requests it does not record; start the span with ``drawn=True`` when True."""
    sampled = parent_sampled(traceparent)
    return random.random() < ratio if sampled is None else sampled


def setup(component: str, data_dir: Path, file_stem: str = "", otlp_endpoint: str | None = None) -> None:
    """Install the tracer provider once per process.

    ``file_stem`` names the local file when several processes of one component
    write at once (function instances: ``runtime-<pid>``); ``otlp_endpoint``
    overrides ``OTEL_EXPORTER_OTLP_ENDPOINT`` (an instance's environment is scrubbed).
    """
    global _configured
    if _configured:
        return
    provider = TracerProvider(resource=Resource.create({"service.name": f"kl-{component}"}),
                              sampler=sampler_from_env())
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") if otlp_endpoint is None else otlp_endpoint
    if endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter: SpanExporter = OTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces")
    else:
        global _file_exporter
        exporter = _file_exporter = JsonLinesExporter(Path(data_dir) / "traces" / f"{file_stem or component}.jsonl")
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=200))
    trace.set_tracer_provider(provider)
    _tracers.clear()
    _configured = True


def hold_file() -> None:
    """Open this process's span file now (before it gives up the rights to open it)."""
    if _file_exporter is not None:
        _file_exporter.hold_open()


def flush(timeout_ms: int = 2000) -> None:
    """Export what is buffered now (before a process exits)."""
    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider):
        provider.force_flush(timeout_ms)


def tracer(name: str = "knative_lambda") -> trace.Tracer:
    # get_tracer costs more than a whole span (it checks warnings): look it up once
    found = _tracers.get(name)
    if found is None:
        found = _tracers[name] = trace.get_tracer(name)
    return found


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


def start_span(carrier: Mapping[str, Any], name: str, correlation: str = "", drawn: bool = False,
               **attributes: Any) -> trace.Span:
    """A span continuing ``carrier``'s trace, not made current: the caller ends it
    (``span.end()``) and passes it on with :func:`inject_span`. For code where a
    ``with`` block would not fit (the broker's delivery loop). ``drawn``: :func:`draw`
    said to record it (a new trace is then recorded, not drawn again)."""
    lowered = {str(k).lower(): (v.decode() if isinstance(v, bytes) else str(v)) for k, v in carrier.items()
               if str(k).lower() in ("traceparent", "tracestate")}
    span = tracer().start_span(name, context=_W3C.extract(lowered), attributes={DRAWN: True} if drawn else None)
    if correlation:
        span.set_attribute("kl.correlation_id", correlation)
    for key, value in attributes.items():
        span.set_attribute(f"kl.{key}", value)
    return span


def inject_span(span: trace.Span, carrier: MutableMapping[str, Any]) -> None:
    """Write ``span``'s context into outgoing headers."""
    _W3C.inject(carrier, context=trace.set_span_in_context(span))


def read_spans(data_dir: Path) -> list[dict[str, Any]]:
    """Every span the local platform wrote (for benchmarks and tests)."""
    spans = []
    for path in sorted((Path(data_dir) / "traces").glob("*.jsonl")):
        for line in path.read_text().splitlines():
            try:
                spans.append(json.loads(line))
            except ValueError:  # blank, or a line still being written by another process
                continue
    return spans


# A version-00 W3C traceparent as OpenTelemetry's propagator accepts it (no all-zero ids).
_TRACEPARENT = re.compile(r"[ \t]*00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-([0-9a-f]{2})[ \t]*\Z")


def parent_sampled(value: object) -> bool | None:
    """The sampled flag of a ``traceparent`` header value (str or AMQP bytes); None when
    absent or malformed (then a new trace starts). Pure.

    A request whose parent is not sampled is never recorded (the sampler follows its
    parent), so the per-request paths skip its span altogether.
    """
    if isinstance(value, bytes | bytearray):
        value = value.decode("latin-1")
    match = _TRACEPARENT.match(value) if isinstance(value, str) else None
    return None if match is None else bool(int(match.group(1), 16) & 1)


def new_traceparent() -> tuple[str, str]:
    """A fresh sampled W3C ``traceparent`` value and its trace id (hex), for a caller
    that wants to find its request's spans afterwards (the cold-start benchmark)."""
    trace_id, span_id = os.urandom(16).hex(), os.urandom(8).hex()
    return f"00-{trace_id}-{span_id}-01", trace_id


def trace_of(spans: list[dict[str, Any]], trace_id: str) -> list[dict[str, Any]]:
    """The spans of one trace, earliest first (pure)."""
    return sorted((s for s in spans if s.get("trace_id") == trace_id), key=lambda s: s.get("start_ns") or 0)


def breakdown(spans: list[dict[str, Any]]) -> dict[str, float]:
    """Seconds per span name of one trace (the first span of each name), for a report (pure)."""
    out: dict[str, float] = {}
    for span in spans:
        if span["name"] not in out and span.get("end_ns") and span.get("start_ns"):
            out[span["name"]] = (span["end_ns"] - span["start_ns"]) / 1e9
    return out


def wait_for_trace(data_dir: Path, trace_id: str, names: Sequence[str] = (), timeout: float = 5.0
                   ) -> list[dict[str, Any]]:
    """The spans of ``trace_id`` once every name in ``names`` is there (or at the timeout).

    Spans are exported in batches (every 200 ms), so a request's spans appear a
    moment after its answer. Usage from a benchmark::

        header, trace_id = tracing.new_traceparent()
        httpx.post(url, json=..., headers={"traceparent": header})
        spans = tracing.wait_for_trace(data_dir, trace_id, ["gateway.request", "instance.invoke"])
        tracing.breakdown(spans)  # {"gateway.request": 0.0123, "instance.invoke": 0.0008}
    """
    import time

    deadline = time.monotonic() + timeout
    while True:
        spans = trace_of(read_spans(data_dir), trace_id)
        if set(names) <= {s["name"] for s in spans} or time.monotonic() >= deadline:
            return spans
        time.sleep(0.1)
