"""Every version the ``kind`` target installs, pinned in one place.

Bump a component here and nowhere else: ``kind.plan`` builds every URL and
image reference from these values, and a test checks that no other module of
the target carries a version of its own.
"""

from __future__ import annotations

from dataclasses import dataclass

# Checked against upstream sources (Nov 2026); each comment names the file read.
#
# The kind binary and the node image must agree: kind v0.25.0's default node image
# is kindest/node:v1.31.2 (kubernetes-sigs/kind@v0.25.0 pkg/apis/config/defaults/image.go);
# release binaries are kind-<os>-<arch> (hack/release/build/cross.sh).
KIND = "v0.25.0"
KIND_NODE_IMAGE = "kindest/node:v1.31.2"
KUBECTL = "v1.31.2"
# Minor version used to validate core manifests with kubernetes-validate.
KUBERNETES = "1.31"

# One Knative minor for all four (tags knative-v1.16.0 in knative/serving, knative/eventing,
# knative-extensions/net-kourier and knative-extensions/eventing-rabbitmq). Knative 1.16
# needs Kubernetes >= 1.29 (knative/community mechanics/RELEASE-SCHEDULE.md).
# net-kourier 1.16 vendors the same knative.dev/networking as serving 1.16 (go.mod);
# eventing-rabbitmq knative-v1.16.0 builds against knative.dev/eventing v0.43.0, the
# same commit as eventing's knative-v1.16.0 tag (go.mod).
KNATIVE_SERVING = "knative-v1.16.0"
KNATIVE_NET_KOURIER = "knative-v1.16.0"
KNATIVE_EVENTING = "knative-v1.16.0"
EVENTING_RABBITMQ = "knative-v1.16.0"
# eventing-rabbitmq's broker needs the cluster operator, the messaging topology
# operator and, for the topology operator's webhooks, cert-manager
# (eventing-rabbitmq@knative-v1.16.0 docs/prerequisites.md; it names no versions).
# The topology operator v1.15.0 needs cert-manager >= 1.2.0 (its README) and is
# "tested with the latest release" of the cluster operator, v2.11.0 at the time
# (tags dated 2024-09-30 and 2024-10-14). cert-manager v1.16.1 (not the v1.15.1 the
# topology operator's Makefile uses) because it is the first line with a kind
# 1.31 e2e image (cert-manager@v1.16.1 make/kind_images.sh).
CERT_MANAGER = "v1.16.1"
RABBITMQ_CLUSTER_OPERATOR = "v2.11.0"
RABBITMQ_TOPOLOGY_OPERATOR = "v1.15.0"

# The cluster operator v2.11.0's own default image (rabbitmq/cluster-operator@v2.11.0
# main.go defaultRabbitmqImage), pinned to the patch release instead of 3.13-management.
RABBITMQ_IMAGE = "rabbitmq:3.13.7-management"
# Both are upstream release tags (git tags in minio/minio and minio/mc), and each
# project's docker-buildx.sh at that tag pushes quay.io/minio/<name>:<tag>. minio/minio
# @RELEASE.2024-10-29T16-01-48Z docs/orchestration/docker-compose/docker-compose.yaml
# runs quay.io/minio/minio:RELEASE.2024-10-13T13-34-11Z. The registry itself is not
# reachable from here. At these tags: `minio server --console-address` and
# /minio/health/ready (cmd/server-main.go, cmd/healthcheck-router.go), `mc mb
# --ignore-existing` (minio/mc cmd/mb-main.go).
MINIO_IMAGE = "quay.io/minio/minio:RELEASE.2024-10-13T13-34-11Z"
MINIO_MC_IMAGE = "quay.io/minio/mc:RELEASE.2024-10-08T09-37-26Z"
REGISTRY_IMAGE = "registry:2.8.3"
PLATFORM_PYTHON_IMAGE = "python:3.11-slim"


@dataclass(frozen=True)
class Release:
    """One remote manifest the target applies, with where it comes from."""

    name: str
    url: str


# Asset names, from each project's release script at the pinned tag:
# serving hack/generate-yamls.sh (serving-crds.yaml, serving-core.yaml), eventing
# hack/generate-yamls.sh (eventing-crds.yaml, eventing-core.yaml), net-kourier
# hack/release.sh (kourier.yaml), eventing-rabbitmq hack/release.sh
# (rabbitmq-broker.yaml), cluster-operator Makefile (cluster-operator.yml),
# messaging-topology-operator .github/workflows/build-test-publish.yml
# (messaging-topology-operator-with-certmanager.yaml), cert-manager
# make/manifests.mk (cert-manager.yaml).
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
