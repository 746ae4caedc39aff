"""Hostile HTTP requests to the other platform processes, as data.

- the builder's CloudEvent receiver ``POST {builder_url}/`` (open: the broker
  delivers there without a token) and its read API under ``/apis/v1``;
- the gateway's data plane (``/<namespace>/<service>/...`` or ``Host``) and the
  parts of its management API that the manifest corpus does not cover.

Keys of ``CASES`` are the Settings field holding the component's base URL.
"""

from __future__ import annotations

import gzip
import json

from knative_lambda.harness.hostile import HttpCase
from tests.hostile.corpus_events import PREFIX, STRUCTURED

BUG_CONTENT_ENCODING_ANY = ("BUG: builder and gateway, like the broker: a body that does not decode with its "
                            "Content-Encoding raises ContentEncodingError -> 500")
BUG_ARTIFACT_NUL = ("BUG: builder/cache.py ArtifactStore.resolve: an artifact reference with a NUL byte "
                    "raises ValueError ('embedded null byte') -> 500")


def _ce(type_suffix: str, data: object, **attrs: str) -> bytes:
    doc = {"specversion": "1.0", "id": "hostile-c1", "source": "network.notifi.acme",
           "type": f"{PREFIX}.{type_suffix}", "subject": "parser-1", "data": data, **attrs}
    return json.dumps(doc).encode()


_SC = (("Content-Type", STRUCTURED),)
_BIN = (("ce-specversion", "1.0"), ("ce-id", "hostile-c2"), ("ce-source", "network.notifi.acme"),
        ("ce-type", f"{PREFIX}.build.start"), ("ce-subject", "parser-1"), ("Content-Type", "application/json"))


def _c(id_: str, path: str, *expect: str, method: str = "POST", headers: tuple[tuple[str, str], ...] = (),
       body: bytes = b"", status: tuple[int, ...] = (400,), bug: str = "") -> HttpCase:
    return HttpCase(id_, headers, body, method, path, status, tuple(e.lower() for e in expect), bug=bug)


BUILDER: list[HttpCase] = [
    _c("builder-no-ce-headers", "/", "no ce- headers", body=b"garbage"),
    _c("builder-structured-broken", "/", "invalid json", headers=_SC, body=b'{"id": '),
    _c("builder-structured-deep", "/", "nested too deeply", headers=_SC, body=b"[" * 100_000 + b"]" * 100_000),
    _c("builder-batch", "/", "batch mode", headers=(("Content-Type", "application/cloudevents-batch+json"),),
       body=b"[]"),
    _c("builder-parser-start", "/", "the builder takes build.start", headers=_SC,
       body=_ce("parser.start", {"x": 1})),
    _c("builder-service-delete", "/", "the builder takes", headers=_SC,
       body=_ce("service.delete", {"third_party_id": "acme", "parser_id": "parser-1"})),
    _c("builder-bad-request-data", "/", "data.third_party_id", headers=_SC,
       body=_ce("build.start", {"third_party_id": "ACME!", "parser_id": "parser-1"},
                source="network.notifi.acme")),
    _c("builder-priority-on-build-start", "/", "data.priority", headers=_SC,
       body=_ce("build.start", {"third_party_id": "acme", "parser_id": "parser-1", "priority": 99})),
    _c("builder-binary-missing-id", "/", "attribute id: required",
       headers=tuple(h for h in _BIN if h[0] != "ce-id"), body=b'{"third_party_id": "acme", "parser_id": "parser-1"}'),
    _c("builder-binary-text-data", "/", "datacontenttype",
       headers=(*_BIN[:-1], ("Content-Type", "text/plain")), body=b"acme parser-1"),
    _c("builder-big-int", "/", "invalid json", headers=_SC,
       body=b'{"specversion":"1.0","id":"1","data":' + b"9" * 5000 + b"}"),
    _c("builder-gzip-garbage", "/", "content-encoding", headers=(*_BIN, ("Content-Encoding", "gzip")),
       body=b"not gzip"),
    _c("builder-gzip-bomb", "/", "too large", headers=(*_BIN, ("Content-Encoding", "gzip")),
       body=gzip.compress(b" " * (20 * 1024 * 1024)), status=(413,)),
    _c("builder-get-root", "/", "method not allowed", method="GET", status=(405,)),
    _c("builder-unknown-api", "/apis/v1/nope", "not found", method="GET", status=(404,)),
    _c("builder-build-unknown", "/apis/v1/builds/no-such-build", "no such build", method="GET", status=(404,)),
    _c("builder-build-long-id", "/apis/v1/builds/" + "b" * 5000, "no such build", method="GET", status=(404,)),
    _c("builder-artifact-traversal", "/apis/v1/artifacts/..%2F..%2F..%2Fetc", "no artifact", method="GET",
       status=(404,)),
    _c("builder-artifact-absolute", "/apis/v1/artifacts/%2Fetc%2Fpasswd", "no artifact", method="GET",
       status=(404,)),
    _c("builder-artifact-long", "/apis/v1/artifacts/" + "a" * 5000, "no artifact", method="GET", status=(404,)),
    _c("builder-artifact-nul", "/apis/v1/artifacts/a%00b", "no artifact", method="GET", status=(404,)),
]

GATEWAY: list[HttpCase] = [
    _c("gateway-unknown-service", "/default/hostile-nope/", "no function", method="GET", status=(404,)),
    _c("gateway-unknown-namespace", "/nope/hostile-nope/x", "no function", status=(404,)),
    _c("gateway-path-traversal", "/default/..%2F..%2Fetc/passwd", "no function", method="GET", status=(404,)),
    _c("gateway-host-long", "/", "no function", method="GET", status=(404,),
       headers=(("Host", "a" * 5000 + ".default.example.com"),)),
    _c("gateway-host-traversal", "/", "no function", method="GET", status=(404,),
       headers=(("Host", "../../etc.default.example.com"),)),
    _c("gateway-host-empty-labels", "/", "no function", method="GET", status=(404,), headers=(("Host", "..."),)),
    _c("gateway-timeline-since-text", "/apis/v1/timeline?since=yesterday", "since", method="GET"),
    _c("gateway-timeline-since-huge", "/apis/v1/timeline?since=" + "9" * 5000, "since", method="GET"),
    _c("gateway-service-bad-namespace", "/apis/v1/namespaces/Bad_NS/services/x", "no service", method="GET",
       status=(404,)),
    _c("gateway-put-gzip-garbage", "/apis/v1/namespaces/default/services/hostile-gz", "not json",
       method="PUT", headers=(("Content-Encoding", "gzip"),), body=b"not gzip"),
]

CASES: dict[str, list[HttpCase]] = {"builder_url": BUILDER, "gateway_url": GATEWAY}
