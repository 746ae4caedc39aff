"""The pure parts of the hostile-input runner (knative_lambda/harness/hostile.py), as tables."""

from __future__ import annotations

import pytest

from knative_lambda.harness.hostile import (
    Answer,
    CliRun,
    HttpCase,
    RawCase,
    _complete,
    _parse_response,
    cli_verdict,
    verdict,
)

JSON = "application/json; charset=utf-8"
ERR = '{"error": "invalid event: attribute id: required", "problems": [{"where": "attribute id", "reason": "required"}]}'


@pytest.mark.parametrize(("case", "answer", "complaint"), [
    (HttpCase("ok", expect=("attribute id",)), Answer(400, JSON, ERR), None),
    (HttpCase("problems-count", expect=("required",)), Answer(400, JSON, ERR), None),
    (HttpCase("wrong-status", status=(413,)), Answer(400, JSON, ERR), "HTTP 400, expected 413"),
    (HttpCase("server-error"), Answer(500, "text/plain", "boom"), "server error HTTP 500"),
    (HttpCase("503-is-a-server-error"), Answer(503, JSON, '{"error": "x"}'), "server error HTTP 503"),
    (HttpCase("accepted"), Answer(202, JSON, '{"id": "1"}'), "HTTP 202, expected 400"),
    (HttpCase("text-body"), Answer(404, "text/plain", "404: Not Found"), "not a JSON error object"),
    (HttpCase("json-without-error"), Answer(400, JSON, '{"detail": "x"}'), "not a JSON error object"),
    (HttpCase("protocol-text", json_error=False, expect=("8190",)), Answer(400, "text/plain", "Got more than 8190 bytes"), None),
    (HttpCase("word-missing", expect=("correlationid",)), Answer(400, JSON, ERR), "does not name 'correlationid'"),
    (HttpCase("traceback", json_error=False), Answer(400, "text/plain", "Traceback (most recent call last)"), "traceback"),
    (HttpCase("no-answer"), Answer(None), "no answer"),
    (RawCase("raw-may-close", b"", status=None), Answer(None), None),
    (RawCase("raw-may-close-but-no-5xx", b"", status=None), Answer(500, "text/plain", "x"), "server error"),
    (RawCase("raw-400", b""), Answer(400, "text/plain", "Bad Request"), None),
])
def test_verdict(case: HttpCase | RawCase, answer: Answer, complaint: str | None) -> None:
    problems = verdict(case, answer)
    if complaint is None:
        assert problems == []
    else:
        assert any(complaint in p for p in problems), problems


@pytest.mark.parametrize(("raw", "complete", "status", "text"), [
    (b"", False, None, ""),
    (b"HTTP/1.1 400 Bad Request\r\nContent-Length: 3\r\n\r\nabc", True, 400, "abc"),
    (b"HTTP/1.1 400 Bad Request\r\nContent-Length: 5\r\n\r\nabc", False, 400, "abc"),
    (b"HTTP/1.0 413 Too Large\r\nContent-Type: application/json\r\n\r\n{}", False, 413, "{}"),
    (b"HTTP/1.1 400 Bad Request\r\nContent-Length: x\r\n\r\n", True, 400, ""),
    (b"garbage", False, None, "garbage"),
    (b"HTTP/1.1 abc\r\n\r\n", False, None, "HTTP/1.1 abc\r\n\r\n"),
])
def test_response_parsing(raw: bytes, complete: bool, status: int | None, text: str) -> None:
    assert _complete(raw) is complete
    answer = _parse_response(raw)
    assert answer.status == status and answer.text == text


USAGE = b"Usage: kl [OPTIONS] COMMAND [ARGS]...\nTry 'kl -h' for help.\n\nError: No such command 'x'.\n"


@pytest.mark.parametrize(("run", "expect", "complaint"), [
    (CliRun(2, b"", b"error: no platform state at x: run 'kl up' first\n"), ("no platform state",), None),
    (CliRun(2, b"", USAGE), ("no such command",), None),
    (CliRun(2, b"", USAGE), ("no such option",), "does not name"),
    (CliRun(0, b"ok", b"error: x\n"), (), "exit 0"),
    (CliRun(1, b"", b"Traceback (most recent call last):\n  File x\nValueError: y\n"), (), "traceback"),
    (CliRun(2, b"", b""), (), "not a one-line error"),
    (CliRun(2, b"", b"error: a\nerror: b\n"), (), "not a one-line error"),
    (CliRun(None, b"", b""), (), "hang"),
])
def test_cli_verdict(run: CliRun, expect: tuple[str, ...], complaint: str | None) -> None:
    problems = cli_verdict(run, expect)
    if complaint is None:
        assert problems == []
    else:
        assert any(complaint in p for p in problems), problems
