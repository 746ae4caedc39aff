"""Structured JSON logs: one object per line, with the correlation id.

A platform process calls :func:`setup` once; code logs decisions with
:func:`decision` (``kind`` says which: scale, build, delivery, ...). The
correlation id of the event being handled lives in a context variable, so
every line logged while handling it carries the id without passing it around.
Values of keys that look like secrets are never written.
"""

from __future__ import annotations

import contextvars
import functools
import json
import logging
import sys
import time
from typing import Any

correlation_id: contextvars.ContextVar[str] = contextvars.ContextVar("correlation_id", default="")
SECRET_WORDS = ("token", "secret", "password", "authorization", "access_key", "credential")
_log = logging.getLogger("kl")
_secret_values: list[str] = []  # values never written, whatever key or message carries them
MIN_SECRET_LEN = 6  # shorter values would blank ordinary words


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


def setup(component: str, level: int = logging.INFO) -> None:
    """JSON lines on stderr (the supervisor sends them to the component's log file)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(component))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("aiormq", "aio_pika", "botocore", "urllib3", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def decision(kind: str, msg: str = "", **fields: Any) -> None:
    """Log one decision (scale, build, delivery outcome) as one line."""
    _log.info(msg or kind, extra={"fields": {"decision": kind, **fields, "at": time.time()}})
