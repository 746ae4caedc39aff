"""The RabbitmqBrokerConfig and RabbitmqCluster schemas accept what upstream accepts
and refuse what upstream refuses.

Accepted manifests are upstream's own samples (path named beside each), at the tags
pinned in targets/versions.py; refused ones break a rule of the upstream CRD or of
eventing-rabbitmq's admission webhook (named beside each).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from knative_lambda.harness.kube.validate import problems
from knative_lambda.harness.targets import kind
from knative_lambda.platform.deployer import manifests as kn

BROKER_CONFIG_SAMPLES = {
    # eventing-rabbitmq@knative-v1.16.0 samples/quick-setup/broker-files/100-broker-config.yaml
    "quick-setup": """
apiVersion: eventing.knative.dev/v1alpha1
kind: RabbitmqBrokerConfig
metadata:
  name: default-config
  namespace: quick-setup-sample
spec:
  rabbitmqClusterReference:
    name: rabbitmq
    namespace: quick-setup-sample
  queueType: quorum
""",
    # samples/external-cluster/broker-files/100-broker-config.yaml
    "external-cluster": """
apiVersion: eventing.knative.dev/v1alpha1
kind: RabbitmqBrokerConfig
metadata:
  name: default-config
  namespace: external-cluster-sample
spec:
  rabbitmqClusterReference:
    namespace: external-cluster-sample
    connectionSecret:
      name: rabbitmq-secret-credentials
  queueType: quorum
""",
    # the quick-setup sample with its commented-out vhost set, a classic queue
    # (config/broker/300-rabbitmqbrokerconfig.yaml: vhost string, enum quorum|classic)
    "vhost-classic": """
apiVersion: eventing.knative.dev/v1alpha1
kind: RabbitmqBrokerConfig
metadata:
  name: default-config
  namespace: quick-setup-sample
spec:
  vhost: you-rabbitmq-vhost
  rabbitmqClusterReference:
    name: rabbitmq
  queueType: classic
""",
    # queueType is optional (+kubebuilder:default:=quorum in rabbitmq_types.go)
    "no-queue-type": """
apiVersion: eventing.knative.dev/v1alpha1
kind: RabbitmqBrokerConfig
metadata:
  name: default-config
spec:
  rabbitmqClusterReference:
    name: rabbitmq
""",
}

CLUSTER_SAMPLES = {
    # rabbitmq/cluster-operator@v2.11.0 docs/examples/plugins/rabbitmq.yaml
    "plugins": """
apiVersion: rabbitmq.com/v1beta1
kind: RabbitmqCluster
metadata:
  name: plugins
spec:
  replicas: 1
  rabbitmq:
    additionalPlugins:
      - rabbitmq_federation
      - rabbitmq_federation_management
""",
    # docs/examples/production-ready/rabbitmq.yaml (override trimmed)
    "production-ready": """
apiVersion: rabbitmq.com/v1beta1
kind: RabbitmqCluster
metadata:
  name: production-ready
spec:
  replicas: 3
  resources:
    requests:
      cpu: 4000m
      memory: 10Gi
    limits:
      cpu: 4000m
      memory: 10Gi
  rabbitmq:
    additionalConfig: |
      cluster_partition_handling = pause_minority
      disk_free_limit.relative = 1.0
      collect_statistics_interval = 10000
  persistence:
    storageClassName: ssd
    storage: "500Gi"
  affinity:
    podAntiAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
      - labelSelector:
          matchExpressions:
            - key: app.kubernetes.io/name
              operator: In
              values:
              - production-ready
        topologyKey: kubernetes.io/hostname
  override:
    statefulSet:
      spec:
        template:
          spec:
            containers: []
""",
    # docs/examples/tls/rabbitmq.yaml
    "tls": """
apiVersion: rabbitmq.com/v1beta1
kind: RabbitmqCluster
metadata:
  name: tls
spec:
  replicas: 1
  tls:
    secretName: tls-secret
""",
}


def _load(text: str) -> dict[str, Any]:
    return yaml.safe_load(text)


def _where(manifest: dict[str, Any]) -> list[str]:
    return [p.where for p in problems(manifest)]


@pytest.mark.parametrize("name", sorted(BROKER_CONFIG_SAMPLES))
def test_upstream_broker_config_samples_validate(name: str) -> None:
    assert problems(_load(BROKER_CONFIG_SAMPLES[name])) == []


@pytest.mark.parametrize("name", sorted(CLUSTER_SAMPLES))
def test_upstream_rabbitmq_cluster_samples_validate(name: str) -> None:
    assert problems(_load(CLUSTER_SAMPLES[name])) == []


def test_what_we_generate_validates() -> None:
    assert problems(kn.rabbitmq_broker_config("rabbitmq", "rabbitmq", namespace="fns")) == []
    assert problems(kind.rabbitmq_cluster(kind.KindOptions())) == []


def _broker_config(**spec_changes: Any) -> dict[str, Any]:
    manifest = copy.deepcopy(_load(BROKER_CONFIG_SAMPLES["quick-setup"]))
    for key, value in spec_changes.items():
        if value is None:
            manifest["spec"].pop(key, None)
        else:
            manifest["spec"][key] = value
    return manifest


REFUSED_BROKER_CONFIGS = [
    # the CRD: queueType enum quorum|classic
    ("stream-queue", _broker_config(queueType="stream"), "spec.queueType", "stream"),
    # the CRD declares no rabbitmqResourcesConfig (that is RabbitmqSource's field)
    (
        "unknown-field",
        _broker_config(rabbitmqResourcesConfig={"vhost": "/"}),
        "spec",
        "rabbitmqResourcesConfig",
    ),
    (
        "unknown-secret-field",
        _broker_config(rabbitmqClusterReference={"connectionSecret": {"name": "s", "key": "uri"}}),
        "spec.rabbitmqClusterReference.connectionSecret",
        "key",
    ),
    ("vhost-not-a-string", _broker_config(vhost=5), "spec.vhost", "string"),
    # the webhook (pkg/utils/rabbitmq_validation.go ValidateRabbitMQClusterReference)
    (
        "no-cluster-reference",
        _broker_config(rabbitmqClusterReference=None),
        "spec",
        "rabbitmqClusterReference",
    ),
    (
        "name-and-secret",
        _broker_config(
            rabbitmqClusterReference={"name": "rabbitmq", "connectionSecret": {"name": "s"}}
        ),
        "spec.rabbitmqClusterReference",
        "exactly one of name and connectionSecret",
    ),
    (
        "neither-name-nor-secret",
        _broker_config(rabbitmqClusterReference={"namespace": "rabbitmq"}),
        "spec.rabbitmqClusterReference",
        "exactly one of name and connectionSecret",
    ),
    (
        "empty-name",
        _broker_config(rabbitmqClusterReference={"name": ""}),
        "spec.rabbitmqClusterReference",
        "exactly one of name and connectionSecret",
    ),
]


@pytest.mark.parametrize(
    ("manifest", "where", "reason"),
    [case[1:] for case in REFUSED_BROKER_CONFIGS],
    ids=[case[0] for case in REFUSED_BROKER_CONFIGS],
)
def test_broker_configs_upstream_refuses_do_not_validate(
    manifest: dict[str, Any], where: str, reason: str
) -> None:
    found = problems(manifest)
    assert [p.where for p in found] == [where], found
    assert reason in found[0].reason


def test_a_broker_config_without_spec_does_not_validate() -> None:
    manifest = _load(BROKER_CONFIG_SAMPLES["quick-setup"])
    del manifest["spec"]
    assert _where(manifest) == [""]


def _cluster(path: list[str], value: Any) -> dict[str, Any]:
    manifest = copy.deepcopy(_load(CLUSTER_SAMPLES["production-ready"]))
    node = manifest
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value
    return manifest


# Each breaks a rule of cluster-operator@v2.11.0 config/crd/bases/rabbitmq.com_rabbitmqclusters.yaml.
REFUSED_CLUSTERS = [
    ("negative-replicas", ["spec", "replicas"], -1, "spec.replicas"),
    ("storage-not-a-quantity", ["spec", "persistence", "storage"], "10 gigs", "spec.persistence.storage"),
    ("cpu-not-a-quantity", ["spec", "resources", "requests", "cpu"], "lots", "spec.resources.requests.cpu"),
    ("plugin-name", ["spec", "rabbitmq", "additionalPlugins"], ["rabbitmq-shovel"], "spec.rabbitmq.additionalPlugins[0]"),
    ("service-type", ["spec", "service", "type"], "External", "spec.service.type"),
    ("unknown-spec-field", ["spec", "replica"], 1, "spec"),
    ("unknown-persistence-field", ["spec", "persistence", "size"], "1Gi", "spec.persistence"),
]


@pytest.mark.parametrize(
    ("path", "value", "where"),
    [case[1:] for case in REFUSED_CLUSTERS],
    ids=[case[0] for case in REFUSED_CLUSTERS],
)
def test_rabbitmq_clusters_upstream_refuses_do_not_validate(
    path: list[str], value: Any, where: str
) -> None:
    assert _where(_cluster(path, value)) == [where]
