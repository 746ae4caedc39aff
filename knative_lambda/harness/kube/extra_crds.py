"""Schemas of the non-Knative custom resources the kind target applies.

``../shared/schemas/knative`` holds only Knative's own CRDs. These are the
parts of the eventing-rabbitmq ``RabbitmqBrokerConfig`` and the RabbitMQ
cluster operator's ``RabbitmqCluster`` CRDs that this project sets, written in
the same openAPIV3Schema dialect (strict where we write fields, open where the
operator accepts more than we model).
"""

from __future__ import annotations

from typing import Any

from knative_lambda.harness.kube.schemas import crd_to_jsonschema

_REF = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "namespace": {"type": "string"},
        "connectionSecret": {"type": "object", "properties": {"name": {"type": "string"}}},
    },
}

RABBITMQ_BROKER_CONFIG = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "required": ["rabbitmqClusterReference"],
            "properties": {
                "rabbitmqClusterReference": _REF,
                "queueType": {"type": "string", "enum": ["quorum", "classic"]},
                "rabbitmqResourcesConfig": {
                    "type": "object",
                    "x-kubernetes-preserve-unknown-fields": True,
                },
            },
        },
        "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
    },
}

RABBITMQ_CLUSTER = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "properties": {
                "replicas": {"type": "integer", "minimum": 0},
                "image": {"type": "string"},
                "resources": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                "persistence": {
                    "type": "object",
                    "properties": {
                        "storage": {"x-kubernetes-int-or-string": True},
                        "storageClassName": {"type": "string"},
                    },
                },
                "rabbitmq": {
                    "type": "object",
                    "properties": {
                        "additionalConfig": {"type": "string"},
                        "additionalPlugins": {"type": "array", "items": {"type": "string"}},
                    },
                },
                "service": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                "override": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            },
        },
        "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
    },
}

EXTRA_SCHEMAS: dict[tuple[str, str], dict[str, Any]] = {
    ("eventing.knative.dev/v1alpha1", "RabbitmqBrokerConfig"): crd_to_jsonschema(
        RABBITMQ_BROKER_CONFIG
    ),
    ("rabbitmq.com/v1beta1", "RabbitmqCluster"): crd_to_jsonschema(RABBITMQ_CLUSTER),
}
