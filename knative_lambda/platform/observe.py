"""One call that gives a platform process its logs and traces (see logs.py, tracing.py).

Every platform process calls :func:`setup_process` before serving: JSON log
lines on stderr with the platform's secrets scrubbed by value, and OpenTelemetry
spans to OTLP or ``<data_dir>/traces/<component>.jsonl``.
"""

from __future__ import annotations

import ctypes
import sys
from urllib.parse import urlsplit

from knative_lambda.platform import logs, tracing
from knative_lambda.settings import Settings

PR_SET_DUMPABLE = 4


def secrets_of(settings: Settings) -> list[str]:
    """Values that must never reach a log: token, S3 secret key, AMQP password (pure)."""
    values = [settings.token, settings.s3_secret_key]
    if settings.amqp_url:
        try:
            values.append(urlsplit(settings.amqp_url).password or "")
        except ValueError:
            pass
    return [v for v in values if v]


def hide_environment() -> None:
    """Make this process non-dumpable: its ``/proc/<pid>/environ`` (which holds the token
    and S3 keys) becomes unreadable to other processes of the same user, such as
    function instances. Linux only; elsewhere a no-op."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def setup_process(component: str, settings: Settings, file_stem: str = "") -> None:
    """``file_stem``: the span file's name when several processes of ``component`` run at once."""
    hide_environment()
    logs.setup(component)
    logs.add_secrets(*secrets_of(settings))
    tracing.setup(component, settings.data_dir, file_stem)
