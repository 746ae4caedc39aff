"""kl emit inputs that used to escape as tracebacks: deep JSON in --data and in a batch, non-UTF-8 files."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from knative_lambda.errors import ConfigError
from knative_lambda.platform.broker.commands import emit, parse_batch

DEEP = "[" * 50_000 + "]" * 50_000


def _run(*args: str, monkeypatch: pytest.MonkeyPatch) -> BaseException | None:
    monkeypatch.setenv("KL_BROKER_URL", "http://127.0.0.1:9")  # never reached: the input is rejected first
    return CliRunner().invoke(emit, list(args)).exception


def test_deep_data_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    exc = _run("parser.start", "--data", DEEP, monkeypatch=monkeypatch)
    assert isinstance(exc, ConfigError) and str(exc) == "--data is not valid JSON: nested too deeply"


def test_non_utf8_batch_file_is_a_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "batch.jsonl"
    path.write_bytes(b"\xff\xfe{}\n")
    exc = _run("--file", str(path), monkeypatch=monkeypatch)
    assert isinstance(exc, ConfigError) and "not UTF-8" in str(exc)


def test_deep_batch_line_is_named() -> None:
    with pytest.raises(ConfigError, match="line 2: invalid JSON \\(nested too deeply\\)"):
        parse_batch(['{"type": "build.start"}', DEEP], "network.notifi.lambda")
