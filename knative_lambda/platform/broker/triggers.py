"""The Trigger spec (a Knative ``eventing.knative.dev/v1`` Trigger) and its delivery rules.

Pure: parsing, validation, the retry schedule and the retry decision. The
dispatcher applies them.

Retry schedule (``retry`` = retries after the first attempt, ``n`` = 1..retry):

* linear:      delay * n        -> PT1S, 3 retries: 1 s, 2 s, 3 s
* exponential: delay * 2**(n-1) -> PT1S, 3 retries: 1 s, 2 s, 4 s

(Knative documents ``delay * 2^n``; its implementation starts ``n`` at 0 for the
first retry, which is what the exponential row above gives.)
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

from knative_lambda.errors import ConfigError
from knative_lambda.platform.broker import filters as flt

PARALLELISM_ANNOTATION = "rabbitmq.eventing.knative.dev/parallelism"
API_VERSION = "eventing.knative.dev/v1"
DEFAULT_BACKOFF_DELAY = 0.2  # seconds, when retries are asked for without a delay
MAX_PARALLELISM = 1000
# Bounds on delivery: a retry count or delay past these is a typo, and an
# unbounded one overflows the exponential schedule (1e6 retries -> 2**999999).
MAX_RETRY = 100
MAX_BACKOFF_DELAY = 3600.0  # seconds (1 h)
MAX_TIMEOUT = 3600.0  # seconds per attempt
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")

# PnYnMnDTnHnMnS / PnW; years and months have no fixed length, so they are refused.
_DURATION = re.compile(
    r"^P(?!$)(?:(?P<weeks>\d+(?:[.,]\d+)?)W)?(?:(?P<days>\d+(?:[.,]\d+)?)D)?"
    r"(?:T(?=\d)(?:(?P<hours>\d+(?:[.,]\d+)?)H)?(?:(?P<minutes>\d+(?:[.,]\d+)?)M)?"
    r"(?:(?P<seconds>\d+(?:[.,]\d+)?)S)?)?$"
)
_UNIT_SECONDS = {"weeks": 604800.0, "days": 86400.0, "hours": 3600.0, "minutes": 60.0, "seconds": 1.0}


def parse_duration(text: str) -> float:
    """An ISO-8601 duration (``PT1S``, ``PT0.05S``, ``P1DT2H``, ``P2W``) in seconds."""
    if not isinstance(text, str):
        raise ConfigError(f"duration must be a string like PT1S, got {text!r}")
    m = _DURATION.match(text.strip().upper())
    if not m or (m.group("weeks") and any(m.group(u) for u in ("days", "hours", "minutes", "seconds"))):
        raise ConfigError(
            f"invalid ISO-8601 duration {text!r}: use e.g. PT1S, PT0.5S, PT2M, P1DT2H (no years/months)"
        )
    return sum(
        float(v.replace(",", ".")) * _UNIT_SECONDS[unit]
        for unit, v in m.groupdict().items()
        if v is not None
    )


class TriggerSpecError(ConfigError):
    """A Trigger object that cannot be used; ``problems`` holds every ``"where: reason"``."""

    def __init__(self, namespace: str, name: str, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(f"invalid trigger {namespace}/{name}: " + "; ".join(problems))

    def problem_dicts(self) -> list[dict[str, str]]:
        out = []
        for p in self.problems:
            where, _, reason = p.partition(": ")
            out.append({"where": where, "reason": reason})
        return out


@dataclass(frozen=True)
class Delivery:
    retry: int = 0
    backoff_policy: str = "exponential"  # linear | exponential
    backoff_delay: float = DEFAULT_BACKOFF_DELAY  # seconds
    dead_letter_sink: str = ""  # URI; empty = the trigger's dead-letter queue
    timeout: float | None = None  # per attempt, seconds (Knative delivery.timeout)


def backoff_delays(delivery: Delivery) -> list[float]:
    """The wait before each retry, in order; its length is the number of retries."""
    d = delivery.backoff_delay
    if delivery.backoff_policy == "linear":
        return [d * n for n in range(1, delivery.retry + 1)]
    return [d * 2 ** (n - 1) for n in range(1, delivery.retry + 1)]


RETRIABLE_STATUS = frozenset({404, 408, 409, 429})


def should_retry(status: int | None) -> bool:
    """Whether an attempt's outcome is worth retrying; ``None`` = connection error/timeout.

    404/409/429 and every 5xx are retried (as Knative does; 408 is a timeout too),
    other 4xx are the sender's fault and retrying cannot help. 2xx never reaches here.
    """
    if status is None:
        return True
    return status in RETRIABLE_STATUS or 500 <= status <= 599


@dataclass(frozen=True)
class TriggerSpec:
    namespace: str
    name: str
    broker: str
    subscriber: str
    attributes: dict[str, str] = field(default_factory=dict)
    filters: list[dict[str, Any]] = field(default_factory=list)
    delivery: Delivery = field(default_factory=Delivery)
    parallelism: int = 1
    raw: dict[str, Any] = field(default_factory=dict, compare=False)  # the object as given

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def matches(self, attrs: dict[str, str]) -> bool:
        return flt.matches(attrs, self.attributes, self.filters)

    def describe_filter(self) -> str:
        """A short human form of the filter for tables."""
        if self.filters:
            import json

            return json.dumps(self.filters, separators=(",", ":"))
        if self.attributes:
            return ",".join(f"{k}={v or '*'}" for k, v in sorted(self.attributes.items()))
        return "*"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("raw")
        return d


def parse_trigger(obj: Any, namespace: str, name: str) -> TriggerSpec:
    """A Knative Trigger object -> :class:`TriggerSpec`; :class:`ConfigError` lists every problem.

    ``namespace``/``name`` come from the URL; the object's metadata, if set, must agree.
    """
    problems: list[str] = []
    if not isinstance(obj, dict):
        raise TriggerSpecError(namespace, name, ["body: must be a JSON object (a Knative Trigger)"])
    if not _NAME.match(name or "") or len(name) > 63:
        problems.append(f"metadata.name: {name!r} is not a DNS-1123 label")
    if not _NAME.match(namespace or "") or len(namespace) > 63:
        problems.append(f"metadata.namespace: {namespace!r} is not a DNS-1123 label")
    if obj.get("apiVersion", API_VERSION) != API_VERSION:
        problems.append(f"apiVersion: must be {API_VERSION}")
    if obj.get("kind", "Trigger") != "Trigger":
        problems.append("kind: must be Trigger")
    meta = obj.get("metadata") or {}
    if not isinstance(meta, dict):
        problems.append("metadata: must be an object")
        meta = {}
    if meta.get("name") not in (None, name):
        problems.append(f"metadata.name: {meta.get('name')!r} differs from the URL's {name!r}")
    if meta.get("namespace") not in (None, namespace):
        problems.append(
            f"metadata.namespace: {meta.get('namespace')!r} differs from the URL's {namespace!r}"
        )
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        raise TriggerSpecError(namespace, name, [*problems, "spec: required object"])

    broker = spec.get("broker")
    if not isinstance(broker, str) or not _NAME.match(broker):
        problems.append("spec.broker: required, a DNS-1123 name")
    subscriber = _subscriber_uri(spec.get("subscriber"), "spec.subscriber", problems, required=True)
    flt_obj = spec.get("filter") or {}
    attributes = flt_obj.get("attributes") if isinstance(flt_obj, dict) else None
    if flt_obj and not isinstance(flt_obj, dict):
        problems.append("spec.filter: must be an object with 'attributes'")
    problems += flt.validate_attributes(attributes)
    filters = spec.get("filters")
    problems += flt.validate_filters(filters)
    delivery = _parse_delivery(spec.get("delivery"), problems)

    annotations = meta.get("annotations") or {}
    parallelism = 1
    raw_par = annotations.get(PARALLELISM_ANNOTATION) if isinstance(annotations, dict) else None
    if raw_par is not None:
        try:
            parallelism = int(str(raw_par))
            if not 1 <= parallelism <= MAX_PARALLELISM:
                raise ValueError
        except ValueError:
            problems.append(
                f"metadata.annotations.{PARALLELISM_ANNOTATION}: must be an integer 1..{MAX_PARALLELISM}"
            )
    if problems:
        raise TriggerSpecError(namespace, name, problems)
    return TriggerSpec(
        namespace=namespace,
        name=name,
        broker=broker,
        subscriber=subscriber,
        attributes=dict(attributes or {}),
        filters=list(filters or []),
        delivery=delivery,
        parallelism=parallelism,
        raw=obj,
    )


def _subscriber_uri(value: Any, where: str, problems: list[str], required: bool) -> str:
    if value is None or value == {}:
        if required:
            problems.append(f"{where}.uri: required (http:// or https:// URL)")
        return ""
    if isinstance(value, dict):
        if "ref" in value and "uri" not in value:
            problems.append(f"{where}.ref: object references are not resolvable here; give {where}.uri")
            return ""
        value = value.get("uri")
    if not isinstance(value, str) or not _http_url_with_host(value):
        problems.append(f"{where}.uri: must be an http:// or https:// URL with a host")
        return ""
    return value


def _http_url_with_host(value: str) -> bool:
    try:
        url = urlsplit(value)
        url.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError:
        return False
    return url.scheme in ("http", "https") and bool(url.hostname) and value.isprintable() and " " not in value


def _parse_delivery(obj: Any, problems: list[str]) -> Delivery:
    if obj is None:
        return Delivery()
    if not isinstance(obj, dict):
        problems.append("spec.delivery: must be an object")
        return Delivery()
    retry = obj.get("retry", 0)
    if not isinstance(retry, int) or isinstance(retry, bool) or not 0 <= retry <= MAX_RETRY:
        problems.append(f"spec.delivery.retry: must be an integer 0..{MAX_RETRY}")
        retry = 0
    policy = obj.get("backoffPolicy", "exponential")
    if policy not in ("linear", "exponential"):
        problems.append("spec.delivery.backoffPolicy: must be linear or exponential")
        policy = "exponential"
    delay = DEFAULT_BACKOFF_DELAY
    if obj.get("backoffDelay") is not None:
        try:
            delay = parse_duration(obj["backoffDelay"])
            if delay > MAX_BACKOFF_DELAY:
                problems.append(f"spec.delivery.backoffDelay: at most PT{MAX_BACKOFF_DELAY:g}S (1 h)")
                delay = DEFAULT_BACKOFF_DELAY
        except ConfigError as exc:
            problems.append(f"spec.delivery.backoffDelay: {exc}")
    timeout = None
    if obj.get("timeout") is not None:
        try:
            timeout = parse_duration(obj["timeout"])
            if not 0 < timeout <= MAX_TIMEOUT:
                problems.append(f"spec.delivery.timeout: must be positive and at most PT{MAX_TIMEOUT:g}S (1 h)")
                timeout = None
        except ConfigError as exc:
            problems.append(f"spec.delivery.timeout: {exc}")
    sink = _subscriber_uri(obj.get("deadLetterSink"), "spec.delivery.deadLetterSink", problems, False)
    return Delivery(retry, policy, delay, sink, timeout)


def trigger_object(
    name: str,
    subscriber: str,
    *,
    broker: str = "default",
    namespace: str = "default",
    attributes: dict[str, str] | None = None,
    filters: list[dict[str, Any]] | None = None,
    delivery: dict[str, Any] | None = None,
    parallelism: int | None = None,
) -> dict[str, Any]:
    """Build a Knative Trigger object (what ``PUT .../triggers/{name}`` takes)."""
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if parallelism is not None:
        meta["annotations"] = {PARALLELISM_ANNOTATION: str(parallelism)}
    spec: dict[str, Any] = {"broker": broker, "subscriber": {"uri": subscriber}}
    if attributes is not None:
        spec["filter"] = {"attributes": attributes}
    if filters:
        spec["filters"] = filters
    if delivery:
        spec["delivery"] = delivery
    return {"apiVersion": API_VERSION, "kind": "Trigger", "metadata": meta, "spec": spec}
