"""Shared pieces of the hostile-input suite: one platform (``kl_target``), health and canaries.

After each group of hostile inputs the suite checks that every part still
answers ``/healthz`` and that a valid event published afterwards is delivered
(``canary``): the platform survived and lost nothing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from knative_lambda.harness.hostile import Canary, unhealthy_parts

# Short builder limits keep the archive group fast; they apply when this suite
# brings the session's local target up (a reused target keeps its own limits,
# and the corpus is written to be rejected under the defaults too).
BUILDER_ENV = {
    "KL_BUILD_TIMEOUT": "20",
    "KL_BUILD_BACKOFF": "1",
    "KL_BUILD_RATE": "200",
    "KL_BUILD_BURST": "200",
    # The manifest corpus sends ~150 management calls in a burst; each must be judged
    # on its content, not answered 429 by the (separately tested) rate limit.
    "KL_RATE_LIMITS": "manage=1000/1000",
}


@pytest.fixture(scope="session")
def hostile_target(request: pytest.FixtureRequest) -> Iterator[Any]:
    """``kl_target``, started with the short builder limits above if this suite starts it."""
    saved = {k: os.environ.get(k) for k in BUILDER_ENV}
    for key, value in BUILDER_ENV.items():
        os.environ.setdefault(key, value)
    try:
        target = request.getfixturevalue("kl_target")
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    yield target


@pytest.fixture(scope="session")
def canary(hostile_target: Any) -> Iterator[Canary]:
    with Canary(hostile_target) as c:
        yield c


@pytest.fixture(scope="session")
def platform_ok(hostile_target: Any, canary: Canary):
    """``platform_ok(group)``: every part healthy and a fresh event delivered, else fail."""

    def check(group: str) -> None:
        bad = unhealthy_parts(hostile_target)
        assert not bad, f"after the {group} group, unhealthy: {bad}"
        canary.publish()
        lost = canary.wait_all(timeout=20.0)
        assert not lost, f"after the {group} group, events not delivered: {lost}"

    return check
