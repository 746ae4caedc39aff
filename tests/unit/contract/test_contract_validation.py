"""validate(): valid events of every kind, table-driven rule checks, and robustness."""

from __future__ import annotations

import json
import string
from typing import Any

import pytest
from cloudevents.core.v1.event import CloudEvent
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from knative_lambda.contract import (
    BuildRequest,
    BuildResult,
    ContractError,
    EventKind,
    FunctionResult,
    ServiceDelete,
    ValidatedEvent,
    event_to_dict,
    from_amqp,
    from_http,
    problems_of,
    validate,
)

CID = "7f0c6f8e-2a5b-4c3d-9e1f-0a1b2c3d4e5f"

MODEL_TYPES = {
    EventKind.BUILD_START: BuildRequest,
    EventKind.JOB_START: BuildRequest,
    EventKind.REBUILD_START: BuildRequest,
    EventKind.BUILD_COMPLETE: BuildResult,
    EventKind.BUILD_FAILED: BuildResult,
    EventKind.BUILD_TIMEOUT: BuildResult,
    EventKind.SERVICE_DELETE: ServiceDelete,
    EventKind.PARSER_START: dict,
    EventKind.RESULT: FunctionResult,
    EventKind.PROCESSED: FunctionResult,
    EventKind.ERROR: FunctionResult,
}


@pytest.mark.parametrize("kind", list(EventKind), ids=lambda k: k.value)
def test_valid_event_of_every_kind(kind: EventKind, sample_event) -> None:
    e = sample_event(kind)
    v = validate(e)
    assert isinstance(v, ValidatedEvent)
    assert v.kind is kind and v.event is e
    assert isinstance(v.model, MODEL_TYPES[kind])
    assert v.correlation_id == CID
    assert v.parser_id == "parser-1"
    if kind not in (EventKind.RESULT, EventKind.PROCESSED, EventKind.ERROR):
        assert v.third_party_id == "acme"
    assert problems_of(e) == []


@pytest.mark.parametrize("kind", list(EventKind), ids=lambda k: k.value)
def test_structured_json_object_validates_too(kind: EventKind, sample_event) -> None:
    e = sample_event(kind)
    v = validate(event_to_dict(e))
    assert v.kind is kind
    assert v.event.get_attributes() == e.get_attributes()


def test_correlation_id_is_optional(sample_event) -> None:
    e = sample_event(EventKind.RESULT)
    attrs = {k: v for k, v in e.get_attributes().items() if k != "correlationid"}
    assert validate(CloudEvent(attrs, e.get_data())).correlation_id is None


def _mutated(e: CloudEvent, attrs: dict[str, Any] | None = None, data: Any = ...) -> CloudEvent:
    new_attrs = {**e.get_attributes(), **(attrs or {})}
    new_attrs = {k: v for k, v in new_attrs.items() if v is not None}
    return CloudEvent(new_attrs, e.get_data() if data is ... else data)


# (kind, attribute changes (None removes), data change (... keeps), expected problem wheres)
TABLE = [
    # the sample also carries thirdpartyid/parserid extensions: they disagree too
    (EventKind.BUILD_START, {"source": "network.notifi.other"}, ..., ["data.third_party_id", "attribute thirdpartyid"]),
    (EventKind.BUILD_START, {"subject": None}, ..., ["attribute subject"]),
    (EventKind.BUILD_START, {"subject": "parser-2"}, ..., ["data.parser_id", "attribute parserid"]),
    (EventKind.BUILD_START, {"subject": "parser-2", "parserid": None}, ..., ["data.parser_id"]),
    (EventKind.JOB_START, {}, {"third_party_id": "acme", "parser_id": "parser-1", "priority": 11}, ["data.priority"]),
    (EventKind.JOB_START, {}, {"third_party_id": "acme", "parser_id": "parser-1", "priority": 1}, []),
    (EventKind.JOB_START, {}, {"third_party_id": "acme", "parser_id": "parser-1", "priority": 10}, []),
    (EventKind.JOB_START, {}, {"third_party_id": "acme", "parser_id": "parser-1"}, []),
    (EventKind.REBUILD_START, {}, {"third_party_id": "acme", "parser_id": "parser-1", "priority": 5}, ["data.priority"]),
    (EventKind.BUILD_COMPLETE, {"source": "network.notifi.acme"}, ..., ["attribute source"]),
    (EventKind.BUILD_FAILED, {"subject": "build/acme"}, ..., ["attribute subject"]),
    (EventKind.BUILD_TIMEOUT, {"subject": "build/acme/parser-2"}, ..., ["data.parser_id"]),
    (EventKind.BUILD_COMPLETE, {"jobname": "Not Valid"}, ..., ["attribute jobname"]),
    (EventKind.SERVICE_DELETE, {"source": "anything-goes"}, ..., []),
    (EventKind.SERVICE_DELETE, {"subject": "other"}, ..., ["data.parser_id"]),
    (EventKind.PARSER_START, {"source": "network.notifi.builder"}, ..., ["attribute thirdpartyid"]),
    (EventKind.PARSER_START, {"parserid": "other"}, ..., ["attribute parserid"]),
    (EventKind.PARSER_START, {}, "plain text input", []),
    (EventKind.PARSER_START, {}, None, []),
    (EventKind.RESULT, {"responsetype": "async"}, ..., []),
    (EventKind.RESULT, {"responsetype": "SYNC"}, ..., ["attribute responsetype"]),
    (EventKind.RESULT, {"datacontenttype": "text/plain"}, ..., ["attribute datacontenttype"]),
    (EventKind.RESULT, {"datacontenttype": "application/json; charset=utf-8"}, ..., []),
    (EventKind.ERROR, {}, {"succeeded": False, "errorMessage": 3}, ["data.errorMessage"]),
    (EventKind.PROCESSED, {"correlationid": CID.upper()}, ..., []),
    (
        EventKind.JOB_START,
        {"source": "acme", "correlationid": "nope", "subject": "Bad Subject"},
        {"third_party_id": "", "parser_id": "parser-1", "priority": 0, "parameters": 1},
        ["attribute source", "attribute subject", "attribute correlationid", "data.third_party_id",
         "data.priority", "data.parameters"],
    ),
]


@pytest.mark.parametrize("kind, attrs, data, wheres", TABLE, ids=[f"{i}-{t[0].value}" for i, t in enumerate(TABLE)])
def test_rule_table(kind, attrs, data, wheres, sample_event) -> None:
    e = _mutated(sample_event(kind), attrs, data)
    found = [p.where for p in problems_of(e)]
    assert sorted(set(found)) == sorted(set(wheres)), found
    if wheres:
        with pytest.raises(ContractError):
            validate(e)
    else:
        validate(e)


def test_data_limit_is_configurable(sample_event) -> None:
    e = sample_event(EventKind.PARSER_START)
    size = len(json.dumps(e.get_data(), separators=(",", ":"), ensure_ascii=False).encode())
    validate(e, max_data_bytes=size)
    with pytest.raises(ContractError, match=f"data: too large: {size} bytes, limit {size - 1}"):
        validate(e, max_data_bytes=size - 1)


def test_default_limit_is_one_mebibyte(sample_event) -> None:
    base = sample_event(EventKind.PARSER_START)
    at_limit = _mutated(base, data="x" * (1024 * 1024))
    validate(at_limit)
    with pytest.raises(ContractError, match="too large"):
        validate(_mutated(base, data="x" * (1024 * 1024 + 1)))


def test_data_that_is_not_json_is_a_problem_not_a_crash(sample_event) -> None:
    e = _mutated(sample_event(EventKind.PARSER_START), data={"when": {1, 2}})
    with pytest.raises(ContractError, match="not JSON-serializable"):
        validate(e)


@pytest.mark.parametrize("thing", [None, 42, "event", b"{}", object()])
def test_non_events_are_contract_errors(thing) -> None:
    with pytest.raises(ContractError, match="event: must be a CloudEvent or a JSON object"):
        validate(thing)


# --- robustness: nothing but ContractError escapes, whatever arrives -------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
_attr_names = st.sampled_from(
    ["id", "source", "type", "specversion", "subject", "time", "datacontenttype", "data",
     "data_base64", "correlationid", "responsetype", "thirdpartyid", "parserid", "jobname", "X-y"]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(_attr_names, _json, max_size=10))
def test_arbitrary_json_objects_never_crash_validate(doc: dict) -> None:
    try:
        validate(doc)
    except ContractError as e:
        assert e.problems


@settings(max_examples=200, deadline=None)
@given(
    kind=st.sampled_from(["build.start", "job.start", "build.complete", "result", "error", "service.delete"]),
    key=st.text(string.ascii_lowercase + "_", min_size=1, max_size=16),
    value=_json,
)
def test_random_data_fields_never_crash_validate(kind: str, key: str, value: Any) -> None:
    doc = {
        "specversion": "1.0", "id": "1", "source": "network.notifi.acme",
        "type": f"network.notifi.lambda.{kind}", "subject": "parser-1",
        "data": {"third_party_id": "acme", "parser_id": "parser-1", "succeeded": True, key: value},
    }
    try:
        validate(doc)
    except ContractError as e:
        assert e.problems


_header_names = st.sampled_from(
    ["ce-id", "ce-source", "ce-type", "ce-specversion", "ce-time", "ce-subject", "Content-Type",
     "ce-correlationid", "ce-Data", "CE-ID", "ce-", "x-other"]
)


@settings(max_examples=300, deadline=None)
@given(
    headers=st.dictionaries(_header_names, st.text(max_size=30), max_size=8),
    body=st.binary(max_size=64) | _json.map(lambda v: json.dumps(v).encode()),
)
def test_arbitrary_http_messages_never_crash_decoding(headers: dict, body: bytes) -> None:
    for decode in (lambda: from_http(headers, body), lambda: from_amqp(headers, body, headers.get("Content-Type"))):
        try:
            validate(decode())
        except ContractError as e:
            assert e.problems


@pytest.mark.parametrize("kind", list(EventKind), ids=lambda k: k.value)
def test_validate_checked_gives_the_same_verdicts_on_decoded_events(kind: EventKind, sample_event) -> None:
    """``checked=True`` (the broker's ingress, after from_http) skips only the envelope rules
    from_http has just applied: on decoded events the verdicts are the same either way."""
    from knative_lambda.contract.bindings import to_http

    good = from_http(*to_http(sample_event(kind)))
    assert validate(good, checked=True).kind is validate(good).kind is kind
    attrs = {**good.get_attributes(), "type": "network.notifi.lambda.nope"}
    bad = from_http(*to_http(CloudEvent(attrs, good.get_data())))
    verdicts = []
    for checked in (True, False):
        with pytest.raises(ContractError) as caught:
            validate(bad, checked=checked)
        verdicts.append(caught.value.to_dict())
    assert verdicts[0] == verdicts[1]
    assert "unknown event type" in json.dumps(verdicts[0])
