"""One call that gives a platform process its logs and traces (see logs.py, tracing.py).

Every platform process calls :func:`setup_process` before serving: JSON log
lines on stderr with the platform's secrets scrubbed by value, and OpenTelemetry
spans to OTLP or ``<data_dir>/traces/<component>.jsonl``.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from knative_lambda.platform import logs, tracing
from knative_lambda.settings import Settings


def secrets_of(settings: Settings) -> list[str]:
    """Values that must never reach a log: token, S3 secret key, AMQP password (pure)."""
    values = [settings.token, settings.s3_secret_key]
    if settings.amqp_url:
        try:
            values.append(urlsplit(settings.amqp_url).password or "")
        except ValueError:
            pass
    return [v for v in values if v]


def setup_process(component: str, settings: Settings) -> None:
    logs.setup(component)
    logs.add_secrets(*secrets_of(settings))
    tracing.setup(component, settings.data_dir)
