"""new_event and correlation ids."""

from __future__ import annotations

import uuid

import pytest
from cloudevents.core.v1.event import CloudEvent

from knative_lambda.contract import (
    BuildRequest,
    ContractError,
    EventKind,
    correlation_id_of,
    ensure_correlation_id,
    is_uuid4,
    new_event,
    validate,
)


def _request(**kw) -> CloudEvent:
    return new_event(
        EventKind.BUILD_START,
        BuildRequest("acme", "parser-1"),
        source="network.notifi.acme",
        subject="parser-1",
        **kw,
    )


def test_new_event_sets_envelope() -> None:
    e = _request()
    assert e.get_type() == "network.notifi.lambda.build.start"
    assert e.get_specversion() == "1.0"
    assert e.get_datacontenttype() == "application/json"
    assert uuid.UUID(e.get_id()).version == 4
    assert e.get_time() is not None and e.get_time().tzinfo is not None
    assert e.get_data() == {"third_party_id": "acme", "parser_id": "parser-1"}
    assert is_uuid4(e.get_extension("correlationid"))
    assert validate(e).kind is EventKind.BUILD_START


def test_each_event_gets_its_own_id_and_correlation_id() -> None:
    a, b = _request(), _request()
    assert a.get_id() != b.get_id()
    assert correlation_id_of(a) != correlation_id_of(b)


def test_given_correlation_id_is_kept() -> None:
    cid = str(uuid.uuid4())
    assert correlation_id_of(_request(correlation_id=cid)) == cid
    assert correlation_id_of(_request(extensions={"correlationid": cid})) == cid


def test_prefix_and_extensions() -> None:
    e = _request(prefix="com.example", extensions={"jobname": "build-x", "skip": None})
    assert e.get_type() == "com.example.build.start"
    assert e.get_extension("jobname") == "build-x"
    assert "skip" not in e.get_attributes()


def test_plain_dict_data_is_accepted() -> None:
    e = new_event(EventKind.PARSER_START, {"x": 1}, source="network.notifi.acme", subject="p")
    assert e.get_data() == {"x": 1}


@pytest.mark.parametrize("bad", ["abc", "6ba7b810-9dad-11d1-80b4-00c04fd430c8"])
def test_bad_correlation_id_is_refused(bad: str) -> None:
    with pytest.raises(ContractError, match="attribute correlationid: must be a UUID v4"):
        _request(correlation_id=bad)


def test_bad_extension_name_is_a_contract_error_not_a_library_error() -> None:
    with pytest.raises(ContractError, match="attribute Bad_Name: extension names are lowercase"):
        _request(extensions={"Bad_Name": "x"})


def test_empty_source_is_a_contract_error() -> None:
    with pytest.raises(ContractError, match="attribute source: must not be empty"):
        new_event(EventKind.RESULT, {}, source="", subject="p")


def test_ensure_correlation_id_adds_one_only_when_absent() -> None:
    bare = CloudEvent({"type": "t", "source": "s"}, {"a": 1})
    ensured = ensure_correlation_id(bare)
    assert is_uuid4(correlation_id_of(ensured))
    assert ensured.get_id() == bare.get_id() and ensured.get_data() == {"a": 1}
    assert bare.get_extension("correlationid") is None  # the input is not mutated
    has = _request()
    assert ensure_correlation_id(has) is has
