"""Pure helpers of the benchmark kinds: cold-start breakdown, time to peak, sources."""

from __future__ import annotations

import io
import tarfile

import pytest

from knative_lambda.bench.burst import time_to_peak
from knative_lambda.bench.cold_start import breakdown
from knative_lambda.bench.functions import node_hello, python_hello, python_with_dependency


def test_breakdown_splits_a_cold_request_into_phases() -> None:
    events = [
        {"event": "instance_ready", "wall": 100.012},
        {"event": "request_buffered", "wall": 100.001},
        {"event": "process_started", "wall": 100.004},
        {"event": "scale_decision", "wall": 100.002},
        {"event": "first_byte", "wall": 100.015},
        {"event": "instance_ready", "wall": 100.5},  # a later one does not count
        {"event": "request_buffered", "wall": 99.0},  # before this request: ignored
    ]
    phases = breakdown(events, start=100.0, end=100.016)
    assert phases == pytest.approx({"request_buffered": 0.001, "scale_decision": 0.001,
                                    "process_started": 0.002, "instance_ready": 0.008,
                                    "first_byte": 0.003, "respond": 0.001})
    assert sum(phases.values()) == pytest.approx(0.016)


def test_breakdown_without_timeline_is_all_respond() -> None:
    assert breakdown([], start=1.0, end=1.25) == pytest.approx({"respond": 0.25})


def test_breakdown_skips_missing_phases() -> None:
    phases = breakdown([{"event": "instance_ready", "wall": 2.0}], start=1.0, end=2.5)
    assert phases == pytest.approx({"instance_ready": 1.0, "respond": 0.5})


@pytest.mark.parametrize("t, v, expected", [
    ([], [], None),
    ([0.0, 0.1, 0.2], [0, 3, 3], 0.1),
    ([0.0, 0.1, 0.2, 0.3], [1, 2, 5, 4], 0.2),
    ([0.0], [0], 0.0),
])
def test_time_to_peak(t, v, expected) -> None:
    assert time_to_peak(t, v) == expected


def test_nonce_changes_content_and_plain_source_is_stable() -> None:
    assert python_hello() == python_hello()
    assert python_hello("a") != python_hello("b") != python_hello()
    assert node_hello("a") != node_hello()
    compile(python_hello("x"), "handler.py", "exec")


def test_dependency_source_is_an_archive_with_requirements() -> None:
    with tarfile.open(fileobj=io.BytesIO(python_with_dependency("n")), mode="r:gz") as archive:
        names = archive.getnames()
        assert sorted(names) == ["handler.py", "requirements.txt"]
        assert b"six" in archive.extractfile("requirements.txt").read()
