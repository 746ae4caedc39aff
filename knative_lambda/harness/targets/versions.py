"""Every version the ``kind`` target installs, pinned in one place.

Bump a component here and nowhere else: ``kind.plan`` builds every URL and
image reference from these values, and a test checks that no other module of
the target carries a version of its own.
"""

from __future__ import annotations

from dataclasses import dataclass

# The kind binary and the node image must agree (kind's release notes list the
# node images each kind release was built for).
KIND = "v0.25.0"
KIND_NODE_IMAGE = "kindest/node:v1.31.2"
KUBECTL = "v1.31.2"
# Minor version used to validate core manifests with kubernetes-validate.
KUBERNETES = "1.31"

KNATIVE_SERVING = "knative-v1.16.0"
KNATIVE_NET_KOURIER = "knative-v1.16.0"
KNATIVE_EVENTING = "knative-v1.16.0"
EVENTING_RABBITMQ = "knative-v1.16.0"
# eventing-rabbitmq needs cert-manager and the messaging topology operator.
CERT_MANAGER = "v1.16.1"
RABBITMQ_CLUSTER_OPERATOR = "v2.11.0"
RABBITMQ_TOPOLOGY_OPERATOR = "v1.15.0"

RABBITMQ_IMAGE = "rabbitmq:3.13-management"
MINIO_IMAGE = "quay.io/minio/minio:RELEASE.2024-10-13T13-34-11Z"
MINIO_MC_IMAGE = "quay.io/minio/mc:RELEASE.2024-10-08T09-37-26Z"
REGISTRY_IMAGE = "registry:2.8.3"
PLATFORM_PYTHON_IMAGE = "python:3.11-slim"


@dataclass(frozen=True)
class Release:
    """One remote manifest the target applies, with where it comes from."""

    name: str
    url: str


def _gh(repo: str, tag: str, asset: str) -> str:
    return f"https://github.com/{repo}/releases/download/{tag}/{asset}"


SERVING_CRDS = Release(
    "knative-serving-crds", _gh("knative/serving", KNATIVE_SERVING, "serving-crds.yaml")
)
SERVING_CORE = Release(
    "knative-serving-core", _gh("knative/serving", KNATIVE_SERVING, "serving-core.yaml")
)
KOURIER = Release("kourier", _gh("knative/net-kourier", KNATIVE_NET_KOURIER, "kourier.yaml"))
EVENTING_CRDS = Release(
    "knative-eventing-crds", _gh("knative/eventing", KNATIVE_EVENTING, "eventing-crds.yaml")
)
EVENTING_CORE = Release(
    "knative-eventing-core", _gh("knative/eventing", KNATIVE_EVENTING, "eventing-core.yaml")
)
CERT_MANAGER_RELEASE = Release(
    "cert-manager", _gh("cert-manager/cert-manager", CERT_MANAGER, "cert-manager.yaml")
)
RABBITMQ_OPERATOR = Release(
    "rabbitmq-cluster-operator",
    _gh("rabbitmq/cluster-operator", RABBITMQ_CLUSTER_OPERATOR, "cluster-operator.yml"),
)
RABBITMQ_TOPOLOGY = Release(
    "rabbitmq-messaging-topology-operator",
    _gh(
        "rabbitmq/messaging-topology-operator",
        RABBITMQ_TOPOLOGY_OPERATOR,
        "messaging-topology-operator-with-certmanager.yaml",
    ),
)
RABBITMQ_BROKER = Release(
    "eventing-rabbitmq-broker",
    _gh("knative-extensions/eventing-rabbitmq", EVENTING_RABBITMQ, "rabbitmq-broker.yaml"),
)

ALL_VERSIONS: dict[str, str] = {
    "kind": KIND,
    "kind-node-image": KIND_NODE_IMAGE,
    "kubectl": KUBECTL,
    "kubernetes": KUBERNETES,
    "knative-serving": KNATIVE_SERVING,
    "knative-net-kourier": KNATIVE_NET_KOURIER,
    "knative-eventing": KNATIVE_EVENTING,
    "eventing-rabbitmq": EVENTING_RABBITMQ,
    "cert-manager": CERT_MANAGER,
    "rabbitmq-cluster-operator": RABBITMQ_CLUSTER_OPERATOR,
    "rabbitmq-topology-operator": RABBITMQ_TOPOLOGY_OPERATOR,
    "rabbitmq-image": RABBITMQ_IMAGE,
    "minio-image": MINIO_IMAGE,
    "minio-mc-image": MINIO_MC_IMAGE,
    "registry-image": REGISTRY_IMAGE,
    "platform-python-image": PLATFORM_PYTHON_IMAGE,
}
