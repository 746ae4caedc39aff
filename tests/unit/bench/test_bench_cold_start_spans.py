"""The cold-start benchmark's span breakdown: per-sample parts, the summary, the report
rows, and the sampler following a benchmark's sampled traceparent."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.sampling import Decision
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from knative_lambda.bench import cold_start
from knative_lambda.bench.cold_start import SPAN_PARTS, span_sample, summarize_span_samples
from knative_lambda.bench.report import render, span_rows
from knative_lambda.bench.results import BenchmarkRecord, RunRecord
from knative_lambda.bench.runner import Recorder
from knative_lambda.harness.targets.base import Invocation
from knative_lambda.platform import tracing

MS = 1_000_000  # ns


def _span(name: str, span_id: str, parent: str | None, start_ms: float, end_ms: float,
          **attributes: Any) -> dict[str, Any]:
    return {"name": name, "trace_id": "t", "span_id": span_id, "parent_id": parent,
            "start_ns": int(start_ms * MS), "end_ns": int(end_ms * MS), "attributes": attributes}


def _cold_trace() -> list[dict[str, Any]]:
    return [_span("gateway.request", "g", "client", 1000, 1250, **{"kl.buffered": True}),
            _span("instance.invoke", "i", "g", 1230, 1245)]


def test_a_full_trace_splits_into_gateway_wait_instance_and_return() -> None:
    sample = span_sample(_cold_trace(), client_s=0.26)
    assert sample["missing"] == [] and sample["buffered"] is True
    assert sample["gateway_s"] == pytest.approx(0.25)
    assert sample["before_instance_s"] == pytest.approx(0.23)
    assert sample["instance_s"] == pytest.approx(0.015)
    assert sample["after_instance_s"] == pytest.approx(0.005)
    assert sample["outside_gateway_s"] == pytest.approx(0.01)
    assert set(sample) - {"missing", "buffered"} == set(SPAN_PARTS)


def test_a_retried_request_counts_the_instance_that_answered() -> None:
    spans = [*_cold_trace(), _span("instance.invoke", "j", "g", 1240, 1248),
             _span("instance.invoke", "k", "elsewhere", 1241, 1300)]  # another request's child
    sample = span_sample(spans)
    assert sample["instance_s"] == pytest.approx(0.008)
    assert "outside_gateway_s" not in sample  # no client time given


def test_missing_spans_are_named_not_guessed() -> None:
    gateway_only = span_sample(_cold_trace()[:1], client_s=0.3)
    assert gateway_only["missing"] == ["instance.invoke"]
    assert set(gateway_only) == {"missing", "buffered", "gateway_s", "outside_gateway_s"}
    assert span_sample([]) == {"missing": ["gateway.request", "instance.invoke"]}
    unfinished = [{**_cold_trace()[0], "end_ns": None}]
    assert span_sample(unfinished)["missing"] == ["gateway.request", "instance.invoke"]


def test_summary_gives_medians_and_counts_missing_samples() -> None:
    samples = [
        {"missing": [], "gateway_s": 0.2, "instance_s": 0.01, "buffered": True},
        {"missing": [], "gateway_s": 0.4, "instance_s": 0.03, "buffered": True},
        {"missing": ["instance.invoke"], "gateway_s": 0.9, "buffered": False},
        {"missing": ["gateway.request", "instance.invoke"]},
    ]
    summary = summarize_span_samples(samples)
    assert summary["samples"] == 4 and summary["complete"] == 2 and summary["missing"] == 2
    assert summary["buffered"] == 2
    assert summary["median_s"] == pytest.approx({"gateway_s": 0.4, "instance_s": 0.02})
    assert "2 of 4 samples lack span(s) gateway.request, instance.invoke" in summary["note"]
    assert "note" not in summarize_span_samples(samples[:2])
    assert summarize_span_samples([]) == {"samples": 0, "complete": 0, "missing": 0, "buffered": 0,
                                          "median_s": {}}


def _record(extra: dict[str, Any]) -> RunRecord:
    bench = BenchmarkRecord(name="cold_start", kind="cold_start", status="ok", extra=extra)
    return RunRecord(metadata={"target": "local"}, benchmarks=[bench])


def test_the_report_shows_span_medians_when_present() -> None:
    summary = summarize_span_samples([span_sample(_cold_trace(), 0.26), {"missing": ["instance.invoke"]}])
    record = _record({"span_breakdown": {"parts": SPAN_PARTS, "summary": summary}})
    rows = span_rows(record.benchmarks)
    assert {r["part"]: r["median_s"] for r in rows} == pytest.approx(summary["median_s"])
    assert all(r["samples"] == "1 of 2" for r in rows)
    doc, out = render([record])
    assert 'id="spans"' in doc and "before_instance_s" in doc and "230 ms" in doc
    assert "1 of 2 samples lack span(s) instance.invoke" in doc
    assert out["span_breakdown"] == rows


def test_the_report_says_when_no_sample_had_spans_and_omits_the_section_without_them() -> None:
    none_found = summarize_span_samples([{"missing": ["gateway.request", "instance.invoke"]}])
    rows = span_rows(_record({"span_breakdown": {"summary": none_found}}).benchmarks)
    assert [(r["part"], r["median_s"], r["what"]) for r in rows] == [("-", None, "no spans found")]
    assert 'id="spans"' in render([_record({"span_breakdown": {"summary": none_found}})])[0]
    assert 'id="spans"' not in render([_record({})])[0]


def test_a_benchmark_traceparent_is_sampled_even_when_new_traces_are_not(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KL_TRACE_SAMPLE", "0")
    sampler = tracing.sampler_from_env()
    header, trace_id = tracing.new_traceparent()
    parent = TraceContextTextMapPropagator().extract({"traceparent": header})
    followed = sampler.should_sample(parent, int(trace_id, 16), "gateway.request")
    assert followed.decision is Decision.RECORD_AND_SAMPLE
    assert trace.get_current_span(parent).get_span_context().trace_flags.sampled
    root = sampler.should_sample(None, int(trace_id, 16), "gateway.request")
    assert root.decision is Decision.DROP


class _Target:
    """Just enough of a target for the benchmark's control flow (the real one: integration)."""

    def __init__(self, spans: list[dict[str, Any]] | None) -> None:
        self.spans, self.headers, self.asked = spans, [], 0

    def deploy(self, *_: Any) -> str:
        return "fn"

    def wait_scaled_to_zero(self, *_: Any, **__: Any) -> float:
        return 0.0

    def invoke(self, fn: str, data: Any, **kwargs: Any) -> Invocation:
        self.headers.append(kwargs.get("headers"))
        return Invocation(200, {}, elapsed_s=0.3)

    def timeline(self, *_: Any, **__: Any) -> list[dict[str, Any]]:
        return []

    def delete(self, *_: Any) -> None:
        return None

    def trace_spans(self, trace_id: str, names: Any = (), *, timeout: float = 5.0) -> Any:
        self.asked += 1
        return self.spans


def _run(target: _Target, iterations: int = 3) -> BenchmarkRecord:
    record = BenchmarkRecord(name="cold_start", kind="cold_start")
    cold_start.run(target, {"iterations": iterations}, Recorder(record))
    return record


def test_missing_spans_are_recorded_as_missing_not_as_errors() -> None:
    target = _Target([])
    record = _run(target)
    assert len(record.measurements["cold_start"].samples) == 3 and record.measurements["cold_start"].errors == 0
    spans = record.extra["span_breakdown"]
    assert spans["summary"]["missing"] == 3 and "3 of 3 samples lack" in spans["summary"]["note"]
    assert len({h["traceparent"] for h in target.headers}) == 3  # a trace of its own per request
    assert [s["trace_id"] for s in spans["per_sample"]] == [h["traceparent"].split("-")[1] for h in target.headers]


def test_a_target_without_span_files_gets_no_span_breakdown() -> None:
    target = _Target(None)
    record = _run(target)
    assert "span_breakdown" not in record.extra and target.asked == 1  # asked once, then not again
    assert target.headers[1:] == [None, None]
    assert len(record.measurements["cold_start"].samples) == 3
