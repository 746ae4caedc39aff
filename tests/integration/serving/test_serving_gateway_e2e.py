"""End to end with real processes: deploy, invoke, scale to zero, cold start, rollout, crash, delete."""

from __future__ import annotations

import asyncio
import os
import signal

import httpx
import psutil
import pytest

from knative_lambda.platform.serving import isolation

from .conftest import (
    BROKEN_HANDLER,
    HELLO_HANDLER,
    NODE_HANDLER,
    SLOW_HANDLER,
    TOKEN,
    make_artifact,
)


def invoke(gw, name: str, data, ns: str = "default", **kw) -> httpx.Response:
    return httpx.post(f"{gw.url}/{ns}/{name}/", json=data, timeout=30, **kw)


def scaled_to_zero(gw, name: str):
    return gw.instances(name) == [] and gw.service(name)["revisions"][-1]["desired"] == 0


def test_lifecycle_deploy_invoke_zero_cold_delete(gateway, artifacts):
    art = make_artifact(artifacts, "hello", HELLO_HANDLER)
    out = gateway.deploy("hello", art, content_hash="aaaabbbbcccc")
    assert out["changed"] and out["service"]["latest_revision"] == "hello-aaaabbbb"
    # idempotent repeat
    assert gateway.deploy("hello", art, content_hash="aaaabbbbcccc")["changed"] is False

    resp = invoke(gateway, "hello", {"x": 1})
    assert resp.status_code == 200
    assert resp.json()["succeeded"] is True and resp.json()["eventEntries"] == [{"hello": {"x": 1}}]
    by_host = httpx.post(f"{gateway.url}/", json={"x": 2}, headers={"Host": "hello.default.127.0.0.1.sslip.io"})
    assert by_host.json()["eventEntries"] == [{"hello": {"x": 2}}]

    pids = [i["pid"] for i in gateway.instances("hello")]
    assert pids
    gateway.wait_for(lambda: scaled_to_zero(gateway, "hello"), what="scale to zero")
    gateway.wait_for(lambda: not any(psutil.pid_exists(p) for p in pids), what="instance processes gone")
    # zero processes of the function: only the zygote's blank spares remain
    assert not {p.pid for p in gateway.zygote_children()} & set(pids)
    assert len(gateway.zygote_children()) <= 2

    seq = gateway.timeline("hello")[-1]["seq"]
    resp = invoke(gateway, "hello", {"x": 3})
    assert resp.status_code == 200 and resp.json()["eventEntries"] == [{"hello": {"x": 3}}]
    events = [e["event"] for e in gateway.timeline("hello", seq)]
    for name in ("request_buffered", "scale_decision", "process_started", "instance_ready", "first_byte"):
        assert name in events, events
    assert events.index("request_buffered") < events.index("process_started") < events.index("first_byte")

    listed = [s for s in gateway.api.get("/apis/v1/services").json()["services"] if s["name"] == "hello"]
    assert listed[0]["requests"] == 3

    pids = [i["pid"] for i in gateway.instances("hello")]
    assert gateway.api.delete("/apis/v1/namespaces/default/services/hello").json() == {"deleted": True}
    assert invoke(gateway, "hello", {}).status_code == 404
    assert gateway.api.get("/apis/v1/namespaces/default/services/hello").status_code == 404
    gateway.wait_for(lambda: not any(psutil.pid_exists(p) for p in pids), what="instances stopped on delete")


def test_management_api_needs_token_and_validates(gateway, artifacts):
    r = httpx.put(f"{gateway.url}/apis/v1/namespaces/default/services/x", json={})
    assert r.status_code == 401
    r = gateway.api.put("/apis/v1/namespaces/default/services/x",
                        json={"revision": {"artifact": "/no/such/dir",
                                           "annotations": {"autoscaling.knative.dev/max-scale": "-2"}}})
    assert r.status_code == 400
    where = [p["where"] for p in r.json()["problems"]]
    assert where == ["revision.artifact", "revision.annotations[autoscaling.knative.dev/max-scale]"]
    assert "x" not in [s["name"] for s in gateway.api.get("/apis/v1/services").json()["services"]]


async def _burst(gw, name: str, n: int, data_of=lambda i: {"n": i}) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=n + 10, max_keepalive_connections=n + 10)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        return await asyncio.gather(
            *(client.post(f"{gw.url}/default/{name}/", json=data_of(i)) for i in range(n))
        )


async def test_200_concurrent_on_zero_scaled_function_all_succeed_within_concurrency(gateway, artifacts):
    art = make_artifact(artifacts, "slow", SLOW_HANDLER)
    gateway.deploy("slow", art, container_concurrency=5, annotations={"autoscaling.knative.dev/max-scale": "8"})
    await asyncio.to_thread(gateway.wait_for, lambda: scaled_to_zero(gateway, "slow"), 20, "scale to zero")
    assert len(await asyncio.to_thread(gateway.zygote_children)) <= 2  # spares only

    responses = await _burst(gateway, "slow", 200)
    assert [r.status_code for r in responses] == [200] * 200, responses[0].text
    bodies = [r.json()["eventEntries"][0] for r in responses]
    assert sorted(b["echo"] for b in bodies) == list(range(200))
    assert max(b["max"] for b in bodies) <= 5  # containerConcurrency never exceeded in any instance
    assert len({b["pid"] for b in bodies}) > 1  # it scaled out
    assert not any(b["env_has_token"] for b in bodies)  # scrubbed environment
    svc = await asyncio.to_thread(gateway.service, "slow")
    assert all(i["max_inflight"] <= 5 for i in svc["revisions"][0]["instances"])
    assert len(svc["revisions"][0]["instances"]) <= 8


async def test_rollout_under_load_fails_no_request(gateway, artifacts):
    v1 = make_artifact(artifacts, "v1", SLOW_HANDLER)
    v2 = make_artifact(artifacts, "v2", SLOW_HANDLER.replace('"max": highest', '"max": highest, "v": 2'))
    gateway.deploy("roll", v1, content_hash="111111111111")
    await asyncio.to_thread(gateway.wait_for, lambda: gateway.service("roll")["ready"], 20, "v1 ready")

    stop = asyncio.Event()
    codes: list[int] = []
    revisions: list[str] = []

    async def worker(client: httpx.AsyncClient) -> None:
        for _ in range(400):  # bounded
            if stop.is_set():
                return
            r = await client.post(f"{gateway.url}/default/roll/", json={"sleep": 0.02})
            codes.append(r.status_code)
            if r.status_code == 200:
                revisions.append(r.json()["eventEntries"][0]["revision"])

    async with httpx.AsyncClient(timeout=30) as client:
        workers = [asyncio.create_task(worker(client)) for _ in range(8)]
        await asyncio.sleep(0.5)
        out = await asyncio.to_thread(gateway.deploy, "roll", v2, content_hash="222222222222")
        assert out["changed"]
        await asyncio.to_thread(
            gateway.wait_for, lambda: revisions and revisions[-1] == "roll-22222222", 20, "traffic on v2"
        )
        await asyncio.sleep(0.5)
        stop.set()
        await asyncio.gather(*workers)
    assert codes and set(codes) == {200}
    assert revisions[0] == "roll-11111111" and revisions[-1] == "roll-22222222"
    # the old revision drains to zero
    await asyncio.to_thread(
        gateway.wait_for,
        lambda: [r for r in gateway.service("roll")["revisions"] if r["name"] == "roll-11111111"][0]["instances"] == [],
        20, "old revision drained",
    )


def test_crashed_instance_is_replaced(gateway, artifacts):
    art = make_artifact(artifacts, "crashy", HELLO_HANDLER)
    gateway.deploy("crashy", art, annotations={"autoscaling.knative.dev/min-scale": "1"})
    first = gateway.wait_for(lambda: [i for i in gateway.instances("crashy") if i["state"] == "ready"], what="ready")
    os.kill(first[0]["pid"], signal.SIGKILL)
    replaced = gateway.wait_for(
        lambda: [i for i in gateway.instances("crashy") if i["state"] == "ready" and i["pid"] != first[0]["pid"]],
        what="replacement instance",
    )
    assert replaced
    assert invoke(gateway, "crashy", {"a": 1}).status_code == 200
    stopped = [e for e in gateway.timeline("crashy") if e["event"] == "instance_stopped"]
    assert stopped and stopped[0]["expected"] is False


async def test_request_in_flight_on_killed_instance_is_retried(gateway, artifacts):
    art = make_artifact(artifacts, "victim", SLOW_HANDLER)
    gateway.deploy("victim", art, annotations={"autoscaling.knative.dev/min-scale": "2"})
    ready = await asyncio.to_thread(
        gateway.wait_for, lambda: len([i for i in gateway.instances("victim") if i["state"] == "ready"]) == 2,
        20, "two ready",
    )
    assert ready
    async with httpx.AsyncClient(timeout=30) as client:
        pending = asyncio.create_task(client.post(f"{gateway.url}/default/victim/", json={"sleep": 1.0}))
        busy = await asyncio.to_thread(
            gateway.wait_for, lambda: [i for i in gateway.instances("victim") if i["inflight"] == 1], 10, "in flight"
        )
        os.kill(busy[0]["pid"], signal.SIGKILL)
        resp = await pending
    assert resp.status_code == 200, resp.text
    assert resp.json()["eventEntries"][0]["pid"] != busy[0]["pid"]


def test_broken_function_fails_fast_with_clear_error(gateway, artifacts):
    art = make_artifact(artifacts, "broken", BROKEN_HANDLER)
    gateway.deploy("broken", art)
    resp = invoke(gateway, "broken", {})
    assert resp.status_code == 502
    assert "no_such_module_anywhere" in resp.json()["error"]


def test_node_function(gateway, artifacts):
    art = make_artifact(artifacts, "nodefn", NODE_HANDLER, runtime="node")
    gateway.deploy("nodefn", art)
    resp = invoke(gateway, "nodefn", {"k": "v"})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["succeeded"] is True and body["eventEntries"] == [{"node": True, "got": {"k": "v"}}]
    assert body["contextId"]  # the gateway's request id


NODE_WHOAMI = """
const greet = require("greet");
module.exports = { handle: () => ({ uid: process.getuid(), groups: process.getgroups(), hi: greet() }) };
"""


def test_node_function_runs_as_its_own_user_with_its_modules(gateway, artifacts):
    # the artifact sits below pytest's 0700 temporary directory: the instance reaches it
    # through descriptors opened as root, and its own node_modules still resolve
    art = make_artifact(artifacts, "nodewho", NODE_WHOAMI, runtime="node")
    (art / "code" / "node_modules" / "greet").mkdir(parents=True)
    (art / "code" / "node_modules" / "greet" / "index.js").write_text('module.exports = () => "hi";\n')
    gateway.deploy("nodewho", art)
    resp = invoke(gateway, "nodewho", {})
    assert resp.status_code == 200, resp.text
    (entry,) = resp.json()["eventEntries"]
    assert entry["hi"] == "hi"
    if os.geteuid() == 0:
        user = isolation.InstanceUsers(isolation.parse_policy("", True)).user_for("default", "nodewho")
        assert (entry["uid"], entry["groups"]) == (user.uid, [user.gid])
    else:
        assert entry["uid"] == os.geteuid()


def test_cloudevents_through_the_gateway(gateway, artifacts):
    art = make_artifact(artifacts, "ce", HELLO_HANDLER)
    gateway.deploy("ce", art)
    cid = "0b6e1f5e-3a52-4d3b-9a9e-6a1f0e0f7a11"
    headers = {"ce-specversion": "1.0", "ce-id": "e1", "ce-type": "network.notifi.lambda.parser.start",
               "ce-source": "network.notifi.tp1", "ce-subject": "parser1", "ce-correlationid": cid,
               "content-type": "application/json"}
    sync = httpx.post(f"{gateway.url}/default/ce/events", content=b'{"a": 1}',
                      headers={**headers, "ce-responsetype": "sync"}, timeout=30)
    assert sync.status_code == 200
    assert sync.headers["ce-type"] == "network.notifi.lambda.result"
    assert sync.headers["ce-correlationid"] == cid and sync.headers["ce-subject"] == "parser1"
    assert sync.json() == {"succeeded": True, "contextId": cid, "eventEntries": [{"hello": {"a": 1}}]}
    emitted = httpx.post(f"{gateway.url}/default/ce/", content=b'{"a": 2}', headers=headers, timeout=30)
    assert emitted.status_code == 200 and emitted.headers["ce-type"] == "network.notifi.lambda.processed"
    bad = httpx.post(f"{gateway.url}/default/ce/", content=b"{", headers=headers, timeout=30)
    assert bad.status_code == 400 and bad.json()["problems"]


async def test_buffer_bound_and_timeout(start_gateway, artifacts):
    gw = start_gateway(KL_GATEWAY_QUEUE_LIMIT="2", KL_GATEWAY_BUFFER_TIMEOUT="0.5")
    art = make_artifact(artifacts, "one", SLOW_HANDLER)
    gw.deploy("one", art, container_concurrency=1, annotations={"autoscaling.knative.dev/max-scale": "1"})
    await asyncio.to_thread(gw.wait_for, lambda: gw.service("one")["ready"], 20, "ready")
    async with httpx.AsyncClient(timeout=30) as client:
        first = asyncio.create_task(client.post(f"{gw.url}/default/one/", json={"sleep": 2.0}))
        await asyncio.to_thread(gw.wait_for, lambda: gw.service("one")["inflight"] == 1, 10, "busy")
        waiting = [asyncio.create_task(client.post(f"{gw.url}/default/one/", json={})) for _ in range(2)]
        await asyncio.to_thread(gw.wait_for, lambda: gw.service("one")["revisions"][0]["buffered"] == 2, 10, "buffered")
        over = await client.post(f"{gw.url}/default/one/", json={})
        assert over.status_code == 503 and "limit 2" in over.json()["error"]
        timed_out = await asyncio.gather(*waiting)
        assert [r.status_code for r in timed_out] == [504, 504]
        assert "within 0.5 s" in timed_out[0].json()["error"]
        assert (await first).status_code == 200


def test_unknown_route_is_404_with_hint(gateway):
    r = httpx.post(f"{gateway.url}/default/missing/", json={})
    assert r.status_code == 404 and "/<namespace>/<service>/" in r.json()["error"]
    text = httpx.get(f"{gateway.url}/metrics").text
    for name in ("kl_gateway_requests_total", "kl_gateway_inflight", "kl_gateway_instances",
                 "kl_gateway_cold_starts_total", "kl_gateway_cold_start_seconds_bucket",
                 "kl_gateway_scale_decisions_total"):
        assert name in text, name
    assert TOKEN not in text


@pytest.mark.parametrize("bad", ["nope"])
def test_invoke_command_and_functions(gateway, artifacts, tmp_path, bad):
    import json as _json

    from click.testing import CliRunner

    from knative_lambda.platform.serving.commands import functions
    from knative_lambda.platform.serving.commands import invoke as invoke_cmd

    art = make_artifact(artifacts, "cli", HELLO_HANDLER)
    gateway.deploy("cli", art)
    state = tmp_path / "env.json"
    state.write_text(_json.dumps({"settings": {"gateway_url": gateway.url, "token": TOKEN}}))
    out = CliRunner().invoke(invoke_cmd, ["cli", "--data", '{"q": 1}', "--state", str(state)])
    assert out.exit_code == 0, out.output
    assert _json.loads(out.output)["eventEntries"] == [{"hello": {"q": 1}}]
    out = CliRunner().invoke(functions, ["--state", str(state)])
    assert out.exit_code == 0 and "default/cli" in out.output
    out = CliRunner().invoke(functions, ["--json", "--state", str(state)])
    assert "cli" in [s["name"] for s in _json.loads(out.output)["services"]]
    out = CliRunner().invoke(invoke_cmd, [bad, "--data", "{}", "--state", str(state)])
    assert out.exit_code == 1


def test_memory_limit_applies_inside_the_instance(gateway, artifacts):
    hog = "def handle(event):\n    data = bytearray(event['mb'] * 1024 * 1024)\n    return len(data)\n"
    art = make_artifact(artifacts, "hog", hog)
    gateway.deploy("hog", art, memory_limit_mb=400)
    small = invoke(gateway, "hog", {"mb": 1})
    assert small.status_code == 200 and small.json()["eventEntries"] == [1024 * 1024]
    big = invoke(gateway, "hog", {"mb": 1024})
    assert big.status_code == 500
    assert big.json() == {"succeeded": False, "contextId": big.json()["contextId"], "errorMessage": "MemoryError: "}


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (b'{"revision":' + b"[" * 100_000 + b"]" * 100_000 + b"}", "body"),
        (b'{"revision": {"artifact": "' + b"x" * 5000 + b'"}}', "revision.artifact"),
        (b'{"revision": {"artifact": "/' + b"a/" * 3000 + b'"}}', "revision.artifact"),
        (b'{"revision": {"artifact": "/etc"}}', "revision.artifact"),
    ],
)
def test_hostile_bodies_are_400(gateway, body, where):
    r = gateway.api.put("/apis/v1/namespaces/default/services/hostile", content=body)
    assert r.status_code == 400 and r.json()["problems"][0]["where"] == where


PY_WHOAMI = "import os\n\ndef handle(event):\n    return {'uid': os.getuid()}\n"


@pytest.mark.skipif(os.geteuid() != 0, reason="per-service users need root")
def test_services_never_share_a_uid_and_a_full_range_is_a_clear_error(start_gateway, artifacts):
    gw = start_gateway(KL_INSTANCE_USER="230001-230002")  # two uids for three services
    uids = []
    for name in ("first", "second"):
        gw.deploy(name, make_artifact(artifacts, f"who-{name}", PY_WHOAMI))
        resp = invoke(gw, name, {})
        assert resp.status_code == 200, resp.text
        uids.append(resp.json()["eventEntries"][0]["uid"])
    assert sorted(uids) == [230001, 230002]
    gw.deploy("third", make_artifact(artifacts, "who-third", PY_WHOAMI))
    resp = invoke(gw, "third", {})
    assert resp.status_code == 502
    assert "uids of 230001-230002 are taken" in resp.json()["error"]
