"""Conformance suite: target-agnostic; the target comes from --kl-target."""

import uuid
from pathlib import Path

import pytest

from scenarios.conformance.clauses import CLAUSES

FUNCTIONS = Path(__file__).parent / "functions"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        marker = item.get_closest_marker("conformance")
        if marker is not None:
            clause = marker.args[0]
            assert clause in CLAUSES, f"{item.nodeid} names unknown clause {clause}"
            item.user_properties.append(("clause", clause))


@pytest.fixture
def source():
    """``source(name)``: a function's code, made unique per call (a fresh content hash),
    so that no test sees another test's build cache."""

    def read(name: str) -> bytes:
        return (FUNCTIONS / name).read_bytes() + f"\n# {uuid.uuid4().hex}\n".encode()

    return read
