"""build.start -> builder -> build.complete -> deployer -> gateway: invokable, then deleted.

Every part is real: RabbitMQ, the S3 server, and the broker, builder, gateway and
deployer processes sharing one data directory, as ``kl up`` runs them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest

from knative_lambda.contract import names
from knative_lambda.contract.bindings import to_http
from knative_lambda.contract.events import EventKind
from knative_lambda.contract.factory import new_event
from knative_lambda.harness.services.ports import free_ports
from knative_lambda.settings import Settings

from .conftest import Proc, start_process, stop_process, wait_healthy, wait_until

pytestmark = pytest.mark.slow

TOKEN = "e2e-token"
HELLO = b'def handle(event):\n    return {"hello": (event or {}).get("name", "world")}\n'


def _urls(n: int) -> list[str]:
    # distinct in one call: ports picked one by one can repeat (the kernel reuses a freed port)
    return [f"http://127.0.0.1:{port}" for port in free_ports(n)]


@pytest.fixture(scope="module")
def platform(service_settings: Settings, tmp_path_factory) -> Iterator[dict[str, Proc]]:
    data_dir = tmp_path_factory.mktemp("e2e")
    broker_url, gateway_url, builder_url, deployer_url = _urls(4)
    base = replace(
        service_settings,
        token=TOKEN,
        data_dir=data_dir,
        broker_url=broker_url,
        gateway_url=gateway_url,
        builder_url=builder_url,
    )
    extra = {
        "KL_BUILD_OFFLINE": "1",
        "KL_BUILD_BACKOFF": "0",
        "KL_BROKER_RECONNECT_INTERVAL": "0.2",
        "KL_DEPLOYER_REGISTER_TIMEOUT": "20",
    }
    order = [
        ("broker", "knative_lambda.platform.broker", base.broker_url),
        ("gateway", "knative_lambda.platform.serving", base.gateway_url),
        ("builder", "knative_lambda.platform.builder", base.builder_url),
        ("deployer", "knative_lambda.platform.deployer", deployer_url),
    ]
    procs: dict[str, Proc] = {}
    try:
        # Every URL is known up front and each part retries its peers, so all
        # four start at once (as kl up could).
        for name, module, url in order:
            settings = replace(base, port=int(url.rsplit(":", 1)[1]))
            procs[name] = start_process(module, settings, data_dir / f"{name}.log", extra)
        for proc in procs.values():
            wait_healthy(proc)
        # The builder registers its trigger in the background after it is healthy:
        # an event published before that would match no trigger.
        triggers = f"{base.broker_url}/apis/v1/namespaces/default/triggers"
        for trigger in ("kl-builder", "kl-deployer-build-complete", "kl-deployer-service-delete"):
            wait_until(lambda t=trigger: status(f"{triggers}/{t}") == 200, what=f"trigger {trigger}")
        yield procs
    finally:
        for proc in reversed(list(procs.values())):
            stop_process(proc)


def _auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}


def publish(broker: Proc, kind: EventKind, data: dict[str, Any], source: str, subject: str) -> None:
    headers, body = to_http(new_event(kind, data, source=source, subject=subject))
    resp = httpx.post(
        f"{broker.url}/default/default", headers=headers | _auth(), content=body, timeout=10
    )
    assert resp.status_code == 202, resp.text


def status(url: str) -> int:
    try:
        return httpx.get(url, headers=_auth(), timeout=5).status_code
    except httpx.HTTPError:
        return 0


def test_build_deploy_invoke_delete(platform: dict[str, Proc], s3_client, service_settings) -> None:
    broker, gateway = platform["broker"], platform["gateway"]
    tp, parser = "e2e", f"hello-{uuid.uuid4().hex[:6]}"
    svc = names.service_name(tp, parser)
    s3_client.put_object(
        Bucket=service_settings.source_bucket, Key=f"global/parser/{parser}", Body=HELLO
    )
    publish(
        broker,
        EventKind.BUILD_START,
        {"third_party_id": tp, "parser_id": parser},
        f"network.notifi.{tp}",
        parser,
    )
    service_url = f"{gateway.url}/apis/v1/namespaces/default/services/{svc}"
    trigger_url = f"{broker.url}/apis/v1/namespaces/default/triggers/{svc}"
    wait_until(lambda: status(service_url) == 200, timeout=90, what=f"service {svc} at the gateway")
    wait_until(lambda: status(trigger_url) == 200, timeout=30, what=f"trigger {svc} in the broker")

    resp = httpx.post(f"{gateway.url}/default/{svc}/", json={"name": "kl"}, timeout=30)
    assert resp.status_code == 200, resp.text
    assert "kl" in resp.text

    publish(
        broker,
        EventKind.SERVICE_DELETE,
        {"third_party_id": tp, "parser_id": parser},
        f"network.notifi.{tp}",
        parser,
    )
    wait_until(lambda: status(service_url) == 404, timeout=30, what="service deleted")
    wait_until(lambda: status(trigger_url) == 404, timeout=30, what="trigger deleted")
