"""The deployer process over real HTTP: CloudEvents in, gateway/broker API calls out.

The gateway and broker are recording stand-in servers here (real HTTP), so each
call the deployer makes can be checked; test_deployer_with_broker.py runs the
same flow through the real broker and RabbitMQ.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from knative_lambda.contract import names
from knative_lambda.contract.bindings import to_http
from knative_lambda.contract.events import EventKind
from knative_lambda.contract.factory import new_event
from knative_lambda.harness.kube import knative_schemas_dir, validate_manifest
from knative_lambda.harness.services.ports import free_ports
from knative_lambda.settings import Settings

from .conftest import Proc, StandIn, free_port, start_process, stop_process, wait_healthy

TP, PARSER, HASH = "acme", "parser-1", "0123456789ab"
SVC = names.service_name(TP, PARSER)
P = "network.notifi.lambda"


def build_complete(**overrides) -> dict:
    data = {
        "third_party_id": TP,
        "parser_id": PARSER,
        "content_hash": HASH,
        "job_name": names.job_name(TP, PARSER, HASH),
        "image_uri": names.image_uri("localhost:5000", TP, PARSER, HASH),
        "status": "succeeded",
        "error_message": "",
        "exit_code": 0,
        "duration": 0.5,
        "correlation_id": "",
    }
    data.update(overrides)
    return data


def send(
    proc: Proc,
    kind: EventKind,
    data,
    *,
    source="network.notifi.builder",
    subject=f"build/{TP}/{PARSER}",
    event=None,
):
    event = event or new_event(kind, data, source=source, subject=subject)
    headers, body = to_http(event)
    return event, httpx.post(proc.url + "/", headers=headers, content=body, timeout=15)


@pytest.fixture(scope="module")
def deployer(
    gateway: StandIn, broker_standin: StandIn, builder_standin: StandIn, tmp_path_factory
) -> Iterator[Proc]:
    data_dir = tmp_path_factory.mktemp("deployer")
    settings = Settings(
        gateway_url=gateway.url,
        broker_url=broker_standin.url,
        builder_url=builder_standin.url,
        token="s3cret",
        data_dir=data_dir,
        port=free_port(),
    )
    proc = start_process(
        "knative_lambda.platform.deployer",
        settings,
        data_dir / "deployer.log",
        {"KL_DEPLOYER_REGISTER_TIMEOUT": "10"},
    )
    try:
        wait_healthy(proc)
        yield proc
    finally:
        stop_process(proc)


@pytest.fixture
def clean(
    gateway: StandIn, broker_standin: StandIn, builder_standin: StandIn, deployer: Proc
) -> None:
    gateway.clear()
    broker_standin.clear()
    builder_standin.clear()


def test_registers_its_own_triggers_at_start(deployer: Proc, broker_standin: StandIn) -> None:
    puts = {c.path: c for c in broker_standin.recorded("PUT")}
    base = "/apis/v1/namespaces/default/triggers/"
    assert set(puts) >= {base + "kl-deployer-build-complete", base + "kl-deployer-service-delete"}
    trig = puts[base + "kl-deployer-build-complete"].body
    assert trig["spec"]["subscriber"] == {"uri": deployer.url + "/"}
    assert trig["spec"]["filter"]["attributes"] == {"type": f"{P}.build.complete"}
    assert puts[base + "kl-deployer-build-complete"].headers["Authorization"] == "Bearer s3cret"


def test_build_complete_creates_service_and_trigger(
    clean, deployer: Proc, gateway: StandIn, broker_standin: StandIn
) -> None:
    _, resp = send(deployer, EventKind.BUILD_COMPLETE, build_complete())
    assert resp.status_code == 200, resp.text
    (put,) = gateway.recorded("PUT")
    assert put.path == f"/apis/v1/namespaces/default/services/{SVC}"
    assert put.headers["Authorization"] == "Bearer s3cret"
    revision = put.body["revision"]
    assert revision["artifact"] == build_complete()["image_uri"]
    assert revision["content_hash"] == HASH and revision["container_concurrency"] == 10
    assert revision["annotations"]["autoscaling.knative.dev/class"] == "kpa.autoscaling.knative.dev"
    (trig,) = broker_standin.recorded("PUT")
    assert trig.path == f"/apis/v1/namespaces/default/triggers/{SVC}"
    assert trig.body["spec"]["subscriber"] == {"uri": f"{gateway.url}/default/{SVC}/"}
    schemas = knative_schemas_dir()
    if schemas is not None:  # the trigger that went over the wire is a valid Knative object
        validate_manifest(trig.body, schemas_dir=schemas)


def test_a_failing_gateway_gets_503_and_the_redelivery_applies_it(
    clean, deployer: Proc, gateway: StandIn, broker_standin: StandIn
) -> None:
    path = f"/apis/v1/namespaces/default/services/{SVC}"
    gateway.script[("PUT", path)] = [500]
    event, first = send(
        deployer, EventKind.BUILD_COMPLETE, build_complete(content_hash="abcdef012345")
    )
    assert first.status_code == 503 and "500" in first.json()["error"]
    assert broker_standin.recorded("PUT") == []  # stopped at the failed step
    _, again = send(
        deployer, EventKind.BUILD_COMPLETE, None, event=event
    )  # the broker's redelivery
    assert again.status_code == 200
    assert len(gateway.recorded("PUT")) == 2 and len(broker_standin.recorded("PUT")) == 1
    _, dup = send(
        deployer, EventKind.BUILD_COMPLETE, None, event=event
    )  # once applied: a duplicate
    assert dup.status_code == 200 and dup.json()["duplicate"] is True
    assert len(gateway.recorded("PUT")) == 2


def test_an_unreachable_broker_api_is_a_503_too(
    clean, deployer: Proc, broker_standin: StandIn
) -> None:
    broker_standin.script[("PUT", f"/apis/v1/namespaces/default/triggers/{SVC}")] = [503]
    _, resp = send(deployer, EventKind.BUILD_COMPLETE, build_complete(content_hash="fedcba987654"))
    assert resp.status_code == 503


def test_service_delete_removes_trigger_then_service(
    clean, deployer: Proc, gateway: StandIn, broker_standin: StandIn
) -> None:
    gateway.default_status["DELETE"] = 404  # already gone counts as done
    try:
        _, resp = send(
            deployer,
            EventKind.SERVICE_DELETE,
            {"third_party_id": TP, "parser_id": PARSER},
            source="network.notifi.acme",
            subject=PARSER,
        )
    finally:
        gateway.default_status.clear()
    assert resp.status_code == 200, resp.text
    assert [c.path for c in broker_standin.recorded("DELETE")] == [
        f"/apis/v1/namespaces/default/triggers/{SVC}"
    ]
    assert [c.path for c in gateway.recorded("DELETE")] == [
        f"/apis/v1/namespaces/default/services/{SVC}"
    ]


def test_failed_builds_are_acknowledged_and_ignored(
    clean, deployer: Proc, gateway: StandIn
) -> None:
    _, resp = send(
        deployer,
        EventKind.BUILD_FAILED,
        build_complete(status="failed", image_uri="", error_message="boom", exit_code=1),
    )
    assert resp.status_code == 200
    assert gateway.recorded() == []


@pytest.mark.parametrize(
    "data",
    [build_complete(image_uri=""), build_complete(third_party_id="Not Valid"), {"nothing": True}],
    ids=["no-image", "bad-id", "wrong-shape"],
)
def test_bad_events_get_400_and_change_nothing(
    clean, deployer: Proc, gateway: StandIn, broker_standin: StandIn, data
) -> None:
    _, resp = send(deployer, EventKind.BUILD_COMPLETE, data)
    assert resp.status_code == 400
    assert resp.json()["problems"]
    assert gateway.recorded() == [] and broker_standin.recorded() == []


def test_not_a_cloudevent_gets_400(clean, deployer: Proc) -> None:
    resp = httpx.post(
        deployer.url + "/", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert resp.status_code == 400


def test_exits_with_a_clear_message_when_the_broker_cannot_be_reached(tmp_path: Path) -> None:
    # One call: with two, the deployer could be given the "unreachable" broker's port.
    broker_port, port = free_ports(2)
    settings = Settings(
        gateway_url="http://127.0.0.1:9",
        broker_url=f"http://127.0.0.1:{broker_port}",
        data_dir=tmp_path,
        port=port,
    )
    proc = start_process(
        "knative_lambda.platform.deployer",
        settings,
        tmp_path / "d.log",
        {"KL_DEPLOYER_REGISTER_TIMEOUT": "0.5"},
    )
    try:
        assert proc.popen.wait(30) == 2
    finally:
        stop_process(proc)
    out = proc.output()
    assert "cannot register its triggers" in out and "Traceback" not in out


def test_the_artifact_key_of_the_local_builder_goes_to_the_gateway(
    clean, deployer: Proc, gateway: StandIn, builder_standin: StandIn
) -> None:
    _, resp = send(
        deployer, EventKind.BUILD_COMPLETE, build_complete(artifact="key-1", runtime="node")
    )
    assert resp.status_code == 200, resp.text
    (put,) = gateway.recorded("PUT")
    assert put.body["revision"]["artifact"] == "key-1" and put.body["revision"]["runtime"] == "node"
    assert builder_standin.recorded() == []  # nothing to resolve


def test_an_image_uri_is_resolved_through_the_builders_artifact_api(
    clean, deployer: Proc, gateway: StandIn, builder_standin: StandIn
) -> None:
    tag = build_complete()["image_uri"].rsplit(":", 1)[-1]
    builder_standin.replies[("GET", f"/apis/v1/artifacts/{tag}")] = (
        200,
        {"dir": "/data/artifacts/k-9", "runtime": "python"},
    )
    _, resp = send(deployer, EventKind.BUILD_COMPLETE, build_complete())
    assert resp.status_code == 200, resp.text
    (put,) = gateway.recorded("PUT")
    assert put.body["revision"]["artifact"] == "/data/artifacts/k-9"
    assert [c.path for c in builder_standin.recorded("GET")] == [f"/apis/v1/artifacts/{tag}"]


def test_a_spec_the_gateway_refuses_is_a_400_with_its_problems(
    clean, deployer: Proc, gateway: StandIn, broker_standin: StandIn
) -> None:
    problems = [{"where": "revision.artifact", "reason": "no artifact found"}]
    gateway.replies[("PUT", f"/apis/v1/namespaces/default/services/{SVC}")] = (
        400,
        {"error": "revision.artifact: no artifact found", "problems": problems},
    )
    _, resp = send(deployer, EventKind.BUILD_COMPLETE, build_complete(content_hash="aaaabbbbcccc"))
    assert resp.status_code == 400
    assert resp.json()["problems"] == problems
    assert broker_standin.recorded() == []
