"""The shared reader of user files: every failure is one line naming the file, its kind and why."""

from __future__ import annotations

from pathlib import Path

import pytest

from knative_lambda.errors import ConfigError
from knative_lambda.files import compose_yaml, read_json, read_text


def test_reads_utf8_text_and_json(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text('{"name": "é"}', encoding="utf-8")
    assert read_text(path, "result file") == '{"name": "é"}'
    assert read_json(path, "result file") == {"name": "é"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\xff\xfe", "{p}: cannot read budget file (not UTF-8 text)"),
        (b'{\n"a": }', "{p}:2: cannot read budget file (not valid JSON: Expecting value)"),
        (b"[" * 100_000 + b"]" * 100_000, "{p}: cannot read budget file (JSON nested too deeply)"),
    ],
    ids=["not-utf8", "bad-json", "deep"],
)
def test_unreadable_content(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "f"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as info:
        read_json(path, "budget file")
    assert str(info.value) == message.format(p=path)


def test_missing_file_and_hint(tmp_path: Path) -> None:
    path = tmp_path / "gone.json"
    with pytest.raises(ConfigError) as info:
        read_json(path, "state file", hint="; run kl down")
    assert str(info.value) == f"{path}: cannot read state file (No such file or directory); run kl down"
    with pytest.raises(ConfigError, match="^run kl up$"):
        read_json(path, "state file", missing="run kl up", hint="; run kl down")
    with pytest.raises(ConfigError) as info:
        read_text(tmp_path, "state file", missing="run kl up")  # a directory is not "missing"
    assert str(info.value) == f"{tmp_path}: cannot read state file (Is a directory)"


def test_bad_yaml_names_the_line() -> None:
    assert compose_yaml("a: 1\n", "s.yaml") is not None
    with pytest.raises(ConfigError, match=r"^s\.yaml:2: not valid YAML \("):
        compose_yaml("a: [\n", "s.yaml")
