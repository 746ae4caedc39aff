"""Hostile archives through the running builder: build.failed with the reason, nothing escapes.

Each archive is uploaded to the source bucket as ``global/parser/<id>`` and
built by a build.start published to the broker; the build.failed event comes
back through the broker. All builds run at once (they fail in extraction), so
the group takes about as long as the slowest one.
"""

from __future__ import annotations

import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from knative_lambda.errors import KLError
from tests.hostile.corpus_archives import CASES, ESCAPE, ArchiveCase

TP = "kl-hostile"
RUN = uuid.uuid4().hex[:6]


def _parser(index: int) -> str:
    return f"hostile-{RUN}-{index:03d}"


@pytest.fixture(scope="module")
def outcomes(hostile_target: Any) -> dict[str, Any]:
    """case id -> BuildOutcome, or the error text when no result came back."""

    def build(item: tuple[int, ArchiveCase]) -> tuple[str, Any]:
        index, case = item
        try:
            data = {"parameters": case.parameters} if case.parameters is not None else None
            return case.id, hostile_target.build(TP, _parser(index), case.make(), timeout=60.0, data=data)
        except KLError as exc:
            return case.id, f"no build result: {exc}"

    hostile_target.tap(), hostile_target.s3  # made once, before the threads share them
    with ThreadPoolExecutor(max_workers=8) as pool:
        return dict(pool.map(build, enumerate(CASES)))


def _param(case: ArchiveCase) -> Any:
    marks = [pytest.mark.xfail(strict=True, reason=case.bug)] if case.bug else []
    return pytest.param(case, id=case.id, marks=marks)


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_hostile_archive_fails_the_build_with_its_reason(case: ArchiveCase, outcomes: dict[str, Any]) -> None:
    outcome = outcomes[case.id]
    assert not isinstance(outcome, str), outcome
    message = str(outcome.data.get("error_message", ""))
    assert outcome.kind == "build.failed", f"{outcome.kind}: {message or outcome.data}"
    assert "\n" not in message and "traceback" not in message.lower(), message
    assert "internal builder error" not in message, message
    for word in case.expect:
        assert word in message.lower(), f"{word!r} not in {message!r}"


def _escaped_files(roots: list[Path]) -> list[str]:
    found = []
    for root in roots:
        if not root.is_dir():
            continue
        for path in root.iterdir():  # the places a '../' or absolute path can reach
            if ESCAPE in path.name:
                found.append(str(path))
    return found


def test_nothing_was_written_outside_the_build_directory(outcomes: dict[str, Any], hostile_target: Any) -> None:
    data_dir = Path(hostile_target.settings.data_dir).resolve()
    roots = [Path("/"), Path("/tmp"), Path.cwd(), *data_dir.parents, data_dir]
    artifacts = data_dir / "artifacts"
    if artifacts.is_dir():
        roots += [p for p in artifacts.iterdir() if p.is_dir()]
    assert _escaped_files(roots) == []
    if data_dir.is_dir():  # local target: everything the builder wrote is under its data dir
        escaped = [str(p) for p in data_dir.rglob(f"*{ESCAPE}*")]
        assert escaped == []
        leftovers = [p.name for p in artifacts.glob(".tmp-*")] if artifacts.is_dir() else []
        assert leftovers == [], "staging directories of failed builds were not removed"
    assert not any(os.path.lexists(p) for p in ("/etc/cron.d/evil", "/C:/Windows/evil.py"))


def test_after_the_archive_corpus_platform_is_healthy_and_nothing_lost(outcomes: dict[str, Any],
                                                                       platform_ok: Any) -> None:
    platform_ok("archives")
