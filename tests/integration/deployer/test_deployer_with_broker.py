"""The deployer behind the real broker (real RabbitMQ): events published to the
ingress reach the deployer through its own triggers, the function's trigger
lands in the broker, a failing gateway is retried by the broker until applied."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import httpx
import pytest

from knative_lambda.contract import names
from knative_lambda.contract.bindings import to_http
from knative_lambda.contract.events import EventKind
from knative_lambda.contract.factory import new_event
from knative_lambda.harness.services.ports import free_ports
from knative_lambda.settings import Settings

from .conftest import (
    Proc,
    StandIn,
    start_process,
    stop_process,
    wait_healthy,
    wait_until,
)

pytestmark = pytest.mark.slow

TP, PARSER = "globex", "parser-9"
SVC = names.service_name(TP, PARSER)
TOKEN = "t0ken"


def build_complete(content_hash: str) -> dict:
    return {
        "third_party_id": TP,
        "parser_id": PARSER,
        "content_hash": content_hash,
        "job_name": names.job_name(TP, PARSER, content_hash),
        "image_uri": names.image_uri("localhost:5000", TP, PARSER, content_hash),
        "status": "succeeded",
        "error_message": "",
        "exit_code": 0,
        "duration": 0.5,
        "correlation_id": "",
    }


@pytest.fixture(scope="module")
def stack(amqp_url: str, gateway: StandIn, tmp_path_factory) -> Iterator[tuple[Proc, Proc]]:
    data_dir = tmp_path_factory.mktemp("stack")
    broker_port, deployer_port = free_ports(2)
    base = Settings(
        amqp_url=amqp_url,
        gateway_url=gateway.url,
        token=TOKEN,
        data_dir=data_dir,
        broker_url=f"http://127.0.0.1:{broker_port}",
    )
    broker = start_process(
        "knative_lambda.platform.broker",
        replace(base, port=broker_port),
        data_dir / "broker.log",
        {"KL_BROKER_RECONNECT_INTERVAL": "0.2"},
    )
    deployer = None
    try:
        wait_healthy(broker)
        deployer = start_process(
            "knative_lambda.platform.deployer",
            replace(base, port=deployer_port),
            data_dir / "deployer.log",
            {"KL_DEPLOYER_REGISTER_TIMEOUT": "15"},
        )
        wait_healthy(deployer)
        yield broker, deployer
    finally:
        if deployer is not None:
            stop_process(deployer)
        stop_process(broker)


def publish(broker: Proc, kind: EventKind, data: dict, source: str, subject: str) -> None:
    headers, body = to_http(new_event(kind, data, source=source, subject=subject))
    headers["Authorization"] = f"Bearer {TOKEN}"
    resp = httpx.post(f"{broker.url}/default/default", headers=headers, content=body, timeout=10)
    assert resp.status_code == 202, resp.text


def trigger_status(broker: Proc, name: str) -> int:
    return httpx.get(
        f"{broker.url}/apis/v1/namespaces/default/triggers/{name}",
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=5,
    ).status_code


def test_build_complete_through_the_broker_deploys_and_registers_the_trigger(
    stack, gateway: StandIn
) -> None:
    broker, _ = stack
    gateway.clear()
    publish(
        broker,
        EventKind.BUILD_COMPLETE,
        build_complete("0123456789ab"),
        "network.notifi.builder",
        f"build/{TP}/{PARSER}",
    )
    path = f"/apis/v1/namespaces/default/services/{SVC}"
    wait_until(
        lambda: any(c.path == path for c in gateway.recorded("PUT")),
        what="service PUT at the gateway",
    )
    wait_until(lambda: trigger_status(broker, SVC) == 200, what="function trigger in the broker")


def test_a_failing_gateway_is_retried_by_the_broker_until_applied(stack, gateway: StandIn) -> None:
    broker, _ = stack
    gateway.clear()
    path = f"/apis/v1/namespaces/default/services/{SVC}"
    gateway.script[("PUT", path)] = [503]
    publish(
        broker,
        EventKind.BUILD_COMPLETE,
        build_complete("abcdef012345"),
        "network.notifi.builder",
        f"build/{TP}/{PARSER}",
    )
    wait_until(
        lambda: len(gateway.recorded("PUT")) >= 2, timeout=30, what="the redelivered service PUT"
    )
    last = gateway.recorded("PUT")[-1]
    assert last.body["revision"]["content_hash"] == "abcdef012345"


def test_service_delete_through_the_broker_removes_the_trigger(stack, gateway: StandIn) -> None:
    broker, _ = stack
    wait_until(lambda: trigger_status(broker, SVC) == 200, what="function trigger present")
    gateway.clear()
    publish(
        broker,
        EventKind.SERVICE_DELETE,
        {"third_party_id": TP, "parser_id": PARSER},
        f"network.notifi.{TP}",
        PARSER,
    )
    wait_until(lambda: trigger_status(broker, SVC) == 404, what="function trigger removed")
    wait_until(
        lambda: (
            [c.path for c in gateway.recorded("DELETE")]
            == [f"/apis/v1/namespaces/default/services/{SVC}"]
        ),
        what="service DELETE at the gateway",
    )
