"""What the deployer does for one event: a pure function from event to actions.

    build.complete (status not failed/timeout, image_uri set) -> ApplyService, ApplyTrigger
    build.complete without an image                           -> Reject (nothing to deploy)
    build.complete with status failed/timeout                 -> Skip
    build.failed / build.timeout / other kinds of ours        -> Skip
    service.delete                                            -> DeleteTrigger, DeleteService
    a type outside the prefix                                 -> Skip
    data that breaks the contract                             -> Reject (problems listed)

The trigger goes before the service on delete so that no parser.start is
routed to a service that is about to disappear; on deploy the service comes
first so that the trigger never points at nothing. Executing the actions (HTTP
to the gateway and broker, or the Kubernetes API) is :mod:`.service`'s job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from knative_lambda.contract import names
from knative_lambda.contract.errors import Problem
from knative_lambda.contract.events import (
    STATUS_FAILED,
    STATUS_TIMEOUT,
    BuildResult,
    EventKind,
    ServiceDelete,
    kind_of,
)
from knative_lambda.platform.deployer import manifests
from knative_lambda.settings import DEFAULT_PREFIX


@dataclass(frozen=True)
class DeployerConfig:
    prefix: str = DEFAULT_PREFIX
    namespace: str = "default"
    broker: str = manifests.DEFAULT_BROKER
    # Local target: triggers deliver to <gateway_url>/<namespace>/<service>/.
    # Empty (kind, cluster): they reference the Knative Service instead.
    gateway_url: str = ""
    autoscaling: manifests.Autoscaling = manifests.DEFAULT_AUTOSCALING
    delivery: manifests.Delivery = manifests.DEFAULT_DELIVERY
    parallelism: int = manifests.DEFAULT_PARALLELISM

    def subscriber(self, service: str) -> dict[str, Any]:
        if self.gateway_url:
            return manifests.uri_subscriber(
                f"{self.gateway_url.rstrip('/')}/{self.namespace}/{service}/"
            )
        return manifests.ref_subscriber(service, self.namespace)


@dataclass(frozen=True)
class ApplyService:
    name: str
    namespace: str
    manifest: dict[str, Any] = field(compare=False)
    content_hash: str = ""
    image_uri: str = ""
    # The local builder adds its artifact key and runtime to build.complete; the
    # local gateway runs that artifact. Other builders leave them empty.
    artifact: str = ""
    runtime: str = ""


@dataclass(frozen=True)
class ApplyTrigger:
    name: str
    namespace: str
    manifest: dict[str, Any] = field(compare=False)


@dataclass(frozen=True)
class DeleteService:
    name: str
    namespace: str


@dataclass(frozen=True)
class DeleteTrigger:
    name: str
    namespace: str


@dataclass(frozen=True)
class Skip:
    reason: str


@dataclass(frozen=True)
class Reject:
    """The event cannot be acted on; retrying will not help (answered with 400)."""

    reason: str
    problems: tuple[Problem, ...] = ()


Action = ApplyService | ApplyTrigger | DeleteService | DeleteTrigger | Skip | Reject

NOT_DEPLOYABLE = frozenset({STATUS_FAILED, STATUS_TIMEOUT})


def decide(type_: str, data: Any, config: DeployerConfig = DeployerConfig()) -> list[Action]:
    """The actions for an event of type ``type_`` carrying ``data``."""
    kind = kind_of(type_, config.prefix)
    if kind is None:
        return [Skip(f"{type_!r} is not an event type under {config.prefix!r}")]
    if kind is EventKind.BUILD_COMPLETE:
        return _on_build_complete(data, config)
    if kind is EventKind.SERVICE_DELETE:
        return _on_service_delete(data, config)
    return [Skip(f"the deployer does not act on {kind.value}")]


def _on_build_complete(data: Any, config: DeployerConfig) -> list[Action]:
    found = BuildResult.problems(data)
    if found:
        return [Reject("build.complete data breaks the contract", tuple(found))]
    result = BuildResult.from_dict(data)
    if result.status.lower() in NOT_DEPLOYABLE:
        return [Skip(f"build.complete with status {result.status!r}: nothing to deploy")]
    if not result.image_uri.strip():
        return [
            Reject(
                "build.complete without image_uri: nothing to deploy",
                (Problem("data.image_uri", "must name the built artifact"),),
            )
        ]
    tp, parser = result.third_party_id, result.parser_id
    service = manifests.function_service(
        tp,
        parser,
        result.content_hash,
        image=result.image_uri,
        namespace=config.namespace,
        prefix=config.prefix,
        autoscaling=config.autoscaling,
    )
    name = service["metadata"]["name"]
    trigger = manifests.function_trigger(
        tp,
        parser,
        config.subscriber(name),
        namespace=config.namespace,
        broker=config.broker,
        prefix=config.prefix,
        delivery=config.delivery,
        parallelism=config.parallelism,
    )
    extra = data if isinstance(data, dict) else {}
    artifact = extra.get("artifact") if isinstance(extra.get("artifact"), str) else ""
    runtime = extra.get("runtime") if isinstance(extra.get("runtime"), str) else ""
    return [
        ApplyService(
            name,
            config.namespace,
            service,
            result.content_hash,
            result.image_uri,
            artifact,
            runtime,
        ),
        ApplyTrigger(trigger["metadata"]["name"], config.namespace, trigger),
    ]


def _on_service_delete(data: Any, config: DeployerConfig) -> list[Action]:
    found = ServiceDelete.problems(data)
    if found:
        return [Reject("service.delete data breaks the contract", tuple(found))]
    request = ServiceDelete.from_dict(data)
    name = request.service_name or names.service_name(request.third_party_id, request.parser_id)
    # The function's trigger carries the service's name (manifests.function_trigger).
    return [DeleteTrigger(name, config.namespace), DeleteService(name, config.namespace)]
