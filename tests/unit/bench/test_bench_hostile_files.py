"""kl gate / kl report input files that used to escape as tracebacks: each is a one-line ConfigError."""

from __future__ import annotations

from pathlib import Path

import pytest

from knative_lambda.bench import budgets as bd
from knative_lambda.bench import results as rs
from knative_lambda.errors import ConfigError

HOSTILE = {
    "deep": (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    "not-utf8": (b"\xff\xfe\x00garbage\x80", "not UTF-8"),
    "big-int": (b'{"schema": ' + b"9" * 5000 + b"}", "not valid JSON"),
    "deep-object": (b'{"a":' * 50_000 + b"1" + b"}" * 50_000, "nested too deeply"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_result_file_that_is_not_json_we_can_read(tmp_path: Path, name: str) -> None:
    content, words = HOSTILE[name]
    path = tmp_path / f"{name}.json"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as info:
        rs.load(path)
    message = str(info.value)
    assert str(path) in message and words in message and "\n" not in message


def test_budget_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "budgets.yaml"
    path.write_bytes(b"\xff\xfe\x00garbage\x80")
    with pytest.raises(ConfigError, match=r"budgets\.yaml: cannot read budget file \(not UTF-8 text\)"):
        bd.load_budgets(path)
