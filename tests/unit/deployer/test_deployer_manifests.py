"""The Knative manifests of a function and of the broker: DESIGN.md §2 values, schema-valid."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from knative_lambda.contract import names
from knative_lambda.harness.kube import ManifestError, problems, validate_manifest
from knative_lambda.platform.deployer import manifests as m

TP, PARSER, HASH = "acme", "invoice-parser", "0123456789ab"
PREFIX = "network.notifi.lambda"


def service() -> dict[str, Any]:
    return m.function_service(TP, PARSER, HASH, registry="registry.local:5000")


def fn_trigger(subscriber: dict[str, Any] | None = None) -> dict[str, Any]:
    sub = subscriber or m.ref_subscriber(names.service_name(TP, PARSER), "default")
    return m.function_trigger(TP, PARSER, sub)


def every_manifest() -> list[dict[str, Any]]:
    return [
        service(),
        fn_trigger(),
        fn_trigger(m.uri_subscriber("http://127.0.0.1:8080/default/lambda-acme-invoice-parser/")),
        m.broker(),
        m.rabbitmq_broker_config("rabbitmq", "rabbitmq"),
        m.autoscaler_config_map(),
        *m.builder_triggers(m.uri_subscriber("http://kl-builder.knative-lambda.svc/")),
        *m.deployer_triggers(m.uri_subscriber("http://127.0.0.1:9999/")),
    ]


@pytest.mark.parametrize(
    "manifest", every_manifest(), ids=lambda x: f"{x['kind']}-{x['metadata']['name']}"
)
def test_every_generated_manifest_validates(manifest: dict[str, Any], schemas_dir) -> None:
    validate_manifest(manifest, schemas_dir=schemas_dir)


ANNOTATIONS = {
    "autoscaling.knative.dev/class": "kpa.autoscaling.knative.dev",
    "autoscaling.knative.dev/target": "10",
    "autoscaling.knative.dev/target-utilization-percentage": "50",
    "autoscaling.knative.dev/min-scale": "0",
    "autoscaling.knative.dev/max-scale": "50",
    "autoscaling.knative.dev/window": "10s",
    "autoscaling.knative.dev/panic-window-percentage": "10.0",
    "autoscaling.knative.dev/panic-threshold-percentage": "200.0",
}


@pytest.mark.parametrize(("key", "value"), ANNOTATIONS.items())
def test_service_carries_the_design_autoscaling_annotation(key: str, value: str) -> None:
    assert service()["spec"]["template"]["metadata"]["annotations"][key] == value


def test_service_shape_follows_the_contract() -> None:
    svc = service()
    spec = svc["spec"]["template"]["spec"]
    container = spec["containers"][0]
    assert svc["metadata"]["name"] == names.service_name(TP, PARSER)
    assert spec["containerConcurrency"] == 10
    assert container["ports"] == [{"name": "http1", "containerPort": 8080}]
    assert container["image"] == names.image_uri("registry.local:5000", TP, PARSER, HASH)
    labels = svc["spec"]["template"]["metadata"]["labels"]
    assert (
        labels[m.LABEL_TP] == TP
        and labels[m.LABEL_PARSER] == PARSER
        and labels[m.LABEL_HASH] == HASH
    )
    assert svc["spec"]["traffic"] == [{"latestRevision": True, "percent": 100}]


def test_the_builders_artifact_wins_over_the_derived_image() -> None:
    svc = m.function_service(TP, PARSER, HASH, image="example.org/x:y")
    assert svc["spec"]["template"]["spec"]["containers"][0]["image"] == "example.org/x:y"


def test_retention_period_annotation_only_when_configured() -> None:
    key = "autoscaling.knative.dev/scale-to-zero-pod-retention-period"
    assert key not in service()["spec"]["template"]["metadata"]["annotations"]
    tuned = m.function_service(
        TP, PARSER, HASH, autoscaling=m.Autoscaling(scale_to_zero_pod_retention_period="5s")
    )
    assert tuned["spec"]["template"]["metadata"]["annotations"][key] == "5s"


def test_a_long_content_hash_still_makes_a_valid_label(schemas_dir) -> None:
    svc = m.function_service(TP, PARSER, "f" * 64)
    assert len(svc["spec"]["template"]["metadata"]["labels"][m.LABEL_HASH]) <= 63
    validate_manifest(svc, schemas_dir=schemas_dir)


def test_function_trigger_filters_on_type_source_subject() -> None:
    trig = fn_trigger()
    assert trig["metadata"]["name"] == names.service_name(TP, PARSER)
    assert trig["spec"]["broker"] == "default"
    assert trig["spec"]["filter"]["attributes"] == {
        "type": f"{PREFIX}.parser.start",
        "source": f"network.notifi.{TP}",
        "subject": PARSER,
    }
    assert trig["spec"]["delivery"] == {
        "retry": 5,
        "backoffPolicy": "exponential",
        "backoffDelay": "PT1S",
    }
    assert trig["metadata"]["annotations"] == {"rabbitmq.eventing.knative.dev/parallelism": "50"}


def test_prefix_is_configurable() -> None:
    trig = m.function_trigger(TP, PARSER, m.uri_subscriber("http://x/"), prefix="com.example.fn")
    assert trig["spec"]["filter"]["attributes"]["type"] == "com.example.fn.parser.start"


def test_broker_is_rabbitmq_class_with_quorum_queue_config() -> None:
    broker, config = m.broker(), m.rabbitmq_broker_config("rabbitmq", "rabbitmq")
    assert broker["metadata"]["annotations"] == {
        "eventing.knative.dev/broker.class": "RabbitMQBroker"
    }
    ref = broker["spec"]["config"]
    assert (ref["kind"], ref["name"], ref["apiVersion"]) == (
        config["kind"],
        config["metadata"]["name"],
        config["apiVersion"],
    )
    assert config["spec"]["queueType"] == "quorum"


def test_component_triggers_one_per_type() -> None:
    builder = m.builder_triggers(m.uri_subscriber("http://b/"))
    deployer = m.deployer_triggers(m.uri_subscriber("http://d/"))
    assert [t["spec"]["filter"]["attributes"]["type"] for t in builder] == [
        f"{PREFIX}.build.start",
        f"{PREFIX}.job.start",
        f"{PREFIX}.rebuild.start",
    ]
    assert [t["spec"]["filter"]["attributes"]["type"] for t in deployer] == [
        f"{PREFIX}.build.complete",
        f"{PREFIX}.service.delete",
    ]
    assert len({t["metadata"]["name"] for t in builder + deployer}) == 5


def test_local_broker_accepts_the_generated_triggers() -> None:
    """The same Trigger object is PUT to the local broker's trigger API."""
    triggers = pytest.importorskip("knative_lambda.platform.broker.triggers")
    trig = fn_trigger(m.uri_subscriber("http://127.0.0.1:8080/default/lambda-acme-invoice-parser/"))
    spec = triggers.parse_trigger(trig, "default", trig["metadata"]["name"])
    assert spec.attributes == trig["spec"]["filter"]["attributes"]
    assert spec.parallelism == 50
    assert spec.delivery.retry == 5 and spec.delivery.backoff_policy == "exponential"
    assert spec.delivery.backoff_delay == 1.0


def _set(doc: dict[str, Any], path: list[Any], value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    node = doc
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return doc


def _drop(doc: dict[str, Any], path: list[Any]) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    node = doc
    for part in path[:-1]:
        node = node[part]
    del node[path[-1]]
    return doc


BROKEN = [
    (
        "port-as-string",
        lambda: _set(
            service(),
            ["spec", "template", "spec", "containers", 0, "ports", 0, "containerPort"],
            "8080",
        ),
        "spec.template.spec.containers[0].ports[0].containerPort",
    ),
    (
        "typo-field",
        lambda: _set(service(), ["spec", "template", "spec", "contianers"], []),
        "spec.template.spec",
    ),
    (
        "no-containers",
        lambda: _drop(service(), ["spec", "template", "spec", "containers"]),
        "spec.template.spec",
    ),
    (
        "annotation-not-string",
        lambda: _set(
            service(),
            ["spec", "template", "metadata", "annotations", "autoscaling.knative.dev/target"],
            10,
        ),
        "spec.template.metadata.annotations.autoscaling.knative.dev/target",
    ),
    (
        "concurrency-as-string",
        lambda: _set(service(), ["spec", "template", "spec", "containerConcurrency"], "10"),
        "spec.template.spec.containerConcurrency",
    ),
    ("bad-name", lambda: _set(service(), ["metadata", "name"], "Lambda_ACME"), "metadata.name"),
    ("name-too-long", lambda: _set(service(), ["metadata", "name"], "a" * 64), "metadata.name"),
    (
        "bad-label-value",
        lambda: _set(service(), ["metadata", "labels", m.LABEL_TP], "a b"),
        f"metadata.labels.{m.LABEL_TP}",
    ),
    ("wrong-api-version", lambda: _set(service(), ["apiVersion"], "serving.knative.dev/v2"), ""),
    (
        "trigger-retry-string",
        lambda: _set(fn_trigger(), ["spec", "delivery", "retry"], "5"),
        "spec.delivery.retry",
    ),
    ("trigger-broker-number", lambda: _set(fn_trigger(), ["spec", "broker"], 1), "spec.broker"),
    (
        "trigger-subscriber-typo",
        lambda: _set(fn_trigger(), ["spec", "subscriber", "url"], "http://x"),
        "spec.subscriber",
    ),
    (
        "broker-config-kind-number",
        lambda: _set(m.broker(), ["spec", "config", "kind"], 3),
        "spec.config.kind",
    ),
    (
        "broker-config-queue-type",
        lambda: _set(m.rabbitmq_broker_config("r", "r"), ["spec", "queueType"], "lazy"),
        "spec.queueType",
    ),
    (
        "config-autoscaler-unknown-key",
        lambda: _set(m.autoscaler_config_map(), ["data", "scale-to-zero-grace"], "1s"),
        "data.scale-to-zero-grace",
    ),
    ("missing-metadata", lambda: _drop(fn_trigger(), ["metadata"]), ""),
]


@pytest.mark.parametrize(("case", "make", "where"), BROKEN, ids=[b[0] for b in BROKEN])
def test_a_broken_manifest_fails_with_the_path_of_the_problem(
    case, make, where, schemas_dir
) -> None:
    manifest = make()
    with pytest.raises(ManifestError) as info:
        validate_manifest(manifest, schemas_dir=schemas_dir)
    wheres = [p.where for p in info.value.problems]
    assert where in wheres, (case, info.value.problems)
    assert str(info.value).count("\n") == 0  # one line for a person
    assert (where or "<root>") in str(info.value)


def test_every_problem_is_listed_not_just_the_first(schemas_dir) -> None:
    bad = _set(service(), ["spec", "template", "spec", "containerConcurrency"], "10")
    bad = _set(bad, ["metadata", "name"], "Bad_Name")
    found = problems(bad, schemas_dir=schemas_dir)
    assert {"metadata.name", "spec.template.spec.containerConcurrency"} <= {p.where for p in found}
