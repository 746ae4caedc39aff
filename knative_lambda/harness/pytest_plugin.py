"""pytest plugin: run scenarios against a target.

    pytest scenarios/conformance --kl-target local              # brings a local target up and down
    pytest scenarios/conformance --kl-target local --kl-state .kl/env.json   # reuse a running one
    pytest scenarios/conformance --kl-target cluster            # KL_* settings + kubeconfig

Fixtures: ``kl_target`` (the Target), ``kl_function`` (deploys a function from
source and deletes it afterwards), ``kl_events`` (the target's event tap).
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

# Short autoscaler windows so that scale-to-zero clauses finish in seconds.
LOCAL_TEST_ENV = {
    "KL_AUTOSCALER_TICK": "0.5s",
    "KL_AUTOSCALER_STABLE_WINDOW": "2s",
    "KL_AUTOSCALER_SCALE_TO_ZERO_GRACE_PERIOD": "1s",
    "KL_DEPLOYER_WINDOW": "none",  # functions use the 2 s window above, not their own 10 s
    "KL_DEPLOYER_BACKOFF_DELAY": "PT0.05S",  # retries and dead letters in a second, not 31 s
}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("knative-lambda")
    group.addoption("--kl-target", default=os.environ.get("KL_TARGET", "local"),
                    choices=("local", "kind", "cluster"), help="target for scenarios [local]")
    group.addoption("--kl-state", default=os.environ.get("KL_STATE_FOR_TESTS"),
                    help="state file of a running platform to reuse (local/kind); "
                         "without it a local target is brought up for the session")


@pytest.fixture(scope="session")
def kl_target(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from knative_lambda.harness.targets import load_target

    name = request.config.getoption("--kl-target")
    state_option = request.config.getoption("--kl-state")
    if name == "cluster" or state_option:
        target = load_target(name, state_option)
        yield target
        target.close()
        return

    with local_platform(tmp_path_factory.mktemp("kl-target"), LOCAL_TEST_ENV) as target:
        yield target


@contextlib.contextmanager
def local_platform(base: Path, env: Mapping[str, str]) -> Iterator[Any]:
    """A local target under ``base``, its processes started with ``env`` added to the
    environment (only while they start), torn down at the end: for suites that need
    a platform configured their own way (quotas, rate limits, short windows)."""
    from knative_lambda.harness import local
    from knative_lambda.harness.targets import load_target
    from knative_lambda.settings import Settings

    state_path = base / "env.json"
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        local.up(state_path, base=Settings(data_dir=base / "data"), progress=lambda _m: None)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    target = load_target("local", state_path)
    try:
        yield target
    finally:
        target.close()
        local.down(state_path, progress=lambda _m: None, quiet=True)


@pytest.fixture
def kl_function(kl_target: Any) -> Iterator[Callable[..., Any]]:
    """Factory: ``kl_function(source_bytes_or_path, tp=..., parser=...)`` -> deployed Function."""
    deployed = []

    def deploy(source: bytes | str | Path, *, tp: str = "conf", parser: str | None = None,
               timeout: float = 120.0) -> Any:
        data = Path(source).read_bytes() if isinstance(source, str | Path) else source
        fn = kl_target.deploy(tp, parser or f"p{uuid.uuid4().hex[:8]}", data, timeout=timeout)
        deployed.append(fn)
        return fn

    yield deploy
    for fn in deployed:
        with contextlib.suppress(Exception):  # cleanup must not mask the test's outcome
            kl_target.delete(fn)


@pytest.fixture
def kl_events(kl_target: Any) -> Any:
    return kl_target.tap()
