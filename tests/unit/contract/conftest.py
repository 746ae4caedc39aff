"""Valid sample events of every kind, for the contract tests to mutate and round-trip."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from cloudevents.core.v1.event import CloudEvent

from knative_lambda.contract import (
    BUILDER_SOURCE,
    EXT_PARSER_ID,
    EXT_RESPONSE_TYPE,
    EXT_THIRD_PARTY_ID,
    BuildRequest,
    BuildResult,
    EventKind,
    FunctionResult,
    ServiceDelete,
    build_subject,
    image_uri,
    job_name,
    new_event,
    service_name,
    tenant_source,
)

TP, PARSER, HASH = "acme", "parser-1", "0123456789ab"
CID = "7f0c6f8e-2a5b-4c3d-9e1f-0a1b2c3d4e5f"


def sample_data(kind: EventKind) -> object:
    if kind in (EventKind.BUILD_START, EventKind.REBUILD_START):
        return BuildRequest(TP, PARSER, content_hash=HASH, context_id="ctx-1", parameters={"a": 1})
    if kind is EventKind.JOB_START:
        return BuildRequest(TP, PARSER, content_hash=HASH, priority=7)
    if kind in (EventKind.BUILD_COMPLETE, EventKind.BUILD_FAILED, EventKind.BUILD_TIMEOUT):
        failed = kind is not EventKind.BUILD_COMPLETE
        return BuildResult(
            third_party_id=TP,
            parser_id=PARSER,
            content_hash=HASH,
            job_name=job_name(TP, PARSER, HASH),
            image_uri="" if failed else image_uri("localhost:5000", TP, PARSER, HASH),
            status=kind.value.split(".")[1],
            error_message="exit 1: pip failed" if failed else "",
            exit_code=None if kind is EventKind.BUILD_TIMEOUT else (1 if failed else 0),
            duration=12.5,
            correlation_id=CID,
            cached=kind is EventKind.BUILD_COMPLETE,
        )
    if kind is EventKind.SERVICE_DELETE:
        return ServiceDelete(TP, PARSER, service_name=service_name(TP, PARSER), reason="idle")
    if kind is EventKind.PARSER_START:
        return {"contextId": "ctx-1", "payload": {"text": "héllo ✓", "n": [1, 2.5, None, True]}}
    if kind is EventKind.ERROR:
        return FunctionResult.failed("ValueError: bad input", context_id="ctx-1")
    return FunctionResult.ok([{"type": "x", "value": 1}], context_id="ctx-1")


def sample_routing(kind: EventKind) -> tuple[str, str, dict[str, str]]:
    """(source, subject, extensions) the contract requires for ``kind``."""
    if kind.value.startswith("build.") and kind is not EventKind.BUILD_START:
        return BUILDER_SOURCE, build_subject(TP, PARSER), {"jobname": job_name(TP, PARSER, HASH)}
    if kind is EventKind.SERVICE_DELETE:
        return "network.notifi.deployer", PARSER, {}
    if kind in (EventKind.RESULT, EventKind.PROCESSED, EventKind.ERROR):
        ext = {EXT_RESPONSE_TYPE: "sync"} if kind is EventKind.RESULT else {}
        return service_name(TP, PARSER), PARSER, ext
    ext = {EXT_THIRD_PARTY_ID: TP, EXT_PARSER_ID: PARSER}
    return tenant_source(TP), PARSER, ext


def make_sample(kind: EventKind, prefix: str = "network.notifi.lambda") -> CloudEvent:
    source, subject, ext = sample_routing(kind)
    return new_event(
        kind,
        sample_data(kind),
        source=source,
        subject=subject,
        prefix=prefix,
        correlation_id=CID,
        extensions=ext,
    )


@pytest.fixture
def sample_event() -> Callable[..., CloudEvent]:
    return make_sample
