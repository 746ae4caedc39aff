"""The cold-start benchmark on the local platform reads each cold request's spans:
real gateway, real instance process, real span files."""

from __future__ import annotations

from typing import Any

import pytest

from knative_lambda.bench import cold_start
from knative_lambda.bench.results import BenchmarkRecord
from knative_lambda.bench.runner import Recorder

pytestmark = pytest.mark.slow


def test_a_cold_request_trace_gives_gateway_and_instance_spans(kl_target: Any) -> None:
    if kl_target.name != "local":
        pytest.skip("span files are the local target's")
    record = BenchmarkRecord(name="cold_start", kind="cold_start")
    cold_start.run(kl_target, {"iterations": 2, "zero_timeout_s": 30}, Recorder(record))

    measured = record.measurements["cold_start"]
    assert len(measured.samples) == 2 and measured.errors == 0, measured.error_messages
    assert record.breakdown, "the timeline breakdown is still there"
    spans = record.extra["span_breakdown"]
    summary = spans["summary"]
    assert (summary["samples"], summary["complete"], summary["missing"]) == (2, 2, 0), spans
    assert summary["buffered"] == 2  # both were cold: the gateway waited for an instance
    for sample, client_s in zip(spans["per_sample"], measured.samples, strict=True):
        assert sample["missing"] == [] and len(sample["trace_id"]) == 32
        assert 0 < sample["instance_s"] < sample["gateway_s"] <= client_s
        assert sample["before_instance_s"] > 0 and sample["after_instance_s"] >= 0
        parts = sample["before_instance_s"] + sample["instance_s"] + sample["after_instance_s"]
        assert parts == pytest.approx(sample["gateway_s"], abs=1e-6)
    assert set(summary["median_s"]) == set(cold_start.SPAN_PARTS)
