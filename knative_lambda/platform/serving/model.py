"""The gateway's objects: services, revisions, instances, and the timeline of events.

Plain data plus the JSON views the management API returns (see ``api.py`` for
the exact request/response shapes). Nothing here does I/O.
"""

from __future__ import annotations

import collections
import itertools
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from knative_lambda.errors import ConfigError
from knative_lambda.platform.serving.autoscaler import MetricWindow, ScalerState
from knative_lambda.platform.serving.config import (
    DEFAULT_CONTAINER_CONCURRENCY,
    AutoscalerConfig,
    AutoscalerConfigError,
    with_annotations,
)

_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
DEFAULT_TIMEOUT = 300.0
DEFAULT_MEMORY_MB = 1024

# Instance states, in lifecycle order.
STARTING, READY, DRAINING, STOPPED = "starting", "ready", "draining", "stopped"


class SpecError(ConfigError):
    """A management API request body is invalid; ``problems`` lists every one."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{w}: {r}" for w, r in problems))


@dataclass(frozen=True)
class RevisionSpec:
    name: str
    content_hash: str
    artifact: str  # absolute directory
    runtime: str  # python | node
    annotations: dict[str, str]
    container_concurrency: int
    timeout: float
    memory_limit_mb: int

    def same_as(self, other: RevisionSpec) -> bool:
        """Same code and settings: a PUT repeating it changes nothing."""
        a, b = self.__dict__.copy(), other.__dict__.copy()
        a.pop("name"), b.pop("name")
        return a == b


def check_name(value: Any, where: str) -> list[tuple[str, str]]:
    if not isinstance(value, str) or not _NAME.match(value):
        return [(where, f"must be a DNS-1123 label (a-z, 0-9, '-', at most 63), got {value!r}")]
    return []


def parse_revision(
    service: str,
    doc: Any,
    base: AutoscalerConfig,
    resolve_artifact: Any,
) -> tuple[RevisionSpec, AutoscalerConfig]:
    """Validate a PUT body's ``revision``; every problem at once in a SpecError.

    ``resolve_artifact(str) -> (Path | None, runtime | None)`` finds the artifact
    directory (a path, or a builder artifact key) and its manifest runtime.
    """
    problems: list[tuple[str, str]] = []
    if not isinstance(doc, Mapping) or not isinstance(doc.get("revision"), Mapping):
        raise SpecError([("body", 'must be a JSON object with a "revision" object')])
    rev = doc["revision"]
    content_hash = rev.get("content_hash", "")
    if not isinstance(content_hash, str):
        problems.append(("revision.content_hash", "must be a string"))
        content_hash = ""
    name = rev.get("name") or (f"{service}-{content_hash[:8]}" if content_hash else None)
    if name is not None:
        problems += check_name(name, "revision.name")
    artifact_in = rev.get("artifact")
    artifact_dir: Path | None = None
    manifest_runtime = None
    if not isinstance(artifact_in, str) or not artifact_in:
        problems.append(("revision.artifact", "required: an artifact directory or a builder artifact key"))
    else:
        artifact_dir, manifest_runtime = resolve_artifact(artifact_in)
        if artifact_dir is None:
            problems.append(("revision.artifact", f"no artifact found at {artifact_in!r}"))
    runtime = rev.get("runtime") or manifest_runtime or "python"
    if runtime not in ("python", "node"):
        problems.append(("revision.runtime", f"must be python or node, got {runtime!r}"))
    annotations = rev.get("annotations") or {}
    if not isinstance(annotations, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str | int | float) for k, v in annotations.items()
    ):
        problems.append(("revision.annotations", "must be an object of string values"))
        annotations = {}
    annotations = {k: str(v) for k, v in annotations.items()}
    cc = rev.get("container_concurrency", DEFAULT_CONTAINER_CONCURRENCY)
    if not isinstance(cc, int) or isinstance(cc, bool) or cc < 0 or cc > 1000:
        problems.append(("revision.container_concurrency", f"must be an integer 0..1000 (0 = unlimited), got {cc!r}"))
        cc = DEFAULT_CONTAINER_CONCURRENCY
    timeout = rev.get("timeout", DEFAULT_TIMEOUT)
    if not isinstance(timeout, int | float) or isinstance(timeout, bool) or not 0 < timeout <= 3600:
        problems.append(("revision.timeout", f"must be seconds in (0, 3600], got {timeout!r}"))
        timeout = DEFAULT_TIMEOUT
    memory = rev.get("memory_limit_mb", DEFAULT_MEMORY_MB)
    if not isinstance(memory, int) or isinstance(memory, bool) or memory < 0:
        problems.append(("revision.memory_limit_mb", f"must be an integer >= 0 (0 = none), got {memory!r}"))
        memory = DEFAULT_MEMORY_MB
    config = base
    try:
        config = with_annotations(base, annotations, cc)
    except AutoscalerConfigError as exc:
        key, _, reason = str(exc).partition(": ")
        problems.append((f"revision.annotations[{key}]", reason or str(exc)))
    if problems:
        raise SpecError(problems)
    spec = RevisionSpec(
        name=name or "",
        content_hash=content_hash,
        artifact=str(artifact_dir),
        runtime=runtime,
        annotations=annotations,
        container_concurrency=cc,
        timeout=float(timeout),
        memory_limit_mb=memory,
    )
    return spec, config


@dataclass(eq=False)
class Instance:
    id: str
    revision: Revision
    state: str = STARTING
    pid: int | None = None
    port: int | None = None
    url: str = ""
    address: int | str = 0  # what the gateway connects to: unix socket path or TCP port
    inflight: int = 0
    requests: int = 0
    max_inflight: int = 0
    started: float = field(default_factory=time.monotonic)
    ready_at: float | None = None
    error: str = ""
    handle: Any = None  # the process handle of instances.py

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "state": self.state,
            "pid": self.pid,
            "port": self.port,
            "inflight": self.inflight,
            "requests": self.requests,
            "max_inflight": self.max_inflight,
            "age": round(time.monotonic() - self.started, 3),
            "error": self.error,
        }


@dataclass(eq=False)
class Revision:
    namespace: str
    service: str
    spec: RevisionSpec
    config: AutoscalerConfig
    created: float = field(default_factory=time.monotonic)
    routable: bool = True
    deleted: bool = False
    instances: dict[str, Instance] = field(default_factory=dict)
    waiters: collections.deque = field(default_factory=collections.deque)
    scaler: ScalerState = field(default_factory=ScalerState)
    metrics: MetricWindow = field(default_factory=MetricWindow)
    desired: int = 0
    requests: int = 0
    errors: int = 0
    cold_starts: int = 0
    # time-weighted concurrency accumulator (in-flight + buffered), flushed each tick
    concurrency: int = 0
    area: float = 0.0
    area_since: float = field(default_factory=time.monotonic)
    area_last: float = field(default_factory=time.monotonic)
    tick_requests: int = 0
    last_poke: float = 0.0
    ever_ready: bool = False
    start_failures: int = 0
    retry_at: float = 0.0
    metric_children: Any = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.service}/{self.spec.name}"

    def live(self) -> list[Instance]:
        return [i for i in self.instances.values() if i.state in (STARTING, READY)]

    def ready(self) -> list[Instance]:
        return [i for i in self.instances.values() if i.state == READY]

    def inflight(self) -> int:
        return sum(i.inflight for i in self.instances.values())

    def view(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "content_hash": self.spec.content_hash,
            "runtime": self.spec.runtime,
            "artifact": self.spec.artifact,
            "annotations": self.spec.annotations,
            "container_concurrency": self.spec.container_concurrency,
            "timeout": self.spec.timeout,
            "routable": self.routable,
            "ready": bool(self.ready()),
            "desired": self.desired,
            "inflight": self.inflight(),
            "buffered": len(self.waiters),
            "requests": self.requests,
            "errors": self.errors,
            "cold_starts": self.cold_starts,
            "instances": [i.view() for i in self.instances.values() if i.state != STOPPED],
        }


@dataclass(eq=False)
class Service:
    namespace: str
    name: str
    revisions: dict[str, Revision] = field(default_factory=dict)
    traffic: str | None = None  # the revision receiving requests
    latest: str | None = None  # the newest revision created
    generation: int = 0

    def serving(self) -> Revision | None:
        name = self.traffic or self.latest
        return self.revisions.get(name) if name else None

    def view(self) -> dict[str, Any]:
        latest = self.revisions.get(self.latest or "")
        return {
            "namespace": self.namespace,
            "name": self.name,
            "generation": self.generation,
            "latest_revision": self.latest,
            "traffic_revision": self.traffic,
            "ready": bool(self.traffic) and self.traffic == self.latest,
            "latest_ready": bool(latest and latest.ever_ready),
            "requests": sum(r.requests for r in self.revisions.values()),
            "inflight": sum(r.inflight() for r in self.revisions.values()),
            "revisions": [r.view() for r in self.revisions.values()],
        }


class Timeline:
    """A bounded log of serving events with monotonic and wall-clock timestamps.

    Events: request_buffered, scale_decision, process_started, instance_ready,
    first_byte, instance_stopped (and revision_ready, traffic_switched,
    instance_failed). ``seq`` increases by one per event; readers poll with
    ``since=<last seq seen>``.
    """

    def __init__(self, size: int = 100_000) -> None:
        self.events: collections.deque[dict[str, Any]] = collections.deque(maxlen=size)
        self._seq = itertools.count(1)

    def record(self, event: str, service: str, mono: float | None = None, **fields: Any) -> None:
        """Append an event; ``mono`` when it happened earlier (or in another process) than now."""
        now = time.monotonic()
        at = now if mono is None else mono
        self.events.append(
            {"seq": next(self._seq), "event": event, "service": service, "mono": at,
             "wall": time.time() - (now - at), **fields}
        )

    def since(self, seq: int = 0, service: str | None = None) -> list[dict[str, Any]]:
        return [
            e
            for e in self.events
            if e["seq"] > seq
            and (service is None or service in (e["service"], f"{e.get('namespace')}/{e['service']}"))
        ]
