"""The Knative manifests of a function and of the platform, as plain dicts.

Pure functions: the same dicts are applied by the kind/cluster targets, PUT to
the local broker's trigger API and the local gateway's management API, and
validated by tests against the CRD schemas of ``../shared/schemas/knative``.
Defaults are the original platform's (DESIGN.md §2).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from knative_lambda.contract import names
from knative_lambda.contract.events import EventKind, event_type, tenant_source
from knative_lambda.settings import DEFAULT_PREFIX

SERVING_API = "serving.knative.dev/v1"
EVENTING_API = "eventing.knative.dev/v1"
RABBITMQ_BROKER_CONFIG_API = "eventing.knative.dev/v1alpha1"
BROKER_CLASS_ANNOTATION = "eventing.knative.dev/broker.class"
BROKER_CLASS = "RabbitMQBroker"
PARALLELISM_ANNOTATION = "rabbitmq.eventing.knative.dev/parallelism"
AUTOSCALING = "autoscaling.knative.dev"
KPA_CLASS = "kpa.autoscaling.knative.dev"

LABEL_DOMAIN = "lambda.notifi.network"
LABEL_TP = f"{LABEL_DOMAIN}/third-party-id"
LABEL_PARSER = f"{LABEL_DOMAIN}/parser-id"
LABEL_HASH = f"{LABEL_DOMAIN}/content-hash"
LABEL_COMPONENT = f"{LABEL_DOMAIN}/component"
MANAGED_BY = {"app.kubernetes.io/managed-by": "knative-lambda"}

CONTAINER_PORT = 8080
DEFAULT_BROKER = "default"
DEFAULT_BROKER_CONFIG = "default-config"


@dataclass(frozen=True)
class Autoscaling:
    """Per-revision autoscaling (``autoscaling.knative.dev/*`` annotations)."""

    target: int = 10
    target_utilization_percentage: int = 50
    min_scale: int = 0
    max_scale: int = 50
    window: str | None = "10s"  # None: no annotation, the cluster's stable-window applies
    panic_window_percentage: float = 10.0
    panic_threshold_percentage: float = 200.0
    container_concurrency: int = 10
    # Per revision, Knative only knows the pod retention period; the grace
    # period itself (30 s) is cluster-wide: see autoscaler_config_map().
    scale_to_zero_pod_retention_period: str | None = None

    def annotations(self) -> dict[str, str]:
        out = {
            f"{AUTOSCALING}/class": KPA_CLASS,
            f"{AUTOSCALING}/metric": "concurrency",
            f"{AUTOSCALING}/target": str(self.target),
            f"{AUTOSCALING}/target-utilization-percentage": str(self.target_utilization_percentage),
            f"{AUTOSCALING}/min-scale": str(self.min_scale),
            f"{AUTOSCALING}/max-scale": str(self.max_scale),
            f"{AUTOSCALING}/panic-window-percentage": _num(self.panic_window_percentage),
            f"{AUTOSCALING}/panic-threshold-percentage": _num(self.panic_threshold_percentage),
        }
        if self.window is not None:
            out[f"{AUTOSCALING}/window"] = self.window
        if self.scale_to_zero_pod_retention_period is not None:
            out[f"{AUTOSCALING}/scale-to-zero-pod-retention-period"] = (
                self.scale_to_zero_pod_retention_period
            )
        return out


@dataclass(frozen=True)
class Delivery:
    """Trigger delivery: retry 5, exponential, PT1S (DESIGN.md §2)."""

    retry: int = 5
    backoff_policy: str = "exponential"
    backoff_delay: str = "PT1S"
    dead_letter_sink: dict[str, Any] | None = None  # a subscriber() dict

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "retry": self.retry,
            "backoffPolicy": self.backoff_policy,
            "backoffDelay": self.backoff_delay,
        }
        if self.dead_letter_sink:
            out["deadLetterSink"] = dict(self.dead_letter_sink)
        return out


DEFAULT_AUTOSCALING = Autoscaling()
DEFAULT_DELIVERY = Delivery()
DEFAULT_PARALLELISM = 50


def _num(value: float) -> str:
    """Knative percentages are floats; "10.0" reads as one, "10" would too but less clearly."""
    return f"{float(value):.1f}"


def _label(value: str) -> str:
    return value[:63].rstrip("-_.")


# --- subscribers ---------------------------------------------------------------


def uri_subscriber(uri: str) -> dict[str, Any]:
    return {"uri": uri}


def ref_subscriber(
    name: str, namespace: str, *, kind: str = "Service", api_version: str = SERVING_API
) -> dict[str, Any]:
    """A reference to an addressable: a Knative Service by default, or a core ``v1`` Service."""
    return {"ref": {"apiVersion": api_version, "kind": kind, "name": name, "namespace": namespace}}


# --- function -------------------------------------------------------------------


def function_labels(
    third_party_id: str, parser_id: str, content_hash: str | None = None
) -> dict[str, str]:
    labels = {**MANAGED_BY, LABEL_TP: _label(third_party_id), LABEL_PARSER: _label(parser_id)}
    if content_hash:
        labels[LABEL_HASH] = _label(content_hash)
    return labels


def function_service(
    third_party_id: str,
    parser_id: str,
    content_hash: str,
    *,
    image: str | None = None,
    registry: str = "localhost:5000",
    namespace: str = "default",
    prefix: str = DEFAULT_PREFIX,
    autoscaling: Autoscaling = DEFAULT_AUTOSCALING,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The ``serving.knative.dev/v1`` Service of one function build.

    ``image`` is the builder's artifact (build.complete ``image_uri``); without
    it the contract's name is used. The content hash is on the revision
    template, so each new hash rolls out a new revision.
    """
    name = names.service_name(third_party_id, parser_id)
    image = image or names.image_uri(registry, third_party_id, parser_id, content_hash)
    container_env = {
        "KL_EVENT_PREFIX": prefix,
        "KL_THIRD_PARTY_ID": third_party_id,
        "KL_PARSER_ID": parser_id,
        "KL_CONTENT_HASH": content_hash,
        **(env or {}),
    }
    return {
        "apiVersion": SERVING_API,
        "kind": "Service",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": function_labels(third_party_id, parser_id),
        },
        "spec": {
            "template": {
                "metadata": {
                    "labels": function_labels(third_party_id, parser_id, content_hash),
                    "annotations": autoscaling.annotations(),
                },
                "spec": {
                    "containerConcurrency": autoscaling.container_concurrency,
                    "containers": [
                        {
                            "name": "function",
                            "image": image,
                            "ports": [{"name": "http1", "containerPort": CONTAINER_PORT}],
                            "env": [{"name": k, "value": v} for k, v in container_env.items()],
                            "readinessProbe": {"httpGet": {"path": "/readyz"}},
                        }
                    ],
                },
            },
            "traffic": [{"latestRevision": True, "percent": 100}],
        },
    }


def function_trigger(
    third_party_id: str,
    parser_id: str,
    subscriber: dict[str, Any],
    *,
    namespace: str = "default",
    broker: str = DEFAULT_BROKER,
    prefix: str = DEFAULT_PREFIX,
    delivery: Delivery = DEFAULT_DELIVERY,
    parallelism: int = DEFAULT_PARALLELISM,
) -> dict[str, Any]:
    """The Trigger delivering ``P.parser.start`` for (tp, parser) to the function."""
    return trigger(
        names.service_name(third_party_id, parser_id),
        {
            "type": event_type(EventKind.PARSER_START, prefix),
            "source": tenant_source(third_party_id),
            "subject": parser_id,
        },
        subscriber,
        namespace=namespace,
        broker=broker,
        delivery=delivery,
        parallelism=parallelism,
        labels=function_labels(third_party_id, parser_id),
    )


def trigger(
    name: str,
    attributes: dict[str, str],
    subscriber: dict[str, Any],
    *,
    namespace: str = "default",
    broker: str = DEFAULT_BROKER,
    delivery: Delivery = DEFAULT_DELIVERY,
    parallelism: int = DEFAULT_PARALLELISM,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An ``eventing.knative.dev/v1`` Trigger with an exact-match attribute filter."""
    return {
        "apiVersion": EVENTING_API,
        "kind": "Trigger",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": dict(labels or MANAGED_BY),
            "annotations": {PARALLELISM_ANNOTATION: str(parallelism)},
        },
        "spec": {
            "broker": broker,
            "filter": {"attributes": dict(attributes)},
            "subscriber": dict(subscriber),
            "delivery": delivery.to_dict(),
        },
    }


# --- platform components -----------------------------------------------------------

BUILDER_KINDS = (EventKind.BUILD_START, EventKind.JOB_START, EventKind.REBUILD_START)
DEPLOYER_KINDS = (EventKind.BUILD_COMPLETE, EventKind.SERVICE_DELETE)


def component_triggers(
    component: str,
    kinds: Iterable[EventKind],
    subscriber: dict[str, Any],
    *,
    namespace: str = "default",
    broker: str = DEFAULT_BROKER,
    prefix: str = DEFAULT_PREFIX,
    delivery: Delivery = DEFAULT_DELIVERY,
    parallelism: int = DEFAULT_PARALLELISM,
) -> list[dict[str, Any]]:
    """One Trigger per event type: the exact filter every broker class supports.

    (``spec.filters`` with ``any`` would need one Trigger, but not every broker
    implements the new filters.)
    """
    return [
        trigger(
            f"kl-{component}-{kind.value.replace('.', '-')}",
            {"type": event_type(kind, prefix)},
            subscriber,
            namespace=namespace,
            broker=broker,
            delivery=delivery,
            parallelism=parallelism,
            labels={**MANAGED_BY, LABEL_COMPONENT: component},
        )
        for kind in kinds
    ]


def builder_triggers(subscriber: dict[str, Any], **kwargs: Any) -> list[dict[str, Any]]:
    """build.start / job.start / rebuild.start -> the builder."""
    return component_triggers("builder", BUILDER_KINDS, subscriber, **kwargs)


def deployer_triggers(subscriber: dict[str, Any], **kwargs: Any) -> list[dict[str, Any]]:
    """build.complete / service.delete -> the deployer."""
    return component_triggers("deployer", DEPLOYER_KINDS, subscriber, **kwargs)


# --- broker ----------------------------------------------------------------------


def rabbitmq_broker_config(
    rabbitmq_cluster: str,
    rabbitmq_namespace: str,
    *,
    name: str = DEFAULT_BROKER_CONFIG,
    namespace: str = "default",
    queue_type: str = "quorum",
) -> dict[str, Any]:
    """eventing-rabbitmq's ``RabbitmqBrokerConfig``: which cluster, quorum queues."""
    return {
        "apiVersion": RABBITMQ_BROKER_CONFIG_API,
        "kind": "RabbitmqBrokerConfig",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(MANAGED_BY)},
        "spec": {
            "rabbitmqClusterReference": {"name": rabbitmq_cluster, "namespace": rabbitmq_namespace},
            "queueType": queue_type,
        },
    }


def broker(
    *,
    name: str = DEFAULT_BROKER,
    namespace: str = "default",
    config_name: str = DEFAULT_BROKER_CONFIG,
    delivery: Delivery = DEFAULT_DELIVERY,
) -> dict[str, Any]:
    """A ``RabbitMQBroker``-class Broker bound to its RabbitmqBrokerConfig."""
    return {
        "apiVersion": EVENTING_API,
        "kind": "Broker",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": dict(MANAGED_BY),
            "annotations": {BROKER_CLASS_ANNOTATION: BROKER_CLASS},
        },
        "spec": {
            "config": {
                "apiVersion": RABBITMQ_BROKER_CONFIG_API,
                "kind": "RabbitmqBrokerConfig",
                "name": config_name,
                "namespace": namespace,
            },
            "delivery": delivery.to_dict(),
        },
    }


def autoscaler_config_map(
    *,
    scale_to_zero_grace_period: str = "30s",
    autoscaling: Autoscaling = DEFAULT_AUTOSCALING,
) -> dict[str, Any]:
    """Knative's cluster-wide ``config-autoscaler`` with the original platform's defaults."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "config-autoscaler", "namespace": "knative-serving"},
        "data": {
            "enable-scale-to-zero": "true",
            "scale-to-zero-grace-period": scale_to_zero_grace_period,
            "stable-window": autoscaling.window,
            "panic-window-percentage": _num(autoscaling.panic_window_percentage),
            "panic-threshold-percentage": _num(autoscaling.panic_threshold_percentage),
            "container-concurrency-target-default": str(autoscaling.target),
            "container-concurrency-target-percentage": str(
                autoscaling.target_utilization_percentage
            ),
            "max-scale": str(autoscaling.max_scale),
            "min-scale": str(autoscaling.min_scale),
        },
    }
