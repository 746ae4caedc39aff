"""Schemas of the non-Knative custom resources the kind target applies.

``../shared/schemas/knative`` holds only Knative's own CRDs. These are
eventing-rabbitmq's ``RabbitmqBrokerConfig`` and the RabbitMQ cluster
operator's ``RabbitmqCluster`` CRDs, copied (descriptions and server-side
defaults dropped) from the upstream files at the tags pinned in
``targets/versions.py``, in the same openAPIV3Schema dialect:

- eventing-rabbitmq@knative-v1.16.0 config/broker/300-rabbitmqbrokerconfig.yaml
  (the whole schema), plus what its admission webhook adds (see
  ``RABBITMQ_BROKER_CONFIG_WEBHOOK``);
- cluster-operator@v2.11.0 config/crd/bases/rabbitmq.com_rabbitmqclusters.yaml:
  every ``spec`` field by name, exactly for the fields this project writes,
  open below the others (their upstream schemas are thousands of lines).
"""

from __future__ import annotations

from typing import Any

from knative_lambda.harness.kube.schemas import crd_to_jsonschema

RABBITMQ_BROKER_CONFIG = {
    "type": "object",
    "properties": {
        # Upstream requires no spec field: queueType defaults to quorum, and
        # rabbitmqClusterReference is enforced by the webhook, not the CRD.
        "spec": {
            "type": "object",
            "properties": {
                "vhost": {"type": "string"},
                "queueType": {"type": "string", "enum": ["quorum", "classic"]},
                "rabbitmqClusterReference": {
                    "type": "object",
                    "properties": {
                        "connectionSecret": {
                            "type": "object",
                            "properties": {"name": {"type": "string"}},
                        },
                        "name": {"type": "string"},
                        "namespace": {"type": "string"},
                    },
                },
            },
        },
    },
}

_NAMED = {"required": ["name"], "properties": {"name": {"minLength": 1}}}

# eventing-rabbitmq's webhook validates RabbitmqBrokerConfig too
# (cmd/webhook/broker/main.go; pkg/apis/eventing/v1alpha1/rabbitmq_validation.go
# -> pkg/utils/rabbitmq_validation.go ValidateRabbitMQClusterReference): it refuses
# a missing rabbitmqClusterReference, and one with both or neither of a non-empty
# name and a connectionSecret. Plain JSON Schema (not CRD dialect), so the
# description survives as the error message.
RABBITMQ_BROKER_CONFIG_WEBHOOK: dict[str, Any] = {
    "required": ["spec"],
    "properties": {
        "spec": {
            "required": ["rabbitmqClusterReference"],
            "properties": {
                "rabbitmqClusterReference": {
                    "description": (
                        "set exactly one of name and connectionSecret "
                        "(eventing-rabbitmq's webhook refuses both or neither)"
                    ),
                    "not": {
                        "anyOf": [
                            {**_NAMED, "required": ["name", "connectionSecret"]},
                            {"not": {"anyOf": [_NAMED, {"required": ["connectionSecret"]}]}},
                        ]
                    },
                }
            },
        }
    },
}

_OPEN_OBJECT = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
# resource.Quantity as the cluster operator's CRD spells it.
_QUANTITY = {
    "anyOf": [{"type": "integer"}, {"type": "string"}],
    "pattern": r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$",
    "x-kubernetes-int-or-string": True,
}

RABBITMQ_CLUSTER = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "properties": {
                # written by this project (rabbitmq_cluster() in targets/kind.py)
                "replicas": {"type": "integer", "format": "int32", "minimum": 0},
                "image": {"type": "string"},
                "resources": {
                    "type": "object",
                    "properties": {
                        "claims": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["name"],
                                "properties": {
                                    "name": {"type": "string"},
                                    "request": {"type": "string"},
                                },
                            },
                        },
                        "limits": {"type": "object", "additionalProperties": _QUANTITY},
                        "requests": {"type": "object", "additionalProperties": _QUANTITY},
                    },
                },
                "persistence": {
                    "type": "object",
                    "properties": {
                        "storage": _QUANTITY,
                        "storageClassName": {"type": "string"},
                    },
                },
                "rabbitmq": {
                    "type": "object",
                    "properties": {
                        "additionalConfig": {"type": "string", "maxLength": 100000},
                        "additionalPlugins": {
                            "type": "array",
                            "maxItems": 100,
                            "items": {"type": "string", "maxLength": 100, "pattern": r"^\w+$"},
                        },
                        "advancedConfig": {"type": "string", "maxLength": 100000},
                        "envConfig": {"type": "string", "maxLength": 100000},
                        "erlangInetConfig": {"type": "string", "maxLength": 2000},
                    },
                },
                "service": {
                    "type": "object",
                    "properties": {
                        "annotations": {
                            "type": "object",
                            "additionalProperties": {"type": "string"},
                        },
                        "ipFamilyPolicy": {
                            "type": "string",
                            "enum": ["SingleStack", "PreferDualStack", "RequireDualStack"],
                        },
                        "type": {
                            "type": "string",
                            "enum": ["ClusterIP", "LoadBalancer", "NodePort"],
                        },
                    },
                },
                "tls": {
                    "type": "object",
                    "properties": {
                        "caSecretName": {"type": "string"},
                        "disableNonTLSListeners": {"type": "boolean"},
                        "secretName": {"type": "string"},
                    },
                },
                "delayStartSeconds": {"type": "integer", "format": "int32", "minimum": 0},
                "terminationGracePeriodSeconds": {
                    "type": "integer",
                    "format": "int64",
                    "minimum": 0,
                },
                "skipPostDeploySteps": {"type": "boolean"},
                # not written here: upstream's full schemas, left open
                "affinity": _OPEN_OBJECT,
                "imagePullSecrets": {"type": "array"},
                "override": _OPEN_OBJECT,
                "secretBackend": _OPEN_OBJECT,
                "tolerations": {"type": "array"},
            },
        },
        "status": _OPEN_OBJECT,
    },
}

EXTRA_SCHEMAS: dict[tuple[str, str], dict[str, Any]] = {
    ("eventing.knative.dev/v1alpha1", "RabbitmqBrokerConfig"): {
        **crd_to_jsonschema(RABBITMQ_BROKER_CONFIG),
        "allOf": [RABBITMQ_BROKER_CONFIG_WEBHOOK],
    },
    ("rabbitmq.com/v1beta1", "RabbitmqCluster"): crd_to_jsonschema(RABBITMQ_CLUSTER),
}
