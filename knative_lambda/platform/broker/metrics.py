"""Prometheus metrics of the broker process (served at ``/metrics``).

``cloudevents_total{outcome}``: outcome is published (confirmed at ingress),
rejected (400/413 at ingress), delivered, retried, dead_lettered, filtered
(did not match the trigger), replied (a reply re-published to the broker).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from prometheus_client import Counter, Histogram

EVENTS = Counter(
    "cloudevents_total",
    "CloudEvents through the broker by outcome",
    ["namespace", "broker", "trigger", "outcome"],
)
DELIVERY_SECONDS = Histogram(
    "broker_delivery_seconds",
    "One HTTP delivery attempt to a subscriber",
    ["namespace", "trigger"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


@dataclass
class TriggerCounts:
    """Per-trigger counters for ``GET /apis/v1/triggers`` (since this process started)."""

    delivered: int = 0
    retried: int = 0
    dead_lettered: int = 0
    filtered: int = 0
    replied: int = 0

    def to_dict(self) -> dict[str, int]:
        return asdict(self)
