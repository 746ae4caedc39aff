"""Broker-only knobs, read from ``KL_BROKER_*`` variables (all optional).

They sit beside :class:`knative_lambda.settings.Settings` (shared by every
process) because no other part needs them; tests shorten them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from knative_lambda.errors import ConfigError
from knative_lambda.machine import usable_cpus


def _num(name: str, default: float) -> float:
    raw = os.environ.get(name, "")
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number") from None


@dataclass(frozen=True)
class BrokerConfig:
    max_event_bytes: int = 1024 * 1024  # larger bodies get 413 (Knative's default limit is similar)
    publish_channels: int = 4  # confirm channels in the publisher pool
    attempt_timeout: float = 30.0  # seconds per delivery attempt unless the trigger sets one
    http_connections: int = 512  # deliveries in flight at once (each holds a connection)
    reconnect_interval: float = 1.0  # seconds between RabbitMQ reconnect attempts
    publish_timeout: float = 10.0  # seconds to wait for a publisher confirm before 503
    queue_type: str = "quorum"  # quorum (replicated; falls back to classic if refused) | classic
    # processes that serve the port beside the broker (workers.py); 0: the broker serves it
    ingress_workers: int = 0

    @classmethod
    def from_env(cls) -> BrokerConfig:
        d = cls()
        return cls(
            max_event_bytes=int(_num("KL_BROKER_MAX_EVENT_BYTES", d.max_event_bytes)),
            publish_channels=max(1, int(_num("KL_BROKER_PUBLISH_CHANNELS", d.publish_channels))),
            attempt_timeout=_num("KL_BROKER_ATTEMPT_TIMEOUT", d.attempt_timeout),
            http_connections=int(_num("KL_BROKER_HTTP_CONNECTIONS", d.http_connections)),
            reconnect_interval=_num("KL_BROKER_RECONNECT_INTERVAL", d.reconnect_interval),
            publish_timeout=_num("KL_BROKER_PUBLISH_TIMEOUT", d.publish_timeout),
            queue_type=_queue_type(os.environ.get("KL_BROKER_QUEUE_TYPE", d.queue_type)),
            ingress_workers=ingress_workers(os.environ.get("KL_BROKER_INGRESS_WORKERS", ""), usable_cpus()),
        )


MAX_INGRESS_WORKERS = 16


def ingress_workers(raw: str, cpus: int) -> int:
    """``KL_BROKER_INGRESS_WORKERS``, by default one worker when the broker can use two CPUs
    or more (ingress on one core, dispatch on another), else none. Pure."""
    if not raw.strip():
        return 1 if cpus >= 2 else 0
    try:
        n = int(raw)
    except ValueError:
        raise ConfigError(f"KL_BROKER_INGRESS_WORKERS={raw!r} is not a whole number") from None
    if not 0 <= n <= MAX_INGRESS_WORKERS:
        raise ConfigError(f"KL_BROKER_INGRESS_WORKERS={raw!r}: use 0 (none) to {MAX_INGRESS_WORKERS}")
    return n


def _queue_type(value: str) -> str:
    if value not in ("quorum", "classic"):
        raise ConfigError(f"KL_BROKER_QUEUE_TYPE={value!r}: use quorum or classic")
    return value
