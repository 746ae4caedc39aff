"""State files that used to escape as tracebacks from kl status: each is a one-line ConfigError."""

from __future__ import annotations

from pathlib import Path

import pytest

from knative_lambda.errors import ConfigError
from knative_lambda.harness import state as statefile


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "JSON nested too deeply"),
        (b'{"a":' * 50_000 + b"1" + b"}" * 50_000, "JSON nested too deeply"),
        (b'{"port": ' + b"9" * 5000 + b"}", "cannot read state file"),
        (b"\xff\xfe\x00garbage\x80", "cannot read state file"),
    ],
    ids=["deep-list", "deep-object", "big-int", "not-utf8"],
)
def test_unreadable_state_file_is_a_one_line_error(tmp_path: Path, content: bytes, words: str) -> None:
    path = tmp_path / "env.json"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as info:
        statefile.load(path)
    message = str(info.value)
    assert words in message and str(path) in message and "kl down" in message and "\n" not in message
