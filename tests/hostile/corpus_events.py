"""Hostile HTTP requests to the broker ingress ``POST {broker_url}/default/default``, as data.

Three kinds of case:

- :func:`contract_cases` replays the contract's malformed corpus
  (``tests/unit/contract/malformed_corpus.py``, imported, not copied) over HTTP:
  every message becomes the request a client would send on that transport;
- ``HTTP_CASES``: requests that are well-formed HTTP but hostile (methods,
  paths, content types, encodings, header and body sizes, attribute types);
- ``RAW_CASES``: bytes on a socket that are not valid HTTP/1.1 at all
  (smuggling-style framing, bad request lines, lying lengths).

Expectations are lowercase substrings of the error the platform answers with.
``bug`` names a platform defect this corpus found (the test is then a strict
xfail that turns red once the owner fixes it, so the marker gets removed).
"""

from __future__ import annotations

import gzip
import json
import zlib

from knative_lambda.harness.hostile import HttpCase, RawCase
from tests.unit.contract import malformed_corpus as contract

INGRESS = "/default/default"
MAX_EVENT_BYTES = 1024 * 1024  # the broker's default KL_BROKER_MAX_EVENT_BYTES
PREFIX = contract.P
STRUCTURED = "application/cloudevents+json"

# Bugs found by this corpus (see the report of issue 9); referenced by the cases.
BUG_ROUTER_TEXT = ("BUG: aiohttp's router answers unknown paths/methods and body-size errors raised "
                   "while parsing with text/plain, not the JSON error body of the ingress")
BUG_BIG_INT = ("BUG: contract/bindings.py _parse_json catches JSONDecodeError only: an integer of "
               "more than 4300 digits raises ValueError -> 500")
BUG_CONTENT_ENCODING = ("BUG: broker ingress: a body that does not decode with its Content-Encoding "
                        "(gzip/deflate/br) raises ContentEncodingError -> 500")
BUG_AMQP_LIMITS = ("BUG: validation does not bound attributes to what AMQP 0-9-1 carries: an id over "
                   "255 bytes (message_id shortstr) or headers over the 128 KiB frame -> 503, and "
                   "the frame error closes the broker's RabbitMQ connection")
BUG_CONTROL_CHARS = ("BUG: contract validation accepts control characters/surrogates in attribute "
                     "values (CloudEvents 1.0 'String' forbids them); surrogates -> 503 at publish")
BUG_LOSSY_PERCENT = ("BUG: contract/bindings.py from_http: a percent-encoded ce- header that is not UTF-8 "
                     "is decoded with U+FFFD replacements (the event's id silently changes) instead of 400")
BUG_NON_JSON_NUMBERS = ("BUG: contract/bindings.py accepts NaN/Infinity (not JSON, RFC 8259) and "
                        "re-emits them to subscribers")
BUG_DUPLICATE_CE = ("BUG: duplicate ce- headers with different values are accepted (one silently "
                    "wins); the event's identity is ambiguous")


# --- building blocks -------------------------------------------------------------------


def event(**changes: object) -> dict[str, object]:
    """A valid structured parser.start event with changes applied (``None`` value = drop)."""
    doc: dict[str, object] = {
        "specversion": "1.0",
        "id": "hostile-0001",
        "source": "network.notifi.acme",
        "type": f"{PREFIX}.parser.start",
        "subject": "parser-1",
        "datacontenttype": "application/json",
        "data": {"payload": 1},
    }
    for key, value in changes.items():
        if value is None:
            doc.pop(key, None)
        else:
            doc[key] = value
    return doc


def structured(doc: object, content_type: str = STRUCTURED) -> tuple[tuple[tuple[str, str], ...], bytes]:
    body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    return (("Content-Type", content_type),), body


BINARY_HEADERS: tuple[tuple[str, str], ...] = (
    ("ce-specversion", "1.0"),
    ("ce-id", "hostile-0002"),
    ("ce-source", "network.notifi.acme"),
    ("ce-type", f"{PREFIX}.build.start"),
    ("ce-subject", "parser-1"),
)
BUILD_DATA = json.dumps({"third_party_id": "acme", "parser_id": "parser-1"}).encode()


def binary(*, drop: tuple[str, ...] = (), extra: tuple[tuple[str, str], ...] = (),
           content_type: str | None = "application/json") -> tuple[tuple[str, str], ...]:
    """Binary-mode headers of a build.start, with some dropped and some added."""
    headers = [(k, v) for k, v in BINARY_HEADERS if k not in drop]
    if content_type is not None:
        headers.append(("Content-Type", content_type))
    return (*headers, *extra)


def _case(id_: str, headers: tuple[tuple[str, str], ...], body: bytes, *expect: str, **kw: object) -> HttpCase:
    return HttpCase(id_, headers, body, expect=tuple(e.lower() for e in expect), **kw)  # type: ignore[arg-type]


def _structured_case(id_: str, doc: object, *expect: str, **kw: object) -> HttpCase:
    headers, body = structured(doc)
    return _case(id_, headers, body, *expect, **kw)


def _nested(depth: int, open_: str = "[", close: str = "]") -> bytes:
    return (open_ * depth + close * depth).encode()


# --- the contract's corpus over HTTP ---------------------------------------------------

# Where the HTTP answer words a problem differently from validate() on a plain object.
_CONTRACT_OVERRIDES = {"not-an-object": ("event: must be a json object",)}


def contract_request(case: contract.Case) -> tuple[tuple[tuple[str, str], ...], bytes]:
    """The HTTP request a client would send for one contract case."""
    if case.transport == "json":
        return structured(case.message)
    if case.transport == "http":
        headers, body = case.message
        return tuple(headers.items()), body
    headers, body, content_type = case.message  # amqp: ce- headers map 1:1 to HTTP binary mode
    pairs = tuple((k, str(v)) for k, v in headers.items())
    return (*pairs, ("Content-Type", content_type)) if content_type else pairs, body


def contract_cases() -> list[HttpCase]:
    out = []
    for case in contract.CASES:
        headers, body = contract_request(case)
        if len(body) > MAX_EVENT_BYTES:
            status, expect = (413,), ("too large",)
        else:
            status = (400,)
            expect = _CONTRACT_OVERRIDES.get(case.id, tuple(e.lower() for e in case.expect))
        out.append(HttpCase(f"contract-{case.transport}-{case.id}", headers, body, status=status,
                            expect=expect))
    return out


# --- hostile HTTP requests -------------------------------------------------------------

_BIG = b"x" * (MAX_EVENT_BYTES + 1)
_GZIP_BOMB = gzip.compress(b"{" + b" " * (8 * MAX_EVENT_BYTES) + b"}", compresslevel=9)
_DIGITS = b"9" * 5000

HTTP_CASES: list[HttpCase] = [
    # methods and paths
    *(HttpCase(f"method-{m.lower()}", method=m, status=(405,), expect=("method not allowed",))
      for m in ("GET", "PUT", "DELETE", "PATCH", "OPTIONS")),
    HttpCase("method-head", method="HEAD", status=(405,), json_error=False),
    HttpCase("path-root", path="/", status=(404,), expect=("not found",)),
    HttpCase("path-one-segment", path="/default", status=(404,), expect=("not found",)),
    HttpCase("path-three-segments", path="/default/default/extra", status=(404,), expect=("not found",)),
    HttpCase("path-trailing-slash", path="/default/default/", status=(404,), expect=("not found",)),
    HttpCase("path-double-slash", path="//default/default", status=(404,), expect=("not found",)),
    HttpCase("path-unknown-broker", path="/default/nope", status=(404,), expect=("no broker default/nope",)),
    HttpCase("path-unknown-namespace", path="/nope/default", status=(404,), expect=("no broker nope/default",)),
    HttpCase("path-encoded-dotdot", path="/%2e%2e/%2e%2e", status=(404,), expect=("no broker",)),
    HttpCase("path-encoded-slash", path="/default%2Fdefault/x", status=(404,), expect=("no broker",)),
    HttpCase("path-nul", path="/default/de%00fault", status=(404,), expect=("no broker",)),
    HttpCase("path-unicode", path="/default/d%C3%A9fault", status=(404,), expect=("no broker",)),
    HttpCase("path-apis-prefix", path="/apis/v1", status=(404,), expect=("no broker apis/v1",)),
    HttpCase("path-post-trigger-list", path="/apis/v1/triggers", status=(405,),
             expect=("method not allowed",)),
    HttpCase("path-long-7000", path="/default/" + "d" * 7000, status=(404,), expect=("no broker",)),
    # query strings: ignored by the ingress, the event is still judged (and here rejected)
    _case("query-plain", binary(drop=("ce-id",)), BUILD_DATA, "attribute id: required", path=INGRESS + "?a=1"),
    _case("query-bad-percent", binary(drop=("ce-id",)), BUILD_DATA, "attribute id: required",
          path=INGRESS + "?%zz=%&&=="),
    _case("query-overrides-nothing", binary(drop=("ce-type",)), BUILD_DATA, "attribute type: required",
          path=INGRESS + "?ce-type=x&specversion=1.0"),
    _case("query-long", binary(drop=("ce-id",)), BUILD_DATA, "attribute id: required",
          path=INGRESS + "?q=" + "a" * 6000),
    # content types
    _case("ctype-text-plain", binary(content_type="text/plain"), b"acme parser-1", "datacontenttype"),
    _case("ctype-xml", binary(content_type="application/xml"), b"<a/>", "datacontenttype"),
    _case("ctype-form", binary(content_type="application/x-www-form-urlencoded"), b"a=1", "datacontenttype"),
    _case("ctype-multipart", binary(content_type="multipart/form-data; boundary=x"),
          b"--x\r\n\r\n{}\r\n--x--", "datacontenttype"),
    _case("ctype-octet-stream", binary(content_type="application/octet-stream"), b"\x00\x01", "datacontenttype"),
    _case("ctype-garbage", binary(content_type=";;;=="), BUILD_DATA, "datacontenttype"),
    _case("ctype-ce-xml", (("Content-Type", "application/cloudevents+xml"),), b"<event/>", "is not supported"),
    _case("ctype-ce-protobuf", (("Content-Type", "application/cloudevents+protobuf"),), b"\x0a\x01", "is not supported"),
    _case("ctype-ce-avro", (("Content-Type", "application/cloudevents+avro"),), b"Obj\x01", "is not supported"),
    _case("ctype-batch", *structured([event()], "application/cloudevents-batch+json"), "batch mode"),
    _case("ctype-batch-empty", *structured([], "application/cloudevents-batch+json"), "batch mode"),
    _case("ctype-structured-utf16", (("Content-Type", STRUCTURED + "; charset=utf-16"),),
          json.dumps(event()).encode("utf-16"), "not utf-8"),
    _case("ctype-long", binary(content_type="application/json; x=" + "a" * 4000), b"[1]", "data"),
    _case("ctype-none-structured-body", (), json.dumps(event()).encode(), "no ce- headers"),
    # bodies
    _case("body-invalid-utf8-structured", *structured(b'{"id": "\xc3\x28", "type": "\xff"}'), "not utf-8"),
    _case("body-invalid-utf8-binary", binary(), b'{"third_party_id": "\xff\xfe"}', "not utf-8"),
    _case("body-utf8-bom", *structured(b"\xef\xbb\xbf" + json.dumps(event()).encode()), "invalid json"),
    _case("body-deep-arrays-structured", *structured(_nested(200_000)), "nested too deeply"),
    _case("body-deep-objects-binary", binary(), ('{"a":' * 100_000 + "1" + "}" * 100_000).encode(),
          "nested too deeply"),
    _case("body-deep-data-structured", *structured(
        b'{"specversion":"1.0","id":"x","source":"s","type":"t","data":' + _nested(50_000) + b"}"),
        "nested too deeply"),
    _case("body-null", *structured(b"null"), "must be a json object"),
    _case("body-string", *structured(b'"event"'), "must be a json object"),
    _case("body-number", *structured(b"42"), "must be a json object"),
    _case("body-empty-binary", binary(), b"", "data: must be a json object"),
    _case("body-whitespace", *structured(b"   \n\t "), "invalid json"),
    _case("body-trailing-garbage", *structured(json.dumps(event()).encode() + b"}}"), "invalid json"),
    _case("body-two-events", *structured(json.dumps(event()).encode() * 2), "invalid json"),
    _case("body-big-int-data", *structured(
        b'{"specversion":"1.0","id":"x","source":"network.notifi.acme","type":"' + PREFIX.encode()
        + b'.parser.start","subject":"parser-1","data":{"n":' + _DIGITS + b"}}"), "invalid json"),
    _case("body-big-int-binary", binary(), b'{"third_party_id": ' + _DIGITS + b"}", "invalid json"),
    _case("body-nan", *structured(json.dumps(event(id="hostile-bug-nan", data={"x": float("nan")})).encode()), "invalid json"),
    _case("body-infinity", *structured(json.dumps(event(id="hostile-bug-inf", data={"x": float("inf")})).encode()), "invalid json"),
    # sizes and encodings
    _case("size-structured-over-limit", *structured(_BIG), "too large", status=(413,)),
    _case("size-binary-over-limit", binary(), _BIG, "too large", status=(413,)),
    _case("size-chunked-over-limit", binary(), _BIG, "too large", status=(413,), stream=True),
    _case("size-gzip-bomb", binary(extra=(("Content-Encoding", "gzip"),)), _GZIP_BOMB, "too large",
          status=(413,)),
    _case("encoding-gzip-garbage", binary(extra=(("Content-Encoding", "gzip"),)), b"not gzip at all",
          "content-encoding"),
    _case("encoding-deflate-garbage", binary(extra=(("Content-Encoding", "deflate"),)), b"not deflate",
          "content-encoding"),
    _case("encoding-gzip-truncated", binary(extra=(("Content-Encoding", "gzip"),)),
          gzip.compress(BUILD_DATA)[:12], "body"),
    _case("encoding-deflate-of-invalid-event", binary(drop=("ce-id",), extra=(("Content-Encoding", "deflate"),)),
          zlib.compress(BUILD_DATA), "attribute id: required"),
    # headers
    _case("header-missing-ce-id", binary(drop=("ce-id",)), BUILD_DATA, "attribute id: required"),
    _case("header-missing-all-but-id", binary(drop=("ce-specversion", "ce-source", "ce-type")), BUILD_DATA,
          "attribute specversion: required", "attribute source: required", "attribute type: required"),
    _case("header-empty-ce-id", binary(drop=("ce-id",), extra=(("ce-id", ""),)), BUILD_DATA, "attribute id"),
    _case("header-ce-time-garbage", binary(extra=(("ce-time", "next tuesday"),)), BUILD_DATA, "attribute time"),
    _case("header-ce-specversion-09", binary(drop=("ce-specversion",), extra=(("ce-specversion", "0.9"),)),
          BUILD_DATA, "attribute specversion"),
    _case("header-uppercase-extension", binary(extra=(("ce-CorrelationID", "not-a-uuid"),)), BUILD_DATA,
          "correlationid"),
    _case("header-percent-nul-id", binary(drop=("ce-id",), extra=(("ce-id", "a%00b"),)), BUILD_DATA,
          "attribute id"),
    _case("header-percent-crlf-id", binary(drop=("ce-id",), extra=(("ce-id", "a%0D%0Ax-evil:%201"),)),
          BUILD_DATA, "attribute id"),
    _case("header-percent-surrogate-id", binary(drop=("ce-id",), extra=(("ce-id", "a%ED%A0%80b"),)),
          BUILD_DATA, "attribute id"),
    _case("header-percent-invalid-utf8-id", binary(drop=("ce-id",), extra=(("ce-id", "a%FF%FEb"),)),
          BUILD_DATA, "attribute id"),
    _case("header-duplicate-ce-id", binary(drop=("ce-id",), extra=(("ce-id", "hostile-bug-1"), ("ce-id", "hostile-bug-2"))),
          BUILD_DATA, "duplicate"),
    _case("header-duplicate-ce-type", binary(drop=("ce-id",), extra=(("ce-id", "hostile-bug-3"),
                                                                     ("ce-type", f"{PREFIX}.result"))), BUILD_DATA,
          "duplicate"),
    _case("header-duplicate-content-type", binary(extra=(("Content-Type", "text/plain"),)), BUILD_DATA,
          "duplicate 'content-type'", json_error=False),
    _case("header-gigantic", binary(extra=(("X-Big", "a" * 16_000),)), BUILD_DATA, "8190", json_error=False),
    _case("header-gigantic-ce", binary(extra=(("ce-big", "a" * 9000),)), BUILD_DATA, "8190", json_error=False),
    _case("header-too-many", binary(extra=tuple((f"x-h{i}", "v") for i in range(400))), BUILD_DATA,
          "too many headers", json_error=False),
    _case("header-many-ce-extensions-in-limits", binary(extra=tuple((f"ce-ext{i}", "v" * 100) for i in range(30))
                                                        + (("ce-correlationid", "x"),)), BUILD_DATA, "correlationid"),
    # structured events whose attributes have the wrong JSON types
    *(_structured_case(f"attr-{name}-{kind}", event(**{name: value}), f"attribute {name}")
      for name, kind, value in (
          ("id", "list", ["a"]), ("id", "object", {"a": 1}), ("id", "true", True), ("id", "float", 1.5),
          ("source", "number", 7), ("source", "list", ["network.notifi.acme"]),
          ("type", "object", {"t": 1}), ("type", "number", 1),
          ("specversion", "list", ["1.0"]), ("subject", "number", 9), ("subject", "object", {}),
          ("time", "list", [2026]), ("time", "object", {"t": 1}),
          ("datacontenttype", "number", 5), ("dataschema", "number", 5),
          ("correlationid", "list", ["x"]), ("correlationid", "number", 123),
          ("foo", "list", [1]), ("foo", "float", 1.5), ("foo", "object", {"a": "b"}),
      )),
    _structured_case("attr-id-null", event(id=None) | {"id": None}, "attribute id: required"),
    _structured_case("attr-data-base64-number", {k: v for k, v in event().items() if k != "data"}
                     | {"data_base64": 5}, "data_base64"),
    _structured_case("attr-id-newline", event(id="a\nb"), "attribute id"),
    _structured_case("attr-id-nul", event(id="a\u0000b"), "attribute id"),
    _structured_case("attr-id-surrogate", event(id="\ud800"), "attribute id"),
    _structured_case("attr-subject-escape", event(subject="parser-1\u001b[31m"), "attribute subject"),
    _structured_case("attr-id-300-bytes", event(id="i" * 300), "attribute id", status=(400, 413)),
    _structured_case("attr-extension-200k", event(id="hostile-bug-4", note="v" * 200_000), "attribute", status=(400, 413)),
]


def _raw(request_line: str, *headers: str, body: bytes = b"") -> bytes:
    head = "\r\n".join((request_line, "Host: 127.0.0.1", *headers)) + "\r\n\r\n"
    return head.encode("latin-1") + body


RAW_CASES: list[RawCase] = [
    RawCase("raw-invalid-method", _raw("BREW /default/default HTTP/1.1", "Content-Length: 0")),
    RawCase("raw-garbage-request-line", b"\x00\x01\x02\x03 garbage\r\n\r\n"),
    # no headers at all, so no token: refused as unauthenticated or as bad HTTP
    RawCase("raw-http09", b"POST /default/default\r\n\r\n", status=(400, 401)),
    RawCase("raw-http2-preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", status=(400, 505)),
    RawCase("raw-bad-version", _raw("POST /default/default HTTP/9.9", "Content-Length: 0"), status=(400, 505)),
    RawCase("raw-long-request-line", _raw("POST /default/" + "d" * 9000 + " HTTP/1.1"), expect=("8190",)),
    RawCase("raw-content-length-negative", _raw("POST /default/default HTTP/1.1", "Content-Length: -1")),
    RawCase("raw-content-length-not-a-number", _raw("POST /default/default HTTP/1.1", "Content-Length: abc")),
    RawCase("raw-content-length-conflict", _raw("POST /default/default HTTP/1.1", "Content-Length: 2",
                                                "Content-Length: 5", body=b"{}")),
    RawCase("raw-te-and-content-length", _raw("POST /default/default HTTP/1.1", "Content-Length: 4",
                                              "Transfer-Encoding: chunked", body=b"0\r\n\r\n")),
    RawCase("raw-te-unknown", _raw("POST /default/default HTTP/1.1", "Transfer-Encoding: evil", body=b"{}"),
            status=(400, 501)),
    RawCase("raw-chunk-size-garbage", _raw("POST /default/default HTTP/1.1", "Transfer-Encoding: chunked",
                                           body=b"zz\r\n{}\r\n0\r\n\r\n"), status=(400,)),
    RawCase("raw-header-no-colon", _raw("POST /default/default HTTP/1.1", "ce-id x", "Content-Length: 0")),
    RawCase("raw-header-space-in-name", _raw("POST /default/default HTTP/1.1", "ce id: x", "Content-Length: 0")),
    RawCase("raw-header-obs-fold", _raw("POST /default/default HTTP/1.1", "ce-id: a", " folded", "Content-Length: 0")),
    RawCase("raw-header-nul-value", _raw("POST /default/default HTTP/1.1", "ce-id: a\x00b", "Content-Length: 0")),
    RawCase("raw-header-invalid-utf8", b"POST /default/default HTTP/1.1\r\nHost: x\r\nce-source: \xff\xfe\r\n"
            b"ce-id: 1\r\nce-specversion: 1.0\r\nce-type: " + PREFIX.encode() + b".build.start\r\n"
            b"Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}", status=(400,)),
    RawCase("raw-content-length-over-limit-no-body", _raw("POST /default/default HTTP/1.1",
                                                          f"Content-Length: {10 * MAX_EVENT_BYTES}"),
            status=(413,), expect=("too large",)),
    RawCase("raw-body-shorter-than-content-length", _raw("POST /default/default HTTP/1.1",
                                                         "Content-Type: application/cloudevents+json",
                                                         "Content-Length: 500", body=b'{"id": "1"'), status=None),
    RawCase("raw-headers-cut-off", b"POST /default/default HTTP/1.1\r\nHost: x\r\nce-id: 1", status=None),
]


# Ids of events that must never reach a subscriber: every case carrying one is rejected
# (cases that show an acceptance bug use ids of their own, "hostile-bug-*").
REJECTED_IDS = frozenset({"hostile-0001", "hostile-0002", contract.doc("result")["id"]})


def all_cases() -> list[HttpCase | RawCase]:
    return [*contract_cases(), *HTTP_CASES, *RAW_CASES]
