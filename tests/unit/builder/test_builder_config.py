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


@pytest.mark.parametrize(
    "status, kind",
    [("succeeded", "build.complete"), ("failed", "build.failed"), ("timeout", "build.timeout"), ("odd", "build.failed")],
)
def test_result_event_type(status: str, kind: str) -> None:
    from knative_lambda.contract.validation import validate
    from knative_lambda.platform.builder.emitter import result_event
    from knative_lambda.settings import Settings

    data = {"third_party_id": "acme", "parser_id": "p1", "content_hash": "0123456789ab",
            "job_name": "build-acme-p1-01234567", "image_uri": "", "status": status, "error_message": "",
            "exit_code": 1, "duration": 0.5, "correlation_id": "5b1c7a4e-2f5d-4c8e-9a3b-0f6e1d2c3b4a",
            "cached": False, "artifact": "", "runtime": "python", "backend": "local"}
    event = result_event(Settings(), data)
    assert event.get_type() == f"network.notifi.lambda.{kind}"
    assert event.get_subject() == "build/acme/p1" and event.get_source() == "network.notifi.builder"
    assert event.get_extension("correlationid") == data["correlation_id"]
    validate(event)  # the contract accepts what the builder emits
