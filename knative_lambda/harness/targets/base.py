"""The ``Target`` protocol: everything a scenario may ask of a platform.

Scenarios (conformance, benchmarks, chaos) talk only to this protocol, never to
a backend, so the same scenario runs on ``local``, ``kind`` and ``cluster``.
Calls are synchronous and bounded by explicit timeouts; failures raise
``knative_lambda.errors.KLError`` subclasses with a message a person can act on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from knative_lambda.settings import Settings


@dataclass(frozen=True)
class Function:
    """A deployed function, as scenarios see it."""

    third_party_id: str
    parser_id: str
    service: str  # contract.names.service_name(tp, parser)
    namespace: str
    url: str  # data-plane URL that invokes it over HTTP
    content_hash: str = ""


@dataclass(frozen=True)
class BuildOutcome:
    """The terminal build event: kind is "build.complete" | "build.failed" | "build.timeout"."""

    kind: str
    data: dict[str, Any]
    event_id: str
    elapsed_s: float


@dataclass(frozen=True)
class Invocation:
    status: int
    body: Any  # parsed JSON when the answer is JSON, else bytes (invoke_event: always bytes)
    headers: dict[str, str] = field(default_factory=dict)
    elapsed_s: float = 0.0


@runtime_checkable
class Target(Protocol):
    name: str  # "local" | "kind" | "cluster"
    settings: Settings

    # -- health ---------------------------------------------------------------
    def health(self) -> dict[str, tuple[bool, str]]: ...

    # -- functions ------------------------------------------------------------
    def upload_source(self, parser_id: str, source: bytes) -> str: ...  # returns content hash
    def build(
        self, tp: str, parser: str, source: bytes | None = None, *, rebuild: bool = False,
        kind: str = "build.start", timeout: float = 120.0,
    ) -> BuildOutcome: ...
    def deploy(self, tp: str, parser: str, source: bytes, *, timeout: float = 120.0) -> Function: ...
    def invoke(self, fn: Function, data: Any, *, timeout: float = 30.0,
               headers: dict[str, str] | None = None) -> Invocation: ...
    def delete(self, fn: Function, *, timeout: float = 30.0) -> None: ...
    def invoke_event(self, fn: Function, event: Any, *, timeout: float = 30.0) -> Invocation: ...
    def services(self) -> list[dict[str, Any]]: ...
    def service(self, name: str) -> dict[str, Any] | None: ...
    def triggers(self) -> list[dict[str, Any]]: ...  # with delivered/retried/dead_lettered counts

    # -- events ---------------------------------------------------------------
    def publish(self, event: Any) -> int: ...  # HTTP status of the broker ingress
    def publish_raw(self, headers: dict[str, str], body: bytes) -> tuple[int, Any]: ...
    def ingress_url(self) -> str: ...

    # -- scaling --------------------------------------------------------------
    def instance_count(self, fn: Function) -> int: ...
    def timeline(self, fn: Function, since: float = 0.0) -> list[dict[str, Any]]: ...
    def wait_scaled_to_zero(self, fn: Function, *, timeout: float = 120.0) -> float: ...

    # -- traces (optional: scenarios use getattr(target, "trace_spans", None)) --
    # def trace_spans(self, trace_id: str, names: Sequence[str] = (), *, timeout: float = 5.0
    #                 ) -> list[dict[str, Any]] | None
    # The spans of one trace as knative_lambda.platform.tracing records them, waiting
    # until every name in ``names`` is there (or the timeout); None when the target
    # keeps no spans the harness can read (kind, cluster: they go to a collector).

    # -- faults (chaos) -------------------------------------------------------
    def parts(self) -> list[str]: ...  # e.g. rabbitmq, s3, broker, builder, gateway, deployer
    def kill(self, part: str) -> None: ...
    def pause(self, part: str) -> None: ...
    def resume(self, part: str) -> None: ...
    def restart(self, part: str, *, timeout: float = 60.0) -> None: ...
    def kill_instances(self, fn: Function, count: int | None = 1) -> int: ...
