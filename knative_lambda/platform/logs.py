"""Structured JSON logs: one object per line, with the correlation id.

A platform process calls :func:`setup` once; code logs decisions with
:func:`decision` (``kind`` says which: scale, build, delivery, ...). The
correlation id of the event being handled lives in a context variable, so
every line logged while handling it carries the id without passing it around.
Values of keys that look like secrets are never written.

The log file a process writes to (its stderr, opened by the supervisor) is kept
under ``KL_LOG_MAX_BYTES`` (default 64 MiB, 0 = no limit): past it, the file
becomes ``<name>.1`` (replacing the previous one) and a new one is started. A
broker logs a line per delivery, about 1.5 GB an hour at 2,000 events/s.
"""

from __future__ import annotations

import contextlib
import contextvars
import fcntl
import functools
import json
import logging
import os
import stat
import sys
import time
from typing import Any, TextIO

from knative_lambda.errors import ConfigError

correlation_id: contextvars.ContextVar[str] = contextvars.ContextVar("correlation_id", default="")
SECRET_WORDS = ("token", "secret", "password", "authorization", "access_key", "credential")
_log = logging.getLogger("kl")
_secret_values: list[str] = []  # values never written, whatever key or message carries them
MIN_SECRET_LEN = 6  # shorter values would blank ordinary words
DEFAULT_LOG_MAX_BYTES = 64 * 1024 * 1024
LOG_CHECK_SECONDS = 1.0  # how often a process looks at its log file's size and name


def add_secrets(*values: str) -> None:
    """Values (token, S3 secret key, AMQP password) replaced by ``[redacted]`` in every line."""
    for value in values:
        if value and len(value) >= MIN_SECRET_LEN and value not in _secret_values:
            _secret_values.append(value)
    _secret_values.sort(key=len, reverse=True)  # a secret containing another goes first


def scrub(text: str, values: list[str] | None = None) -> str:
    """``text`` with every secret value replaced (pure over ``values``)."""
    for value in _secret_values if values is None else values:
        if value in text:
            text = text.replace(value, "[redacted]")
    return text


@functools.lru_cache(maxsize=1024)
def _secret_key(key: str) -> bool:
    lowered = key.lower()
    return any(w in lowered for w in SECRET_WORDS)


def redact(fields: dict[str, Any]) -> dict[str, Any]:
    """Replace the value of any key naming a secret (pure)."""
    return {k: ("[redacted]" if _secret_key(k) else v) for k, v in fields.items()}


class JsonFormatter(logging.Formatter):
    def __init__(self, component: str) -> None:
        super().__init__()
        self.component = component

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "component": self.component,
            "msg": record.getMessage(),
        }
        if cid := correlation_id.get():
            line["correlation_id"] = cid
        line.update(redact(getattr(record, "fields", {})))
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info).splitlines()[-1]
        return scrub(json.dumps(line, default=str))


def log_max_bytes(raw: str) -> int:
    """``KL_LOG_MAX_BYTES`` -> bytes (0: no limit); ConfigError if it is not a count. Pure."""
    if not raw.strip():
        return DEFAULT_LOG_MAX_BYTES
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"KL_LOG_MAX_BYTES={raw!r} is not a whole number of bytes") from None
    if value < 0:
        raise ConfigError(f"KL_LOG_MAX_BYTES={raw!r}: use 0 (no limit) or more")
    return value


def log_file(stream: TextIO, named: str = "") -> str | None:
    """The name of the regular file ``stream`` writes to, else None (a terminal, a pipe).

    ``named`` (the supervisor's ``KL_LOG_FILE``) is that name if it is that file, or was
    until another process moved it to ``.1``; the descriptor tells only the current name.
    """
    try:
        fd = stream.fileno()
        mine = os.fstat(fd)
        if not stat.S_ISREG(mine.st_mode):
            return None
        for candidate in (named, named + ".1") if named else ():
            with contextlib.suppress(OSError):
                if os.stat(candidate).st_ino == mine.st_ino:
                    return named
        return os.readlink(f"/proc/self/fd/{fd}").removesuffix(" (deleted)")
    except (OSError, ValueError):  # not Linux, or no descriptor
        return None


def keep_log_bounded(stream: TextIO, path: str, max_bytes: int) -> bool:
    """If ``stream``'s file is over ``max_bytes``, move it from ``path`` to ``<path>.1`` and
    go on in a new file at ``path``; if another process moved it (or it was deleted),
    follow ``path`` to the new file. True if the stream now writes to a new file.

    Processes share a log file (a broker and its ingress workers): the first to see it
    full moves it, under a lock on the file; the others reopen ``path`` once it no
    longer is their file (each checks before it writes), their lines meanwhile in ``.1``.
    """
    fd = stream.fileno()
    mine = os.fstat(fd)
    try:
        same = os.stat(path).st_ino == mine.st_ino
    except FileNotFoundError:
        same = False
    if same and (max_bytes == 0 or mine.st_size <= max_bytes):
        return False
    if same:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            if os.stat(path).st_ino == mine.st_ino:  # nobody moved it while we waited
                os.replace(path, path + ".1")
        except FileNotFoundError:
            pass
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    stream.flush()
    new = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        for target in {fd, 1, 2}:  # stdout too when it shares the file (the supervisor's 2>&1)
            with contextlib.suppress(OSError):
                if os.fstat(target).st_ino == mine.st_ino:
                    os.dup2(new, target)
    finally:
        os.close(new)
    return True


class BoundedStderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Lines to stderr; when that is a file, at most once a second and before a line,
    :func:`keep_log_bounded` on it (under the name :func:`log_file` gives at the start)."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(sys.stderr)
        self.max_bytes = max_bytes
        self.path = log_file(sys.stderr, os.environ.get("KL_LOG_FILE", ""))
        self._next_check = 0.0

    def emit(self, record: logging.LogRecord) -> None:
        now = time.monotonic()
        if self.path is not None and now >= self._next_check:
            self._next_check = now + LOG_CHECK_SECONDS
            try:
                keep_log_bounded(self.stream, self.path, self.max_bytes)
            except OSError:  # a full disk or a vanished directory must not stop the process
                pass
        super().emit(record)


def setup(component: str, level: int = logging.INFO) -> None:
    """JSON lines on stderr (the supervisor sends them to the component's log file)."""
    try:
        max_bytes, problem = log_max_bytes(os.environ.get("KL_LOG_MAX_BYTES", "")), None
    except ConfigError as exc:  # a log setting must not stop a platform process
        max_bytes, problem = DEFAULT_LOG_MAX_BYTES, exc
    handler = BoundedStderrHandler(max_bytes)
    handler.setFormatter(JsonFormatter(component))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("aiormq", "aio_pika", "botocore", "urllib3", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if problem is not None:
        _log.warning("%s; the log file is kept under %d bytes", problem, max_bytes)


def decision(kind: str, msg: str = "", **fields: Any) -> None:
    """Log one decision (scale, build, delivery outcome) as one line."""
    _log.info(msg or kind, extra={"fields": {"decision": kind, **fields, "at": time.time()}})
