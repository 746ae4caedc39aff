"""KL_BUILD_* configuration."""

from __future__ import annotations

import pytest

from knative_lambda.errors import ConfigError
from knative_lambda.platform.builder.config import BuilderConfig


def test_defaults_match_the_original_platform() -> None:
    config = BuilderConfig.from_env({})
    assert (config.backend, config.max_concurrent, config.backoff_s, config.timeout_s) == ("local", 5, 300.0, 1800.0)


def test_round_trip() -> None:
    config = BuilderConfig(backend="docker", max_concurrent=2, backoff_s=1, timeout_s=9, offline=True)
    assert BuilderConfig.from_env(config.to_env()) == config


@pytest.mark.parametrize(
    "env, message",
    [
        ({"KL_BUILD_BACKEND": "podman"}, "use one of local, docker, kaniko"),
        ({"KL_BUILD_MAX_CONCURRENT": "0"}, "at least 1"),
        ({"KL_BUILD_TIMEOUT": "-1"}, "positive"),
        ({"KL_BUILD_BACKOFF": "soon"}, "not a number"),
    ],
)
def test_bad_values(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        BuilderConfig.from_env(env)
