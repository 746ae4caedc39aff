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


def test_pack_is_deterministic_and_skips_links(tmp_path) -> None:
    from knative_lambda.platform.builder.commands import pack

    (tmp_path / "fn").mkdir()
    (tmp_path / "fn" / "handler.py").write_text("def handle(e):\n    return 1\n")
    (tmp_path / "fn" / "__pycache__").mkdir()
    (tmp_path / "fn" / "__pycache__" / "x.pyc").write_bytes(b"x")
    (tmp_path / "fn" / "link.py").symlink_to(tmp_path / "fn" / "handler.py")
    first, name = pack(tmp_path / "fn")
    (tmp_path / "fn" / "handler.py").touch()  # a new mtime must not change the bytes (content hash)
    assert pack(tmp_path / "fn") == (first, name) and name == "fn.tar.gz"
    import io
    import tarfile

    with tarfile.open(fileobj=io.BytesIO(first)) as tar:
        assert tar.getnames() == ["handler.py"]
    single = tmp_path / "f.js"
    single.write_text("module.exports={}")
    assert pack(single) == (b"module.exports={}", "f.js")
