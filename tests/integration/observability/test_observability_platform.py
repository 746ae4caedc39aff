"""Observability and security of the whole local platform (one platform for the module).

Real processes, real RabbitMQ and S3 API, real HTTP: metrics move under a short
load, a traced event links ingress to instance, decisions are logged without
secrets, unauthenticated calls get 401, quotas and rate limits answer clearly,
and function code sees no platform secret.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from knative_lambda.contract.bindings import to_http
from knative_lambda.contract.events import EventKind
from knative_lambda.contract.factory import new_event
from knative_lambda.harness.headline import summarize
from knative_lambda.harness.pytest_plugin import LOCAL_TEST_ENV, local_platform
from knative_lambda.platform import tracing
from knative_lambda.platform.serving import isolation

HELLO = b"def handle(event):\n    return {'message': 'hello'}\n"
ENV_FN = b"""import os, resource

def readable(pid):
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return b"KL_TOKEN=" in f.read()
    except OSError:
        return False

def opens(path):
    try:
        with open(path, "rb"):
            return True
    except OSError:
        return False

def handle(event):
    import csv, sqlite3  # stdlib modules the runtime had not loaded: the import path still works
    event = event or {}
    pids = [p for p in event.get("pids", []) if readable(p)]
    return {"env": dict(os.environ), "rlimit_as": resource.getrlimit(resource.RLIMIT_AS)[0],
            "token_in_environ_of": pids, "uid": os.getuid(), "gid": os.getgid(),
            "groups": os.getgroups(), "state_file_readable": opens(event.get("state_file", "/")),
            "imports": [csv.__name__, sqlite3.__name__]}
"""
PLATFORM_ENV = {
    **LOCAL_TEST_ENV,
    "KL_QUOTA_SERVICES": "2",
    "KL_QUOTA_INSTANCES": "1",
    "KL_QUOTA_CONCURRENT_BUILDS": "1",
    "KL_RATE_LIMITS": "manage=2/40,deploy=1/3",
    "KL_TRACE_SAMPLE": "1",  # every build traced, not one in ten
}


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with local_platform(tmp_path_factory.mktemp("kl-obs"), PLATFORM_ENV) as target:
        yield target


@pytest.fixture(scope="module")
def hello(platform: Any) -> Any:
    return platform.deploy("acme", "hello", HELLO, timeout=60)


def _components(platform: Any) -> dict[str, str]:
    data_dir = Path(platform.settings.data_dir)
    for candidate in (data_dir / "env.json", data_dir.parent / "env.json"):
        if candidate.exists():
            return {n: r["url"] for n, r in json.loads(candidate.read_text())["components"].items()}
    raise AssertionError("state file not found beside the data dir")


def _metrics(url: str) -> dict[str, float]:
    """Every sample of a /metrics page, keyed ``name{labels}``."""
    text = httpx.get(url + "/metrics", timeout=5).text
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            out[f"{sample.name}{{{labels}}}"] = sample.value
    return out


def _total(samples: dict[str, float], name: str, **labels: str) -> float:
    want = [f"{k}={v}" for k, v in labels.items()]
    return sum(v for key, v in samples.items()
               if key.split("{", 1)[0] == name and all(w in key for w in want))


def _event(tp: str, parser: str, data: Any, prefix: str) -> Any:
    return new_event(EventKind.PARSER_START, data, source=f"network.notifi.{tp}", subject=parser, prefix=prefix)


def _auth(platform: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {platform.settings.token}"}


# --- security --------------------------------------------------------------------------


def test_the_platform_has_a_token_by_default(platform: Any) -> None:
    assert len(platform.settings.token) >= 24


def test_unauthenticated_calls_are_rejected(platform: Any) -> None:
    urls = _components(platform)
    ns = platform.settings.namespace
    protected = [
        ("POST", f"{urls['broker']}/{ns}/default"),  # ingress
        ("GET", f"{urls['broker']}/apis/v1/triggers"),
        ("PUT", f"{urls['broker']}/apis/v1/namespaces/{ns}/triggers/x"),
        ("GET", f"{urls['gateway']}/apis/v1/services"),
        ("PUT", f"{urls['gateway']}/apis/v1/namespaces/{ns}/services/x"),
        ("GET", f"{urls['builder']}/apis/v1/builds"),
        ("POST", f"{urls['builder']}/"),  # build requests: only the broker (with the token) delivers
        ("POST", f"{urls['deployer']}/"),  # deploy / delete: likewise
    ]
    for method, url in protected:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": platform.settings.token}):
            response = httpx.request(method, url, headers=headers, content=b"{}", timeout=5)
            assert response.status_code == 401, (method, url, headers, response.text)
            assert "unauthorized" in response.json()["error"]
    for url in urls.values():  # probes and metrics stay open
        assert httpx.get(url + "/healthz", timeout=5).status_code == 200
        assert httpx.get(url + "/metrics", timeout=5).status_code == 200


def test_function_code_sees_no_platform_secret(platform: Any) -> None:
    fn = platform.deploy("envtest", "printenv", ENV_FN, timeout=60)
    state_file = Path(platform.settings.data_dir).parent / "env.json"
    state = json.loads(state_file.read_text())
    pids = [rec["pid"] for rec in state["components"].values()]
    answer = platform.invoke(fn, {"pids": pids, "state_file": str(state_file)})
    assert answer.status == 200, answer.body
    result = answer.body["eventEntries"][0]
    env = result["env"]
    leaked = [k for k in env if k.startswith(("KL_", "AWS_", "OTEL_")) and k not in ("KL_EVENT_PREFIX", "KL_PARSER_ID")]
    assert leaked == []
    secrets = [platform.settings.token, platform.settings.s3_secret_key, platform.settings.amqp_url]
    assert not [v for v in env.values() for s in secrets if s and s in v]
    assert env["K_SERVICE"] == fn.service
    assert result["rlimit_as"] > 0  # a memory limit (RLIMIT_AS) is set
    assert result["imports"] == ["csv", "sqlite3"]
    # nor can it read them from the platform processes' /proc/<pid>/environ (they are not
    # dumpable) or from the 0600 state file: as root, instances run as a uid of their own
    assert result["token_in_environ_of"] == []
    if os.geteuid() == 0:
        expected = isolation.InstanceUsers(isolation.parse_policy("", True)).user_for(fn.namespace, fn.service)
        assert (result["uid"], result["gid"], result["groups"]) == (expected.uid, expected.gid, [])
        assert result["state_file_readable"] is False
        assert env["HOME"] == os.environ.get("TMPDIR", "/tmp")  # a home it may write to
    else:
        assert result["uid"] == os.geteuid()


# --- tracing -----------------------------------------------------------------------------


def test_a_traced_event_links_ingress_to_instance(platform: Any, hello: Any) -> None:
    header, trace_id = tracing.new_traceparent()
    event = _event("acme", "hello", {"n": 1}, platform.settings.event_prefix)
    headers, body = to_http(event)
    response = httpx.post(platform.ingress_url(), content=body, timeout=10,
                          headers={**headers, **_auth(platform), "traceparent": header})
    assert response.status_code == 202, response.text
    names = ["broker.ingress", "broker.dispatch", "gateway.request", "instance.invoke"]
    spans = tracing.wait_for_trace(platform.settings.data_dir, trace_id, names, timeout=20)
    assert set(names) <= {s["name"] for s in spans}, spans
    assert {"kl-broker", "kl-gateway", "kl-runtime"} <= {s["service"] for s in spans}
    cid = event.get_extension("correlationid")
    assert {s["attributes"].get("kl.correlation_id") for s in spans} == {cid}
    by_name = {s["name"]: s for s in spans}
    assert by_name["instance.invoke"]["parent_id"] == by_name["gateway.request"]["span_id"]
    assert by_name["gateway.request"]["parent_id"] == by_name["broker.dispatch"]["span_id"]
    assert set(tracing.breakdown(spans)) >= set(names)


def test_a_benchmark_reads_the_spans_of_its_own_request(platform: Any, hello: Any) -> None:
    header, trace_id = tracing.new_traceparent()
    answer = httpx.post(hello.url, json={}, headers={"traceparent": header}, timeout=30)
    assert answer.status_code == 200
    spans = tracing.wait_for_trace(platform.settings.data_dir, trace_id, ["gateway.request", "instance.invoke"])
    times = tracing.breakdown(spans)
    assert set(times) == {"gateway.request", "instance.invoke"}
    assert times["gateway.request"] >= times["instance.invoke"] > 0
    gateway = next(s for s in spans if s["name"] == "gateway.request")
    assert isinstance(gateway["attributes"]["kl.buffered"], bool)


def test_a_build_is_traced_from_start_to_complete(platform: Any, hello: Any) -> None:
    spans = tracing.read_spans(platform.settings.data_dir)
    starts = [s for s in spans if s["name"] == "build.start"]
    assert starts
    chain = ["broker.ingress", "broker.dispatch", "build.start", "build", "build.complete", "deploy"]
    linked = tracing.wait_for_trace(platform.settings.data_dir, starts[0]["trace_id"], chain)
    assert set(chain) <= {s["name"] for s in linked}
    assert {"kl-broker", "kl-builder", "kl-deployer"} <= {s["service"] for s in linked}
    assert len({s["attributes"].get("kl.correlation_id") for s in linked}) == 1


# --- metrics and logs --------------------------------------------------------------------


def test_metrics_are_there_and_move_under_load(platform: Any, hello: Any) -> None:
    urls = _components(platform)
    before = {name: _metrics(url) for name, url in urls.items()}
    for i in range(20):
        assert platform.invoke(hello, {"i": i}).status == 200
    for i in range(5):
        assert platform.publish(_event("acme", "hello", {"i": i}, platform.settings.event_prefix)) == 202
    after = {name: _metrics(url) for name, url in urls.items()}

    gw0, gw1 = before["gateway"], after["gateway"]
    assert _total(gw1, "kl_gateway_requests_total") >= _total(gw0, "kl_gateway_requests_total") + 20
    assert _total(gw1, "cold_starts_total") >= 1
    for name in ("kl_gateway_inflight", "kl_gateway_instances", "kl_gateway_cold_start_seconds_count",
                 "kl_gateway_scale_decisions_total"):
        assert any(k.startswith(name + "{") for k in gw1), name
    b0, b1 = before["broker"], after["broker"]
    assert _total(b1, "cloudevents_total", outcome="published") >= _total(b0, "cloudevents_total",
                                                                          outcome="published") + 5
    for outcome in ("delivered", "retried", "dead_lettered"):  # defined once a trigger exists
        assert any(k.startswith("cloudevents_total{") and f"outcome={outcome}" in k for k in b1), outcome
    bu = after["builder"]
    assert _total(bu, "build_requests_total") >= 1 and _total(bu, "build_success_total") >= 1
    assert _total(bu, "cloudevents_total", outcome="accepted") >= 1
    builder_text = httpx.get(urls["builder"] + "/metrics", timeout=5).text
    for name in ("build_request_duration_seconds", "build_queue_size", "build_failure_total",
                 "k8s_job_created_total", "k8s_job_succeeded_total", "k8s_job_failed_total",
                 "k8s_job_duration_seconds"):
        assert f"# TYPE {name} " in builder_text, name

    # kl status shows the headline numbers
    import subprocess
    import sys

    state = Path(platform.settings.data_dir).parent / "env.json"
    out = subprocess.run([sys.executable, "-m", "knative_lambda", "status", "--json", "--state", str(state)],
                         capture_output=True, text=True, timeout=30)
    rows = {r["part"]: r for r in json.loads(out.stdout)["parts"]}
    assert rows["gateway"]["metrics"]["requests"] >= 20
    assert rows["broker"]["metrics"]["delivered"] >= 1
    assert rows["builder"]["metrics"]["builds ok"] >= 1
    assert summarize("gateway", httpx.get(urls["gateway"] + "/metrics").text)["cold starts"] >= 1


def test_decisions_are_logged_without_secrets(platform: Any, hello: Any) -> None:
    logs_dir = Path(platform.settings.data_dir) / "logs"
    lines = []
    for path in logs_dir.glob("*.log"):
        text = path.read_text(errors="replace")
        for secret in (platform.settings.token, platform.settings.s3_secret_key):
            assert secret not in text, f"{secret[:3]}... in {path.name}"
        for line in text.splitlines():
            if line.startswith("{") and '"decision"' in line:
                lines.append(json.loads(line))
    kinds = {(line["component"], line["decision"]) for line in lines}
    assert {("gateway", "scale"), ("builder", "build"), ("broker", "delivery")} <= kinds
    delivered = [line for line in lines if line["decision"] == "delivery"]
    assert all(line.get("correlation_id") for line in delivered)
    assert all(line.get("correlation_id") for line in lines if line["decision"] == "build")


# --- quotas and limits -------------------------------------------------------------------


def _artifact(platform: Any, fn: Any) -> str:
    service = platform.service(fn.service)
    return service["revisions"][0]["artifact"]


def _put(platform: Any, name: str, artifact: str, tenant: str) -> httpx.Response:
    url = f"{platform.settings.gateway_url}/apis/v1/namespaces/default/services/{name}"
    return httpx.put(url, json={"tenant": tenant, "revision": {"artifact": artifact}},
                     headers=_auth(platform), timeout=10)


def test_service_and_instance_quotas_name_the_tenant(platform: Any, hello: Any) -> None:
    artifact = _artifact(platform, hello)
    assert _put(platform, "quota-a", artifact, "quotatest").status_code == 201
    assert _put(platform, "quota-b", artifact, "quotatest").status_code == 201
    refused = _put(platform, "quota-c", artifact, "quotatest")
    assert refused.status_code == 403
    assert "quota exceeded: tenant 'quotatest'" in refused.json()["error"]
    assert "limit 2" in refused.json()["error"]
    # quota-a holds the tenant's one instance: quota-b cannot start one, and says why
    answer = httpx.post(f"{platform.settings.gateway_url}/default/quota-b/", json={}, timeout=30)
    assert answer.status_code == 503
    assert "quota exceeded: tenant 'quotatest'" in answer.json()["error"]
    assert "instances" in answer.json()["error"]


def test_deploy_rate_limit_answers_429_with_retry_after(platform: Any, hello: Any) -> None:
    artifact = _artifact(platform, hello)
    statuses = [_put(platform, "rate-a", artifact, "ratetest") for _ in range(6)]
    codes = [r.status_code for r in statuses]
    assert codes[0] == 201 and 429 in codes
    limited = statuses[codes.index(429)]
    assert int(limited.headers["Retry-After"]) >= 1
    assert "'deploy'" in limited.json()["error"] and "ratetest" in limited.json()["error"]
    # another tenant has its own bucket
    assert _put(platform, "rate-b", artifact, "ratetest-other").status_code == 201


def test_management_rate_limit_and_size_limit(platform: Any) -> None:
    urls = _components(platform)
    trigger = f"{urls['broker']}/apis/v1/namespaces/default/triggers/nope"
    codes = [httpx.delete(trigger, headers=_auth(platform), timeout=5) for _ in range(60)]
    limited = [r for r in codes if r.status_code == 429]
    assert limited and {r.status_code for r in codes} <= {404, 429}
    assert int(limited[0].headers["Retry-After"]) >= 1
    assert httpx.get(f"{urls['broker']}/apis/v1/triggers", headers=_auth(platform)).status_code == 200
    big = b"{" + b" " * (2 * 1024 * 1024) + b"}"
    for url in (f"{urls['gateway']}/apis/v1/namespaces/default/services/big", trigger):
        response = httpx.put(url, content=big, headers=_auth(platform), timeout=10)
        assert response.status_code == 413, url


def test_concurrent_build_quota_names_the_tenant(platform: Any) -> None:
    urls = _components(platform)
    parsers = [f"q{uuid.uuid4().hex[:6]}" for _ in range(6)]
    for parser in parsers:
        platform.upload_source(parser, HELLO + f"# {parser}\n".encode())

    def post(parser: str) -> httpx.Response:
        event = new_event(EventKind.BUILD_START, {"third_party_id": "buildq", "parser_id": parser},
                          source="network.notifi.buildq", subject=parser, prefix=platform.settings.event_prefix)
        headers, body = to_http(event)
        return httpx.post(urls["builder"] + "/", content=body, headers={**headers, **_auth(platform)}, timeout=10)

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(post, parsers))
    codes = [a.status_code for a in answers]
    assert 202 in codes and 429 in codes, codes
    refused = answers[codes.index(429)]
    assert "quota exceeded: tenant 'buildq'" in refused.json()["error"]
    assert int(refused.headers["Retry-After"]) >= 1
