"""Event kinds, types and the data models' to_dict/from_dict."""

from __future__ import annotations

import pytest

from knative_lambda.contract import (
    MODEL_OF,
    BuildRequest,
    BuildResult,
    ContractError,
    EventKind,
    FunctionResult,
    Problem,
    ServiceDelete,
    event_type,
    kind_of,
    known_types,
)
from knative_lambda.errors import KLError

CID = "7f0c6f8e-2a5b-4c3d-9e1f-0a1b2c3d4e5f"


def test_kind_values_are_the_contract_suffixes() -> None:
    assert [k.value for k in EventKind] == [
        "build.start",
        "job.start",
        "rebuild.start",
        "build.complete",
        "build.failed",
        "build.timeout",
        "service.delete",
        "parser.start",
        "result",
        "processed",
        "error",
    ]


@pytest.mark.parametrize("kind", list(EventKind), ids=lambda k: k.value)
@pytest.mark.parametrize("prefix", ["network.notifi.lambda", "com.example", "a.b.c.d"])
def test_event_type_and_kind_of_are_inverse(kind: EventKind, prefix: str) -> None:
    t = event_type(kind, prefix)
    assert t == f"{prefix}.{kind.value}"
    assert kind_of(t, prefix) is kind


@pytest.mark.parametrize(
    "type_, prefix",
    [
        ("network.notifi.lambda.build.begin", "network.notifi.lambda"),
        ("network.notifi.lambdax.build.start", "network.notifi.lambda"),
        ("network.notifi.lambda", "network.notifi.lambda"),
        ("build.start", "network.notifi.lambda"),
        ("network.notifi.lambda.build.start", "com.example"),
        ("", "network.notifi.lambda"),
        (None, "network.notifi.lambda"),
    ],
)
def test_kind_of_foreign_types_is_none(type_, prefix: str) -> None:
    assert kind_of(type_, prefix) is None


def test_default_prefix_and_known_types() -> None:
    assert event_type(EventKind.BUILD_START) == "network.notifi.lambda.build.start"
    assert kind_of("network.notifi.lambda.result") is EventKind.RESULT
    assert len(known_types("p")) == len(EventKind) and known_types("p")[0] == "p.build.start"


def test_every_kind_has_a_model_but_parser_start() -> None:
    assert set(MODEL_OF) == set(EventKind) - {EventKind.PARSER_START}


MODELS = [
    BuildRequest("acme", "parser-1"),
    BuildRequest("acme", "parser-1", "0123456789ab", "ctx", {"k": [1, 2]}, 10),
    BuildResult("acme", "p", "0123456789ab", "build-acme-p-01234567", "r/i:t", "succeeded", "", 0, 1.5, CID, True),
    BuildResult("acme", "p", "0123456789ab", "build-acme-p-01234567", "", "timeout", "took too long", None, 1800, ""),
    ServiceDelete("acme", "parser-1"),
    ServiceDelete("acme", "parser-1", "lambda-acme-parser-1", "idle", CID),
    FunctionResult.ok([{"a": 1}], "ctx-1"),
    FunctionResult.ok([]),
    FunctionResult.failed("boom", "ctx-1"),
    FunctionResult.failed(""),
]


@pytest.mark.parametrize("model", MODELS, ids=lambda m: type(m).__name__)
def test_models_round_trip_through_dicts(model) -> None:
    assert type(model).from_dict(model.to_dict()) == model


def test_optional_fields_are_omitted_from_the_wire() -> None:
    assert BuildRequest("acme", "p").to_dict() == {"third_party_id": "acme", "parser_id": "p"}
    assert ServiceDelete("acme", "p").to_dict() == {"third_party_id": "acme", "parser_id": "p"}


def test_function_result_wire_shapes() -> None:
    assert FunctionResult.ok([1], "c").to_dict() == {"succeeded": True, "contextId": "c", "eventEntries": [1]}
    assert FunctionResult.failed("x").to_dict() == {"succeeded": False, "errorMessage": "x"}


def test_build_result_cached_defaults_to_false() -> None:
    d = MODELS[2].to_dict()
    del d["cached"]
    assert BuildResult.from_dict(d).cached is False


def test_unknown_data_fields_are_ignored_for_forward_compatibility() -> None:
    assert BuildRequest.from_dict({"third_party_id": "a", "parser_id": "b", "new": 1}) == BuildRequest("a", "b")


@pytest.mark.parametrize(
    "model, data, expected",
    [
        (BuildRequest, None, ["data: must be a JSON object, got nothing"]),
        (BuildRequest, "x", ["data: must be a JSON object, got str"]),
        (BuildRequest, {}, ["data.third_party_id: required", "data.parser_id: required"]),
        (BuildRequest, {"third_party_id": "a", "parser_id": "b", "priority": 0}, ["data.priority: must be an integer 1..10"]),
        (BuildResult, {"third_party_id": "a"}, ["data.parser_id: required", "data.duration: required"]),
        (ServiceDelete, {"third_party_id": "A", "parser_id": "b"}, ["data.third_party_id: must be a DNS-friendly id"]),
        (FunctionResult, {}, ["data.succeeded: required"]),
        (FunctionResult, {"succeeded": True}, ["data.eventEntries: required"]),
        (FunctionResult, {"succeeded": False}, ["data.errorMessage: required"]),
        (FunctionResult, {"succeeded": 1, "contextId": 2}, ["data.succeeded: must be a boolean", "data.contextId: must be a string"]),
    ],
)
def test_from_dict_lists_every_problem(model, data, expected: list[str]) -> None:
    with pytest.raises(ContractError) as info:
        model.from_dict(data)
    message = str(info.value)
    assert message.startswith("invalid data: ")
    for text in expected:
        assert text in message
    assert len(info.value.problems) == len(model.problems(data))


def test_contract_error_is_a_kl_error_with_one_line_message() -> None:
    err = ContractError([Problem("data.priority", "must be an integer 1..10"), Problem("attribute source", "required")])
    assert isinstance(err, KLError)
    assert str(err) == "invalid event: data.priority: must be an integer 1..10; attribute source: required"
    assert err.to_dict() == {
        "error": str(err),
        "problems": [
            {"where": "data.priority", "reason": "must be an integer 1..10"},
            {"where": "attribute source", "reason": "required"},
        ],
    }
