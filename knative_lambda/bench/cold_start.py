"""Cold start: a request to a function at a true zero, through the gateway.

Between samples the function is left to scale to zero by itself (no kill), so
every sample is what a user sees after idleness. The target's timeline breaks
each sample down into phases where it has one.

Where the target can show a request's OpenTelemetry spans (the local target's
span files: ``trace_spans``), each cold request carries a sampled ``traceparent``
of its own and, after the timed part, its spans give a second breakdown, kept in
the record's ``extra["span_breakdown"]`` (per sample and medians). A sample whose
spans do not show up is counted as missing, never an error.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping
from typing import Any

from knative_lambda.bench.functions import SOURCES, unique_id
from knative_lambda.bench.runner import Recorder, register
from knative_lambda.errors import PlatformError
from knative_lambda.platform import tracing

# timeline event -> phase it ends (the phase starts where the previous event was)
PHASES = ("request_buffered", "scale_decision", "process_started", "instance_ready", "first_byte")

# The spans of a request through the gateway (gateway.py, runtime/app.py).
GATEWAY_SPAN, INSTANCE_SPAN = "gateway.request", "instance.invoke"
SPAN_PARTS = {  # per-sample key -> what it measures
    "gateway_s": "gateway.request: the whole request inside the gateway",
    "before_instance_s": "gateway.request start -> instance.invoke start: waiting for an instance "
                         "(its start on a cold request) and forwarding",
    "instance_s": "instance.invoke: the instance handling the request (the function's handle)",
    "after_instance_s": "instance.invoke end -> gateway.request end: the answer back through the gateway",
    "outside_gateway_s": "client round trip minus gateway.request: HTTP between client and gateway",
}
SPAN_WAIT_S = 5.0  # spans are exported every 200 ms: a request's appear well within this


def breakdown(events: list[dict[str, Any]], start: float, end: float) -> dict[str, float]:
    """Seconds spent before each timeline event of one cold request (pure).

    ``events`` carry ``event`` (name) and ``wall`` (wall-clock seconds); the first
    event of each name at or after ``start`` counts. Missing events are skipped,
    so a target with a coarser timeline still gives what it knows.
    """
    firsts: dict[str, float] = {}
    for ev in sorted(events, key=lambda e: e.get("wall", 0.0)):
        name, ts = ev.get("event"), ev.get("wall")
        if name in PHASES and ts is not None and ts >= start and name not in firsts:
            firsts[name] = ts
    phases, previous = {}, start
    for name in PHASES:
        if name in firsts:
            phases[name] = max(0.0, firsts[name] - previous)
            previous = firsts[name]
    phases["respond"] = max(0.0, end - previous)
    return phases


def _ended(span: dict[str, Any]) -> bool:
    return isinstance(span.get("start_ns"), int) and isinstance(span.get("end_ns"), int)


def span_sample(spans: list[dict[str, Any]], client_s: float | None = None) -> dict[str, Any]:
    """One cold request's span breakdown, from the spans of its trace (pure).

    Seconds per :data:`SPAN_PARTS` key that the spans allow, ``buffered`` (the
    gateway waited for an instance) and ``missing``: the span names not found.
    The instance span is the gateway span's child that answered (the last one
    started: a retried request has two).
    """
    gateways = [s for s in spans if s.get("name") == GATEWAY_SPAN and _ended(s)]
    gateway = gateways[0] if gateways else None
    instances = [s for s in spans if s.get("name") == INSTANCE_SPAN and _ended(s)
                 and (gateway is None or s.get("parent_id") == gateway.get("span_id"))]
    instance = max(instances, key=lambda s: s["start_ns"]) if instances else None
    out: dict[str, Any] = {"missing": [n for n, s in ((GATEWAY_SPAN, gateway), (INSTANCE_SPAN, instance))
                                       if s is None]}
    if gateway is not None:
        out["gateway_s"] = (gateway["end_ns"] - gateway["start_ns"]) / 1e9
        buffered = (gateway.get("attributes") or {}).get("kl.buffered")
        if isinstance(buffered, bool):
            out["buffered"] = buffered
        if client_s is not None:
            out["outside_gateway_s"] = client_s - out["gateway_s"]
    if instance is not None:
        out["instance_s"] = (instance["end_ns"] - instance["start_ns"]) / 1e9
    if gateway is not None and instance is not None:
        out["before_instance_s"] = (instance["start_ns"] - gateway["start_ns"]) / 1e9
        out["after_instance_s"] = (gateway["end_ns"] - instance["end_ns"]) / 1e9
    return out


def summarize_span_samples(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians of each span part over the samples that have it, and how many samples
    lacked spans (pure). ``samples`` are :func:`span_sample` results."""
    complete = [s for s in samples if not s.get("missing")]
    medians = {}
    for key in SPAN_PARTS:
        values = [float(s[key]) for s in samples if isinstance(s.get(key), int | float)]
        if values:
            medians[key] = statistics.median(values)
    summary: dict[str, Any] = {
        "samples": len(samples),
        "complete": len(complete),
        "missing": len(samples) - len(complete),
        "buffered": sum(1 for s in samples if s.get("buffered") is True),
        "median_s": medians,
    }
    if summary["missing"]:
        names = sorted({n for s in samples for n in s.get("missing", [])})
        summary["note"] = (f"{summary['missing']} of {len(samples)} samples lack span(s) "
                           f"{', '.join(names)}; their medians use the samples that have them")
    return summary


def _record_spans(rec: Recorder, samples: list[dict[str, Any]]) -> None:
    rec.note("span_breakdown", {"spans": [GATEWAY_SPAN, INSTANCE_SPAN], "parts": SPAN_PARTS,
                                "summary": summarize_span_samples(samples), "per_sample": samples})


@register("cold_start")
def run(target: Any, params: Mapping[str, Any], rec: Recorder) -> None:
    iterations = int(params.get("iterations", 10))
    runtime = str(params.get("runtime", "python"))
    zero_timeout = float(params.get("zero_timeout_s", 60))
    # a target's spans of one trace, or None when it keeps none this process can read
    read_trace: Callable[..., list[dict[str, Any]] | None] | None = getattr(target, "trace_spans", None)
    span_samples: list[dict[str, Any]] = []
    fn = target.deploy("bench", unique_id("cold"), SOURCES[runtime]())
    try:
        for i in range(iterations):
            target.wait_scaled_to_zero(fn, timeout=zero_timeout)
            header, trace_id = tracing.new_traceparent() if read_trace else ("", "")
            start = time.time()
            extra = {"headers": {"traceparent": header}} if header else {}
            result = None
            with rec.timed():
                result = target.invoke(fn, {"i": i}, **extra)
                if result.status != 200:
                    raise PlatformError(f"HTTP {result.status}: {str(result.body)[:120]}")
            end = time.time()
            try:
                rec.phases(**breakdown(target.timeline(fn, since=start - 1), start, end))
            except Exception:  # a target without a timeline still gives the samples
                pass
            if read_trace and result is not None and result.status == 200:
                try:
                    spans = read_trace(trace_id, [GATEWAY_SPAN, INSTANCE_SPAN], timeout=SPAN_WAIT_S)
                except Exception:  # unreadable span files: this sample's spans are missing
                    spans = []
                if spans is None:  # this target has no span files: no span breakdown
                    read_trace = None
                else:
                    span_samples.append({"trace_id": trace_id, **span_sample(spans, result.elapsed_s)})
                    _record_spans(rec, span_samples)
            rec.progress(i + 1, iterations, "cold starts")
            if rec.time_left() == 0:
                break
    finally:
        target.delete(fn)
