"""Hostile manifests, as data: trigger specs for the broker, service specs for the gateway.

- ``TRIGGER_CASES``: ``PUT {broker_url}/apis/v1/namespaces/<ns>/triggers/<name>``
  with a Knative Trigger object that is wrong in one way each;
- ``SERVICE_CASES``: ``PUT {gateway_url}/apis/v1/namespaces/<ns>/services/<name>``
  with the gateway's revision body (see ``platform/serving/api.py``).

Every case expects 400 (or 404/405/413) with a JSON error naming the problem.
"""

from __future__ import annotations

import json
from typing import Any

from knative_lambda.harness.hostile import HttpCase

SUBSCRIBER = {"uri": "http://127.0.0.1:9/"}
ROUTER_TEXT = ("BUG: aiohttp's router answers unknown methods and body-size errors with text/plain, "
               "not the JSON error body of the API")


def trigger(**spec: Any) -> dict[str, Any]:
    """A valid Trigger with ``spec`` keys replaced (value ``None`` drops the key)."""
    body: dict[str, Any] = {"broker": "default", "subscriber": SUBSCRIBER}
    for key, value in spec.items():
        if value is None:
            body.pop(key, None)
        else:
            body[key] = value
    return {"apiVersion": "eventing.knative.dev/v1", "kind": "Trigger", "spec": body}


def _nested_not(depth: int) -> list[dict[str, Any]]:
    expr: dict[str, Any] = {"exact": {"type": "x"}}
    for _ in range(depth):
        expr = {"not": expr}
    return [expr]


def _cases(prefix: str, base: str, rows: list[tuple[str, str, Any, tuple[str, ...], dict[str, Any]]]) -> list[HttpCase]:
    out = []
    for index, (id_, name, body, expect, options) in enumerate(rows):
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        out.append(HttpCase(
            f"{prefix}-{id_}", (("Content-Type", "application/json"),), raw, options["method"],
            f"{base}/{name or f'hostile-{prefix}-{index}'}", options["status"],
            tuple(e.lower() for e in expect), options["json_error"], bug=options["bug"],
        ))
    return out


_T = "/apis/v1/namespaces/default/triggers"


def _t(id_: str, body: Any, *expect: str, name: str = "",
       **options: Any) -> tuple[str, str, Any, tuple[str, ...], dict[str, Any]]:
    """One row: case id, name in the URL ("" = a fresh valid one), body, expected words, options."""
    defaults = {"status": (400,), "bug": "", "method": "PUT", "json_error": True}
    return id_, name, body, tuple(expect), defaults | options


TRIGGER_CASES: list[HttpCase] = _cases("trigger", _T, [
    # the body as a whole
    _t("not-json", b"{apiVersion: v1", "invalid json"),
    _t("invalid-utf8", b'{"spec": "\xff\xfe"}', "invalid json"),
    _t("array", [trigger()], "must be a json object"),
    _t("string", "Trigger", "must be a json object"),
    _t("number", 7, "must be a json object"),
    _t("null", None, "must be a json object"),
    _t("empty-body", b"", "invalid json"),
    _t("deep-json", b'{"spec":' + b"[" * 100_000 + b"]" * 100_000 + b"}", "json"),
    _t("oversize", b'{"spec": "' + b"a" * (2 * 1024 * 1024) + b'"}', status=(413,)),
    _t("wrong-api-version", {**trigger(), "apiVersion": "serving.knative.dev/v1"}, "apiversion"),
    _t("wrong-kind", {**trigger(), "kind": "Service"}, "kind: must be trigger"),
    _t("metadata-not-object", {**trigger(), "metadata": ["x"]}, "metadata: must be an object"),
    _t("metadata-name-differs", {**trigger(), "metadata": {"name": "other"}}, "differs from the url"),
    _t("metadata-namespace-differs", {**trigger(), "metadata": {"namespace": "kube-system"}},
       "differs from the url"),
    # spec
    _t("spec-missing", {"apiVersion": "eventing.knative.dev/v1", "kind": "Trigger"}, "spec: required"),
    _t("spec-list", {"spec": []}, "spec: required object"),
    _t("spec-string", {"spec": "broker=default"}, "spec: required object"),
    _t("broker-missing", trigger(broker=None), "spec.broker"),
    _t("broker-bad-name", trigger(broker="Default_Broker"), "spec.broker"),
    _t("broker-number", trigger(broker=1), "spec.broker"),
    _t("subscriber-missing", trigger(subscriber=None), "spec.subscriber.uri: required"),
    _t("subscriber-empty", trigger(subscriber={}), "spec.subscriber.uri: required"),
    _t("subscriber-ref-only", trigger(subscriber={"ref": {"kind": "Service", "name": "x"}}), "spec.subscriber.ref"),
    _t("subscriber-file-uri", trigger(subscriber={"uri": "file:///etc/passwd"}), "spec.subscriber.uri"),
    _t("subscriber-javascript", trigger(subscriber={"uri": "javascript:alert(1)"}), "spec.subscriber.uri"),
    _t("subscriber-ftp", trigger(subscriber={"uri": "ftp://127.0.0.1/"}), "spec.subscriber.uri"),
    _t("subscriber-number", trigger(subscriber={"uri": 8080}), "spec.subscriber.uri"),
    _t("subscriber-no-host", trigger(subscriber={"uri": "http://"}), "spec.subscriber.uri"),
    # filter and filters
    _t("filter-list", trigger(filter=["type=x"]), "spec.filter"),
    _t("filter-attributes-list", trigger(filter={"attributes": ["type"]}), "spec.filter.attributes"),
    _t("filter-attribute-number", trigger(filter={"attributes": {"type": 5}}), "spec.filter.attributes.type"),
    _t("filter-attribute-null", trigger(filter={"attributes": {"type": None}}), "spec.filter.attributes.type"),
    _t("filters-object", trigger(filters={"exact": {"type": "x"}}), "spec.filters: must be a list"),
    _t("filters-unknown-dialect", trigger(filters=[{"regex": {"type": ".*"}}]), "unknown dialect"),
    _t("filters-cesql", trigger(filters=[{"cesql": "type = 'x'"}]), "cesql is not supported"),
    _t("filters-two-dialects", trigger(filters=[{"exact": {"type": "x"}, "prefix": {"type": "y"}}]),
       "exactly one of"),
    _t("filters-exact-empty", trigger(filters=[{"exact": {}}]), "non-empty map"),
    _t("filters-exact-number", trigger(filters=[{"exact": {"type": 1}}]), "value must be a string"),
    _t("filters-prefix-list", trigger(filters=[{"prefix": ["x"]}]), "non-empty map"),
    _t("filters-all-object", trigger(filters=[{"all": {"exact": {"type": "x"}}}]), "must be a list"),
    _t("filters-any-bad-child", trigger(filters=[{"any": [{"exact": {"type": "x"}}, {"nope": {}}]}]),
       "spec.filters[0].any[1]"),
    _t("filters-not-list", trigger(filters=[{"not": [{"exact": {"type": "x"}}]}]), "spec.filters[0].not"),
    _t("filters-item-string", trigger(filters=["type=x"]), "spec.filters[0]"),
    _t("filters-deep-not", trigger(filters=_nested_not(900)), "spec.filters"),
    # delivery
    _t("delivery-list", trigger(delivery=[1]), "spec.delivery: must be an object"),
    _t("retry-negative", trigger(delivery={"retry": -1}), "spec.delivery.retry"),
    _t("retry-string", trigger(delivery={"retry": "5"}), "spec.delivery.retry"),
    _t("retry-float", trigger(delivery={"retry": 2.5}), "spec.delivery.retry"),
    _t("retry-bool", trigger(delivery={"retry": True}), "spec.delivery.retry"),
    _t("retry-huge", trigger(delivery={"retry": 1_000_000}), "spec.delivery.retry"),
    _t("backoff-policy-unknown", trigger(delivery={"backoffPolicy": "fibonacci"}), "backoffpolicy"),
    _t("backoff-delay-go-duration", trigger(delivery={"backoffDelay": "1s"}), "invalid iso-8601 duration"),
    _t("backoff-delay-empty-p", trigger(delivery={"backoffDelay": "P"}), "invalid iso-8601 duration"),
    _t("backoff-delay-pt", trigger(delivery={"backoffDelay": "PT"}), "invalid iso-8601 duration"),
    _t("backoff-delay-years", trigger(delivery={"backoffDelay": "P1Y"}), "no years/months"),
    _t("backoff-delay-negative", trigger(delivery={"backoffDelay": "-PT1S"}), "invalid iso-8601 duration"),
    _t("backoff-delay-number", trigger(delivery={"backoffDelay": 1}), "duration must be a string"),
    _t("backoff-delay-exponent", trigger(delivery={"backoffDelay": "PT1e5S"}), "invalid iso-8601 duration"),
    _t("backoff-delay-weeks-and-days", trigger(delivery={"backoffDelay": "P1W2D"}), "invalid iso-8601 duration"),
    _t("timeout-zero", trigger(delivery={"timeout": "PT0S"}), "spec.delivery.timeout: must be positive"),
    _t("timeout-garbage", trigger(delivery={"timeout": "soon"}), "spec.delivery.timeout"),
    _t("dead-letter-sink-bad", trigger(delivery={"deadLetterSink": {"uri": "mailto:x@y"}}),
       "deadlettersink"),
    # annotations
    *(_t(f"parallelism-{label}", {**trigger(), "metadata": {"annotations": {
        "rabbitmq.eventing.knative.dev/parallelism": value}}}, "parallelism")
      for label, value in (("zero", "0"), ("negative", "-3"), ("text", "many"), ("too-big", "1001"),
                           ("float", "2.5"))),
    # names in the URL
    _t("name-uppercase", trigger(), "not a dns-1123 label", name="Hostile"),
    _t("name-underscore", trigger(), "not a dns-1123 label", name="hostile_trigger"),
    _t("name-64-chars", trigger(), "not a dns-1123 label", name="h" * 64),
    _t("name-leading-dash", trigger(), "not a dns-1123 label", name="-hostile"),
    _t("name-unicode", trigger(), "not a dns-1123 label", name="h%C3%A9"),
    _t("name-encoded-slash", trigger(), "not a dns-1123 label", name="a%2Fb"),
    _t("name-nul", trigger(), "not a dns-1123 label", name="a%00b"),
    # methods
    _t("method-post", trigger(), "method not allowed", status=(405,), method="POST"),
    _t("method-patch", trigger(), "method not allowed", status=(405,), method="PATCH"),
    _t("get-unknown", b"", "no trigger", status=(404,), method="GET", name="hostile-never-created"),
    _t("delete-unknown", b"", "no trigger", status=(404,), method="DELETE", name="hostile-never-created"),
])

TRIGGER_NAMESPACE_CASES: list[HttpCase] = _cases("trigger-ns", "/apis/v1/namespaces/Kube_System/triggers", [
    _t("bad-namespace", trigger(), "metadata.namespace"),
])


_S = "/apis/v1/namespaces/default/services"


def revision(**changes: Any) -> dict[str, Any]:
    rev: dict[str, Any] = {"artifact": "hostile-no-such-artifact"}
    rev.update(changes)
    return {"revision": rev}


SERVICE_CASES: list[HttpCase] = _cases("service", _S, [
    _t("not-json", b"{revision", "not json"),
    _t("invalid-utf8", b'{"revision": "\xff"}', "not json"),
    _t("big-int", b'{"revision": {"timeout": ' + b"9" * 5000 + b"}}", "not json"),
    _t("deep-json", b'{"revision":' + b"[" * 100_000 + b"]" * 100_000 + b"}", "json"),
    _t("array", [revision()], 'must be a json object with a "revision" object'),
    _t("empty-object", {}, '"revision" object'),
    _t("revision-list", {"revision": []}, '"revision" object'),
    _t("revision-string", {"revision": "latest"}, '"revision" object'),
    _t("artifact-missing", {"revision": {}}, "revision.artifact: required"),
    _t("artifact-empty", revision(artifact=""), "revision.artifact: required"),
    _t("artifact-number", revision(artifact=42), "revision.artifact: required"),
    _t("artifact-unknown-key", revision(), "no artifact found"),
    _t("artifact-etc", revision(artifact="/etc"), "no artifact found"),
    _t("artifact-root", revision(artifact="/"), "no artifact found"),
    _t("artifact-traversal", revision(artifact="../../../../../../../../etc"), "no artifact found"),
    _t("artifact-nul", revision(artifact="a\u0000b"), "no artifact found"),
    _t("artifact-surrogate", revision(artifact="\ud800"), "no artifact found"),
    _t("artifact-very-long", revision(artifact="x" * 5000), "revision.artifact"),
    _t("artifact-deep-path", revision(artifact="/" + "a/" * 3000), "revision.artifact"),
    _t("runtime-unknown", revision(runtime="ruby"), "revision.runtime"),
    _t("content-hash-number", revision(content_hash=123), "revision.content_hash"),
    _t("revision-name-bad", revision(name="Rev_1"), "revision.name"),
    _t("annotations-list", revision(annotations=["a"]), "revision.annotations"),
    _t("annotations-object-value", revision(annotations={"a": {"b": 1}}), "revision.annotations"),
    _t("concurrency-negative", revision(container_concurrency=-1), "revision.container_concurrency"),
    _t("concurrency-too-big", revision(container_concurrency=1001), "revision.container_concurrency"),
    _t("concurrency-string", revision(container_concurrency="10"), "revision.container_concurrency"),
    _t("concurrency-bool", revision(container_concurrency=True), "revision.container_concurrency"),
    _t("timeout-zero", revision(timeout=0), "revision.timeout"),
    _t("timeout-too-big", revision(timeout=3601), "revision.timeout"),
    _t("timeout-string", revision(timeout="30s"), "revision.timeout"),
    _t("timeout-nan", b'{"revision": {"artifact": "x", "timeout": NaN}}', "revision.timeout"),
    _t("memory-negative", revision(memory_limit_mb=-1), "revision.memory_limit_mb"),
    _t("memory-string", revision(memory_limit_mb="1Gi"), "revision.memory_limit_mb"),
    *(_t(f"annotation-{key.rsplit('/', 1)[-1]}-{label}", revision(annotations={key: value}),
         f"revision.annotations[{key}]")
      for key, label, value in (
          ("autoscaling.knative.dev/min-scale", "text", "abc"),
          ("autoscaling.knative.dev/min-scale", "negative", "-1"),
          ("autoscaling.knative.dev/max-scale", "negative", "-5"),
          ("autoscaling.knative.dev/target", "zero", "0"),
          ("autoscaling.knative.dev/target-utilization-percentage", "over-100", "250"),
          ("autoscaling.knative.dev/window", "too-short", "1s"),
          ("autoscaling.knative.dev/window", "garbage", "forever"),
          ("autoscaling.knative.dev/panic-threshold-percentage", "too-low", "50"),
          ("autoscaling.knative.dev/panic-window-percentage", "zero", "0"),
      )),
    _t("name-uppercase", revision(), "service name", name="Hostile"),
    _t("name-64-chars", revision(), "service name", name="s" * 64),
    _t("name-dot", revision(), "service name", name="a.b"),
    _t("method-post", revision(), status=(404, 405), method="POST"),
    _t("get-unknown", b"", "no service", status=(404,), method="GET", name="hostile-never-created"),
    _t("delete-unknown", b"", "no service", status=(404,), method="DELETE", name="hostile-never-created"),
])

SERVICE_NAMESPACE_CASES: list[HttpCase] = _cases("service-ns", "/apis/v1/namespaces/Kube_System/services", [
    _t("bad-namespace", revision(), "namespace"),
])
