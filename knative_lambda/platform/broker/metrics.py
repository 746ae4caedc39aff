"""Prometheus metrics of the broker process (served at ``/metrics``).

``cloudevents_total{namespace, broker, trigger, outcome, type}``: outcome is
published (confirmed at ingress), rejected (400/413 at ingress), delivered,
retried, dead_lettered, filtered (did not match the trigger), replied (a reply
re-published to the broker). ``type`` is the CloudEvent type, bounded by
:class:`TypeLabels` (hostile input cannot multiply the series); rejected events
carry ``type=""``: their type was not validated.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from prometheus_client import Counter, Histogram

EVENTS = Counter(
    "cloudevents_total",
    "CloudEvents through the broker by outcome and type",
    ["namespace", "broker", "trigger", "outcome", "type"],
)
DELIVERY_SECONDS = Histogram(
    "broker_delivery_seconds",
    "One HTTP delivery attempt to a subscriber",
    ["namespace", "trigger"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)

OTHER_TYPE = "other"  # every type past the cap, or not shaped like a type
MAX_TYPE_LABELS = 64  # distinct type values per process (the contract has about a dozen)
MAX_TYPE_CHARS = 128
_TYPE_SHAPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\Z").match


class TypeLabels:
    """The ``type`` label value for an event type: the type itself for the first
    ``limit`` distinct well-formed types seen, else ``other``.

    Label values live as long as the process, so a producer inventing a type per
    event must not be able to grow ``/metrics`` without bound.
    """

    def __init__(self, limit: int = MAX_TYPE_LABELS) -> None:
        self._limit = limit
        self._seen: set[str] = set()

    def __call__(self, event_type: object) -> str:
        if event_type in self._seen:
            return event_type  # type: ignore[return-value]  # only strings are added
        if (not isinstance(event_type, str) or len(event_type) > MAX_TYPE_CHARS
                or not _TYPE_SHAPE(event_type) or len(self._seen) >= self._limit):
            return OTHER_TYPE
        self._seen.add(event_type)
        return event_type


type_label = TypeLabels()  # one per process: the cap bounds every series of the counter


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
