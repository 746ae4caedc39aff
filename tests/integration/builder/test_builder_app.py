"""The builder's HTTP face in-process on a real port (real S3, no broker): rate limit,
dedupe, wait mode, the read API and its token."""

from __future__ import annotations

import httpx
import pytest

from knative_lambda.contract.bindings import to_http
from knative_lambda.contract.events import BuildRequest, EventKind, tenant_source
from knative_lambda.contract.factory import new_event
from knative_lambda.platform.builder.app import builder_trigger, make_app
from knative_lambda.platform.builder.config import BuilderConfig
from knative_lambda.settings import Settings

TOKEN = "tok"


@pytest.fixture
async def served(builder_settings: Settings, serve_app) -> str:
    settings = Settings(**(builder_settings.__dict__ | {"token": TOKEN}))
    return await serve_app(make_app(settings, BuilderConfig(offline=True, backoff_s=0, rate_per_s=0.01, burst=2)))


def start(parser: str) -> tuple[dict[str, str], bytes]:
    return to_http(new_event(EventKind.BUILD_START, BuildRequest("acme", parser), source=tenant_source("acme"),
                             subject=parser))


async def test_wait_mode_dedupe_rate_limit_and_read_api(served: str, upload) -> None:
    parser = upload(b"def handle(event):\n    return 1\n")
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(timeout=30) as http:
        headers, body = start(parser)
        done = await http.post(f"{served}/?wait=1", content=body, headers=headers)  # POST / needs no token
        assert done.status_code == 200 and done.json()["status"] == "succeeded"
        dup = await http.post(f"{served}/", content=body, headers=headers)
        assert dup.status_code == 202 and dup.json()["duplicate"] is True  # no token spent on a duplicate
        headers2, body2 = start(parser)
        second = await http.post(f"{served}/", content=body2, headers=headers2)
        assert second.status_code == 202 and second.json()["correlation_id"]
        headers3, body3 = start(parser)
        limited = await http.post(f"{served}/", content=body3, headers=headers3)
        assert limited.status_code == 429 and "rate limit" in limited.json()["error"]
        assert int(limited.headers["Retry-After"]) >= 1
        assert (await http.get(f"{served}/apis/v1/builds")).status_code == 401
        listing = (await http.get(f"{served}/apis/v1/builds", headers=auth)).json()
        assert listing["trigger"] == "no broker URL" and listing["limit"] == 5
        cid = done.json()["correlation_id"]
        one = await http.get(f"{served}/apis/v1/builds/{cid}", headers=auth)
        assert one.status_code == 200 and one.json()["result"]["status"] == "succeeded"
        assert (await http.get(f"{served}/apis/v1/builds/nope", headers=auth)).status_code == 404
        art = await http.get(f"{served}/apis/v1/artifacts/{done.json()['artifact']}", headers=auth)
        assert art.status_code == 200 and art.json()["runtime"] == "python"
        assert (await http.get(f"{served}/apis/v1/artifacts/..%2F..%2Fetc", headers=auth)).status_code == 404


def test_builder_trigger_object() -> None:
    trigger = builder_trigger(Settings(), "http://127.0.0.1:1/")
    assert trigger["metadata"]["name"] == "kl-builder"
    types = sorted(f["exact"]["type"] for f in trigger["spec"]["filters"][0]["any"])
    assert types == ["network.notifi.lambda.build.start", "network.notifi.lambda.job.start",
                     "network.notifi.lambda.rebuild.start"]
    assert trigger["spec"]["delivery"]["retry"] == 5
