"""The deployer's decision table: event -> actions, no I/O."""

from __future__ import annotations

from typing import Any

import pytest

from knative_lambda.contract import names
from knative_lambda.platform.deployer.decide import (
    ApplyService,
    ApplyTrigger,
    DeleteService,
    DeleteTrigger,
    DeployerConfig,
    Reject,
    Skip,
    decide,
)

P = "network.notifi.lambda"
SVC = names.service_name("acme", "parser-1")
LOCAL = DeployerConfig(gateway_url="http://127.0.0.1:7000")
KUBE = DeployerConfig()


def result(**overrides: Any) -> dict[str, Any]:
    data = {
        "third_party_id": "acme",
        "parser_id": "parser-1",
        "content_hash": "0123456789ab",
        "job_name": "build-acme-parser-1-01234567",
        "image_uri": "localhost:5000/knative-lambdas:acme-parser-1-01234567",
        "status": "succeeded",
        "error_message": "",
        "exit_code": 0,
        "duration": 1.5,
        "correlation_id": "",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not ...}


def delete(**overrides: Any) -> dict[str, Any]:
    data = {"third_party_id": "acme", "parser_id": "parser-1"}
    data.update(overrides)
    return data


def shape(actions: list[Any]) -> list[tuple[str, str]]:
    return [(type(a).__name__, getattr(a, "name", "")) for a in actions]


TABLE = [
    # (case, type suffix or full type, data, expected action shapes)
    (
        "complete deploys",
        "build.complete",
        result(),
        [("ApplyService", SVC), ("ApplyTrigger", SVC)],
    ),
    (
        "cached build deploys",
        "build.complete",
        result(cached=True),
        [("ApplyService", SVC), ("ApplyTrigger", SVC)],
    ),
    (
        "other status text deploys",
        "build.complete",
        result(status="completed"),
        [("ApplyService", SVC), ("ApplyTrigger", SVC)],
    ),
    ("complete but failed status", "build.complete", result(status="failed"), [("Skip", "")]),
    ("complete but timeout status", "build.complete", result(status="TIMEOUT"), [("Skip", "")]),
    ("complete without image", "build.complete", result(image_uri=""), [("Reject", "")]),
    ("complete blank image", "build.complete", result(image_uri="  "), [("Reject", "")]),
    ("complete missing field", "build.complete", result(content_hash=...), [("Reject", "")]),
    ("complete bad tp", "build.complete", result(third_party_id="Not An Id"), [("Reject", "")]),
    ("complete data not object", "build.complete", "nope", [("Reject", "")]),
    ("complete no data", "build.complete", None, [("Reject", "")]),
    ("failed is ignored", "build.failed", result(status="failed", image_uri=""), [("Skip", "")]),
    ("timeout is ignored", "build.timeout", result(status="timeout"), [("Skip", "")]),
    (
        "delete removes trigger then service",
        "service.delete",
        delete(),
        [("DeleteTrigger", SVC), ("DeleteService", SVC)],
    ),
    (
        "delete by explicit name",
        "service.delete",
        delete(service_name="lambda-custom"),
        [("DeleteTrigger", "lambda-custom"), ("DeleteService", "lambda-custom")],
    ),
    (
        "delete with reason",
        "service.delete",
        delete(reason="retired", correlation_id=""),
        [("DeleteTrigger", SVC), ("DeleteService", SVC)],
    ),
    ("delete bad name", "service.delete", delete(service_name="Bad_Name"), [("Reject", "")]),
    ("delete missing parser", "service.delete", {"third_party_id": "acme"}, [("Reject", "")]),
    (
        "build.start not ours",
        "build.start",
        {"third_party_id": "acme", "parser_id": "p"},
        [("Skip", "")],
    ),
    ("parser.start not ours", "parser.start", {"x": 1}, [("Skip", "")]),
    ("result not ours", "result", {"succeeded": True, "eventEntries": []}, [("Skip", "")]),
    ("foreign prefix", "com.example.build.complete", result(), [("Skip", "")]),
    ("unknown suffix", "network.notifi.lambda.build.exploded", result(), [("Skip", "")]),
]


@pytest.mark.parametrize(("case", "type_", "data", "expected"), TABLE, ids=[t[0] for t in TABLE])
def test_decision_table(case: str, type_: str, data: Any, expected: list[tuple[str, str]]) -> None:
    full = type_ if type_.startswith(("network.", "com.")) else f"{P}.{type_}"
    assert shape(decide(full, data, LOCAL)) == expected


def test_deploy_actions_carry_the_manifests() -> None:
    apply_service, apply_trigger = decide(f"{P}.build.complete", result(), LOCAL)
    assert isinstance(apply_service, ApplyService) and isinstance(apply_trigger, ApplyTrigger)
    container = apply_service.manifest["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == result()["image_uri"]
    assert apply_service.content_hash == "0123456789ab"
    assert apply_trigger.manifest["spec"]["filter"]["attributes"] == {
        "type": f"{P}.parser.start",
        "source": "network.notifi.acme",
        "subject": "parser-1",
    }


def test_local_trigger_delivers_to_the_gateway_path_of_the_function() -> None:
    _, trigger = decide(f"{P}.build.complete", result(), LOCAL)
    assert trigger.manifest["spec"]["subscriber"] == {
        "uri": f"http://127.0.0.1:7000/default/{SVC}/"
    }


def test_kubernetes_trigger_references_the_knative_service() -> None:
    _, trigger = decide(f"{P}.build.complete", result(), KUBE)
    assert trigger.manifest["spec"]["subscriber"]["ref"] == {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "name": SVC,
        "namespace": "default",
    }


def test_namespace_and_prefix_come_from_config() -> None:
    config = DeployerConfig(prefix="com.example.fn", namespace="team-a", gateway_url="http://g")
    service, trigger = decide("com.example.fn.build.complete", result(), config)
    assert service.namespace == trigger.namespace == "team-a"
    assert service.manifest["metadata"]["namespace"] == "team-a"
    assert trigger.manifest["spec"]["filter"]["attributes"]["type"] == "com.example.fn.parser.start"
    assert trigger.manifest["spec"]["subscriber"]["uri"] == f"http://g/team-a/{SVC}/"
    assert decide(f"{P}.build.complete", result(), config) == [
        Skip(f"'{P}.build.complete' is not an event type under 'com.example.fn'")
    ]


def test_reject_lists_the_contract_problems() -> None:
    (reject,) = decide(f"{P}.build.complete", result(content_hash=..., third_party_id="X"), LOCAL)
    assert isinstance(reject, Reject)
    assert {p.where for p in reject.problems} == {"data.content_hash", "data.third_party_id"}


def test_delete_actions_are_in_the_safe_order() -> None:
    actions = decide(f"{P}.service.delete", delete(), LOCAL)
    assert actions == [DeleteTrigger(SVC, "default"), DeleteService(SVC, "default")]


def test_same_event_same_actions() -> None:
    first = decide(f"{P}.build.complete", result(), LOCAL)
    again = decide(f"{P}.build.complete", result(), LOCAL)
    assert first == again
    assert [a.manifest for a in first] == [a.manifest for a in again]


def test_gateway_body_carries_the_revision_template() -> None:
    from knative_lambda.platform.deployer.gateway import revision_body, service_path

    service, _ = decide(f"{P}.build.complete", result(), LOCAL)
    body = revision_body(service)
    assert body["revision"]["artifact"] == result()["image_uri"]
    assert body["revision"]["content_hash"] == "0123456789ab"
    assert body["revision"]["container_concurrency"] == 10
    assert body["revision"]["annotations"]["autoscaling.knative.dev/max-scale"] == "50"
    assert service_path("default", SVC) == f"/apis/v1/namespaces/default/services/{SVC}"


def test_the_local_builders_artifact_key_and_runtime_reach_the_gateway() -> None:
    from knative_lambda.platform.deployer.gateway import revision_body

    service, _ = decide(f"{P}.build.complete", result(artifact="k-0123", runtime="node"), LOCAL)
    assert (service.artifact, service.runtime) == ("k-0123", "node")
    body = revision_body(service)
    assert body["revision"]["artifact"] == "k-0123" and body["revision"]["runtime"] == "node"
    plain, _ = decide(f"{P}.build.complete", result(artifact=5), LOCAL)
    assert (
        plain.artifact == ""
        and revision_body(plain)["revision"]["artifact"] == result()["image_uri"]
    )


@pytest.mark.parametrize(
    ("image_uri", "ref"),
    [
        ("localhost:5000/knative-lambdas:acme-p-01234567", "acme-p-01234567"),
        ("registry/knative-lambdas:t", "t"),
        ("localhost:5000/knative-lambdas", "localhost:5000/knative-lambdas"),
        ("plain-key", "plain-key"),
    ],
)
def test_artifact_ref_is_the_image_tag(image_uri: str, ref: str) -> None:
    from knative_lambda.platform.deployer.gateway import artifact_ref

    assert artifact_ref(image_uri) == ref
