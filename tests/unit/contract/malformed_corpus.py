"""Malformed events the contract must reject, as data.

Each case is a message as it arrives on one transport, and the substring(s) the
ContractError message must contain, so a person reading the error finds the
problem named. Transports:

- ``json``:  a structured-mode JSON object, given to ``validate`` directly
- ``http``:  ``(headers, body)`` given to ``from_http`` then ``validate``
- ``amqp``:  ``(headers, body, content_type)`` given to ``from_amqp`` then ``validate``

The messages are written out by hand (not produced by the bindings under test).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any

P = "network.notifi.lambda"
CID = "7f0c6f8e-2a5b-4c3d-9e1f-0a1b2c3d4e5f"
DROP = object()  # marks a key to remove
BIG = "x" * (1024 * 1024)


@dataclass(frozen=True)
class Case:
    id: str
    transport: str  # "json" | "http" | "amqp"
    message: Any
    expect: tuple[str, ...]


_BASE_ATTRS = {
    "specversion": "1.0",
    "id": "0b5e0a0c-1111-4222-8333-444455556666",
    "time": "2026-11-26T07:00:00Z",
    "datacontenttype": "application/json",
    "correlationid": CID,
}
_REQUEST = {"third_party_id": "acme", "parser_id": "parser-1", "content_hash": "0123456789ab"}
_RESULT = {
    "third_party_id": "acme",
    "parser_id": "parser-1",
    "content_hash": "0123456789ab",
    "job_name": "build-acme-parser-1-01234567",
    "image_uri": "localhost:5000/knative-lambdas:acme-parser-1-01234567",
    "status": "succeeded",
    "error_message": "",
    "exit_code": 0,
    "duration": 3.5,
    "correlation_id": CID,
}

BASE: dict[str, dict[str, Any]] = {
    "build.start": {
        "type": f"{P}.build.start",
        "source": "network.notifi.acme",
        "subject": "parser-1",
        "data": _REQUEST,
    },
    "job.start": {
        "type": f"{P}.job.start",
        "source": "network.notifi.acme",
        "subject": "parser-1",
        "data": {**_REQUEST, "priority": 5},
    },
    "build.complete": {
        "type": f"{P}.build.complete",
        "source": "network.notifi.builder",
        "subject": "build/acme/parser-1",
        "data": _RESULT,
    },
    "service.delete": {
        "type": f"{P}.service.delete",
        "source": "network.notifi.deployer",
        "subject": "parser-1",
        "data": {"third_party_id": "acme", "parser_id": "parser-1"},
    },
    "parser.start": {
        "type": f"{P}.parser.start",
        "source": "network.notifi.acme",
        "subject": "parser-1",
        "data": {"contextId": "c-1", "payload": [1, 2, 3]},
    },
    "result": {
        "type": f"{P}.result",
        "source": "lambda-acme-parser-1",
        "subject": "parser-1",
        "data": {"succeeded": True, "contextId": "c-1", "eventEntries": []},
    },
    "error": {
        "type": f"{P}.error",
        "source": "lambda-acme-parser-1",
        "subject": "parser-1",
        "data": {"succeeded": False, "errorMessage": "boom"},
    },
}


def _apply(target: dict[str, Any], changes: dict[str, Any]) -> None:
    for key, value in changes.items():
        if value is DROP:
            target.pop(key, None)
        else:
            target[key] = value


def doc(kind: str, data: dict[str, Any] | None = None, **attrs: Any) -> dict[str, Any]:
    """A valid structured event of ``kind`` with attribute and data changes applied."""
    out = {**_BASE_ATTRS, **copy.deepcopy(BASE[kind])}
    _apply(out, attrs)
    if data:
        _apply(out["data"], data)
    return out


def http_binary(d: dict[str, Any], body: bytes | None = None) -> tuple[dict[str, str], bytes]:
    headers = {f"ce-{k}": str(v) for k, v in d.items() if k not in ("data", "datacontenttype")}
    if "datacontenttype" in d:
        headers["Content-Type"] = d["datacontenttype"]
    raw = json.dumps(d["data"]).encode() if body is None and "data" in d else body or b""
    return headers, raw


def http_structured(d: Any, content_type: str = "application/cloudevents+json") -> tuple:
    body = d if isinstance(d, bytes) else json.dumps(d).encode()
    return {"Content-Type": content_type}, body


def amqp_binary(d: dict[str, Any], body: bytes | None = None) -> tuple:
    headers, raw = http_binary(d, body)
    content_type = headers.pop("Content-Type", None)
    return headers, raw, content_type


def _case(id_: str, transport: str, message: Any, *expect: str) -> Case:
    return Case(id_, transport, message, expect)


CASES: list[Case] = [
    # --- envelope: required attributes and specversion --------------------------------
    _case("missing-id", "json", doc("build.start", id=DROP), "attribute id: required"),
    _case("missing-source", "json", doc("build.start", source=DROP), "attribute source: required"),
    _case("missing-type", "json", doc("build.start", type=DROP), "attribute type: required"),
    _case("missing-specversion", "json", doc("build.start", specversion=DROP), "attribute specversion: required"),
    _case("specversion-0.3", "json", doc("build.start", specversion="0.3"), "attribute specversion: must be '1.0'"),
    _case("specversion-number", "json", doc("result", specversion=1.0), "attribute specversion: must be '1.0', got 1.0"),
    _case("specversion-2.0-http", "http", http_binary(doc("build.start", specversion="2.0")), "attribute specversion: must be '1.0'"),
    _case("specversion-0.3-amqp", "amqp", amqp_binary(doc("result", specversion="0.3")), "attribute specversion: must be '1.0'"),
    _case("empty-id", "json", doc("result", id=""), "attribute id: must not be empty"),
    _case("id-not-string", "json", doc("result", id=42), "attribute id: must be a string"),
    _case("empty-source", "json", doc("result", source=""), "attribute source: must not be empty"),
    _case("empty-type", "json", doc("result", type=""), "attribute type: must not be empty"),
    _case("empty-subject", "json", doc("result", subject=""), "attribute subject: must not be empty"),
    _case("time-garbage", "json", doc("result", time="yesterday"), "attribute time: must be an RFC 3339"),
    _case("time-no-zone", "json", doc("result", time="2026-11-26T07:00:00"), "attribute time: must have a time zone"),
    _case("time-number", "json", doc("result", time=1764140400), "attribute time: must be an RFC 3339"),
    _case("time-garbage-http", "http", http_binary(doc("result", time="not-a-time")), "attribute time"),
    _case("time-garbage-amqp", "amqp", amqp_binary(doc("result", time="13/13/2026")), "attribute time"),
    _case("extension-uppercase", "json", doc("result", CorrelationId=CID), "extension names are lowercase"),
    _case("extension-underscore", "json", doc("result", third_party="acme"), "extension names are lowercase"),
    _case("extension-object-value", "json", doc("result", note={"a": 1}), "attribute note: must be a string, integer or boolean"),
    _case("http-missing-ce-id", "http", http_binary(doc("build.start", id=DROP)), "attribute id: required"),
    _case("http-missing-ce-specversion", "http", http_binary(doc("build.start", specversion=DROP)), "attribute specversion: required"),
    _case("http-missing-ce-source-and-type", "http", http_binary(doc("build.start", source=DROP, type=DROP)), "attribute source: required", "attribute type: required"),
    _case("amqp-missing-ce-type", "amqp", amqp_binary(doc("result", type=DROP)), "attribute type: required"),
    # --- wire format ------------------------------------------------------------------
    _case("http-no-ce-headers", "http", ({"Content-Type": "application/json"}, b'{"a": 1}'), "no ce- headers"),
    _case("http-no-headers-at-all", "http", ({}, b""), "no ce- headers"),
    _case("http-binary-broken-json", "http", http_binary(doc("build.start"), body=b'{"third_party_id": "acme",'), "body: invalid JSON"),
    _case("http-structured-broken-json", "http", http_structured(b'{"specversion": "1.0", "id": '), "body: invalid JSON"),
    _case("http-structured-empty-body", "http", http_structured(b""), "body: invalid JSON"),
    _case("http-structured-array", "http", http_structured([doc("result")]), "event: must be a JSON object"),
    _case("http-structured-not-utf8", "http", http_structured(b'{"id": "\xff\xfe"}'), "body: is not UTF-8"),
    _case("http-batch-mode", "http", http_structured([doc("result")], "application/cloudevents-batch+json"), "batch mode is not supported"),
    _case("http-structured-xml", "http", http_structured(b"<event/>", "application/cloudevents+xml"), "is not supported"),
    _case("http-structured-missing-id", "http", http_structured(doc("result", id=DROP)), "attribute id: required"),
    _case("amqp-binary-broken-json", "amqp", amqp_binary(doc("result"), body=b"{not json}"), "body: invalid JSON"),
    _case("amqp-no-ce-headers", "amqp", ({"x-retry": "1"}, b"{}", "application/json"), "no ce- headers"),
    _case("amqp-structured-broken-json", "amqp", ({}, b"{{", "application/cloudevents+json"), "body: invalid JSON"),
    _case("amqp-structured-specversion", "amqp", ({}, json.dumps(doc("error", specversion="0.3")).encode(), "application/cloudevents+json"), "attribute specversion: must be '1.0'"),
    _case("data-base64-invalid", "json", {**doc("parser.start", data=None), "data": None, "data_base64": "!!not base64!!"}, "data_base64: is not valid base64"),
    _case("data-and-data-base64", "json", {**doc("parser.start"), "data_base64": "aGk="}, "data_base64: must not appear together with data"),
    # --- type ---------------------------------------------------------------------------
    _case("unknown-type", "json", doc("build.start", type=f"{P}.build.begin"), "unknown event type 'network.notifi.lambda.build.begin'"),
    _case("foreign-prefix", "json", doc("build.start", type="com.example.build.start"), "unknown event type"),
    _case("bare-suffix", "json", doc("build.start", type="build.start"), "unknown event type"),
    _case("unknown-type-lists-known", "http", http_binary(doc("result", type=f"{P}.results")), f"known: {P}.build.start, {P}.job.start"),
    _case("type-case-differs", "amqp", amqp_binary(doc("result", type=f"{P}.Result")), "unknown event type"),
    # --- correlation id -------------------------------------------------------------------
    _case("correlationid-not-uuid", "json", doc("build.start", correlationid="req-42"), "attribute correlationid: must be a UUID v4"),
    _case("correlationid-uuid-v1", "json", doc("build.start", correlationid="6ba7b810-9dad-11d1-80b4-00c04fd430c8"), "attribute correlationid: must be a UUID v4"),
    _case("correlationid-no-dashes", "json", doc("build.start", correlationid=CID.replace("-", "")), "attribute correlationid: must be a UUID v4"),
    _case("correlationid-empty", "json", doc("result", correlationid=""), "attribute correlationid: must be a UUID v4"),
    _case("correlationid-number-http", "http", http_binary(doc("result", correlationid="1234")), "attribute correlationid: must be a UUID v4"),
    _case("correlationid-braces-amqp", "amqp", amqp_binary(doc("result", correlationid="{" + CID + "}")), "attribute correlationid: must be a UUID v4"),
    # --- source / subject -----------------------------------------------------------------
    _case("request-source-no-prefix", "json", doc("build.start", source="acme"), "attribute source: must be 'network.notifi.<third_party_id>'"),
    _case("request-source-uppercase-tp", "json", doc("build.start", source="network.notifi.ACME"), "attribute source: must be 'network.notifi.<third_party_id>'"),
    _case("request-source-disagrees-with-data", "json", doc("job.start", source="network.notifi.other"), "data.third_party_id: 'acme' does not match source 'network.notifi.other'"),
    _case("request-subject-missing", "json", doc("build.start", subject=DROP), "attribute subject: required for build.start"),
    _case("request-subject-disagrees-with-data", "http", http_binary(doc("build.start", subject="parser-2")), "data.parser_id: 'parser-1' does not match subject 'parser-2'"),
    _case("request-subject-has-slash", "json", doc("build.start", subject="acme/parser-1"), "attribute subject: must be the parser id"),
    _case("result-source-not-builder", "json", doc("build.complete", source="network.notifi.acme"), "attribute source: must be 'network.notifi.builder'"),
    _case("result-subject-not-build-path", "json", doc("build.complete", subject="parser-1"), "attribute subject: must be 'build/<third_party_id>/<parser_id>'"),
    _case("result-subject-missing", "json", doc("build.complete", subject=DROP), "attribute subject: required for build.complete"),
    _case("result-subject-disagrees-tp", "amqp", amqp_binary(doc("build.complete", subject="build/other/parser-1")), "data.third_party_id: 'acme' does not match subject"),
    _case("parser-start-source-wrong", "json", doc("parser.start", source="https://example.com"), "attribute source: must be 'network.notifi.<third_party_id>'"),
    _case("parser-start-ext-tp-disagrees", "json", doc("parser.start", thirdpartyid="other"), "attribute thirdpartyid: 'other' does not match"),
    _case("parser-start-ext-parser-bad", "json", doc("parser.start", parserid="Parser_1"), "attribute parserid: must be a DNS-friendly id"),
    _case("function-result-subject-missing", "json", doc("result", subject=DROP), "attribute subject: required for result"),
    _case("service-delete-subject-disagrees", "json", doc("service.delete", subject="parser-9"), "data.parser_id: 'parser-1' does not match subject"),
    # --- data fields ----------------------------------------------------------------------
    _case("request-data-missing", "json", doc("build.start", data=None) | {"data": None}, "data: must be a JSON object, got nothing"),
    _case("request-data-text", "http", http_binary(doc("build.start", datacontenttype="text/plain"), body=b"acme parser-1"), "attribute datacontenttype: must be application/json", "data: must be a JSON object, got str"),
    _case("request-data-array", "json", doc("build.start") | {"data": ["acme", "parser-1"]}, "data: must be a JSON object, got list"),
    _case("tp-missing", "json", doc("build.start", data={"third_party_id": DROP}), "data.third_party_id: required"),
    _case("parser-id-integer", "json", doc("build.start", data={"parser_id": 7}), "data.parser_id: must be a DNS-friendly id"),
    _case("parser-id-uppercase", "json", doc("build.start", subject="Parser-1", data={"parser_id": "Parser-1"}), "data.parser_id: must be a DNS-friendly id"),
    _case("parser-id-too-long", "json", doc("build.start", subject="p" * 64, data={"parser_id": "p" * 64}), "data.parser_id: must be a DNS-friendly id"),
    _case("parser-id-empty", "json", doc("service.delete", data={"parser_id": ""}), "data.parser_id: must be a DNS-friendly id"),
    _case("tp-trailing-dash", "json", doc("service.delete", data={"third_party_id": "acme-"}), "data.third_party_id: must be a DNS-friendly id"),
    _case("content-hash-not-hex", "json", doc("build.start", data={"content_hash": "not-a-hash"}), "data.content_hash: must be a content hash"),
    _case("parameters-not-object", "json", doc("build.start", data={"parameters": ["a"]}), "data.parameters: must be a JSON object"),
    _case("context-id-number", "json", doc("build.start", data={"context_id": 5}), "data.context_id: must be a string"),
    _case("priority-zero", "json", doc("job.start", data={"priority": 0}), "data.priority: must be an integer 1..10"),
    _case("priority-eleven", "http", http_binary(doc("job.start", data={"priority": 11})), "data.priority: must be an integer 1..10"),
    _case("priority-string", "json", doc("job.start", data={"priority": "5"}), "data.priority: must be an integer 1..10"),
    _case("priority-float", "amqp", amqp_binary(doc("job.start", data={"priority": 5.5})), "data.priority: must be an integer 1..10"),
    _case("priority-bool", "json", doc("job.start", data={"priority": True}), "data.priority: must be an integer 1..10"),
    _case("priority-on-build-start", "json", doc("build.start", data={"priority": 3}), "data.priority: only allowed on job.start"),
    _case("result-job-name-missing", "json", doc("build.complete", data={"job_name": DROP}), "data.job_name: required"),
    _case("result-exit-code-string", "json", doc("build.complete", data={"exit_code": "0"}), "data.exit_code: must be an integer"),
    _case("result-duration-negative", "json", doc("build.complete", data={"duration": -1}), "data.duration: must be a number of seconds >= 0"),
    _case("result-duration-string", "json", doc("build.complete", data={"duration": "12s"}), "data.duration: must be a number"),
    _case("result-status-empty", "json", doc("build.complete", data={"status": ""}), "data.status: must be a non-empty string"),
    _case("result-cached-string", "json", doc("build.complete", data={"cached": "yes"}), "data.cached: must be a boolean"),
    _case("result-correlation-not-uuid", "json", doc("build.complete", data={"correlation_id": "abc"}), "data.correlation_id: must be a UUID v4"),
    _case("result-many-missing", "json", doc("build.complete") | {"data": {"third_party_id": "acme", "parser_id": "parser-1"}}, "data.content_hash: required", "data.image_uri: required", "data.duration: required"),
    _case("function-succeeded-missing", "json", doc("result", data={"succeeded": DROP}), "data.succeeded: required"),
    _case("function-succeeded-string", "json", doc("result", data={"succeeded": "true"}), "data.succeeded: must be a boolean"),
    _case("function-entries-missing", "json", doc("result", data={"eventEntries": DROP}), "data.eventEntries: required"),
    _case("function-entries-object", "json", doc("result", data={"eventEntries": {}}), "data.eventEntries: must be a list"),
    _case("function-error-message-missing", "json", doc("error", data={"errorMessage": DROP}), "data.errorMessage: required"),
    _case("service-name-invalid", "json", doc("service.delete", data={"service_name": "Lambda_Acme"}), "data.service_name: must be a DNS-friendly id"),
    _case("oversize-request", "json", doc("build.start", data={"parameters": {"blob": BIG}}), "data: too large"),
    _case("oversize-parser-start-http", "http", http_binary(doc("parser.start", data={"payload": BIG})), "data: too large"),
    # --- extensions -----------------------------------------------------------------------
    _case("responsetype-unknown", "json", doc("result", responsetype="later"), "attribute responsetype: must be one of sync, async"),
    _case("jobname-invalid", "json", doc("build.complete", jobname="Build_1"), "attribute jobname: must be a DNS-1123 label"),
    # --- several problems at once: all are reported ------------------------------------------
    _case("many-problems", "json", doc("job.start", source="acme", correlationid="x", data={"priority": 99, "parser_id": 1}),
          "attribute source", "attribute correlationid", "data.priority", "data.parser_id"),
    _case("not-an-object", "json", ["not", "an", "event"], "event: must be a CloudEvent or a JSON object"),
]
