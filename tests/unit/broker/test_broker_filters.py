"""Trigger filter evaluation: the whole matrix of Knative's filter forms, table-driven."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from knative_lambda.errors import ConfigError
from knative_lambda.platform.broker.filters import (
    match_attributes,
    match_expression,
    matches,
    required_type,
    string_attributes,
    validate_attributes,
    validate_filters,
)

EVENT = {
    "specversion": "1.0",
    "id": "42",
    "source": "network.notifi.acme",
    "type": "network.notifi.lambda.parser.start",
    "subject": "parser-1",
    "correlationid": "c0ffee",
}
NO_SUBJECT = {k: v for k, v in EVENT.items() if k != "subject"}

ATTRIBUTES_CASES = [
    # (filter.attributes, event, expected)
    ({}, EVENT, True),
    ({"type": "network.notifi.lambda.parser.start"}, EVENT, True),
    ({"type": "network.notifi.lambda.build.start"}, EVENT, False),
    ({"type": "network.notifi.lambda.parser.start", "source": "network.notifi.acme"}, EVENT, True),
    ({"type": "network.notifi.lambda.parser.start", "source": "network.notifi.other"}, EVENT, False),
    ({"type": ""}, EVENT, True),  # "" = any value
    ({"subject": ""}, NO_SUBJECT, True),  # absent core attribute reads as ""
    ({"subject": "parser-1"}, NO_SUBJECT, False),
    ({"correlationid": ""}, EVENT, True),
    ({"correlationid": "c0ffee"}, EVENT, True),
    ({"correlationid": "other"}, EVENT, False),
    ({"thirdpartyid": ""}, EVENT, False),  # absent extension never matches
    ({"thirdpartyid": "acme"}, EVENT, False),
    ({"type": "NETWORK.notifi.lambda.parser.start"}, EVENT, False),  # case-sensitive
    ({"subject": "parser"}, EVENT, False),  # exact, not prefix
]


@pytest.mark.parametrize(("expected_attrs", "event", "want"), ATTRIBUTES_CASES)
def test_filter_attributes(expected_attrs, event, want):
    assert match_attributes(expected_attrs, event) is want
    assert matches(event, attributes=expected_attrs) is want


EXPRESSION_CASES = [
    # exact
    ({"exact": {"type": "network.notifi.lambda.parser.start"}}, True),
    ({"exact": {"type": "network.notifi.lambda.parser"}}, False),
    ({"exact": {"subject": "parser-1", "source": "network.notifi.acme"}}, True),
    ({"exact": {"subject": "parser-1", "source": "network.notifi.x"}}, False),
    ({"exact": {"missing": ""}}, False),
    ({"exact": {"correlationid": "c0ffee"}}, True),
    # prefix
    ({"prefix": {"type": "network.notifi.lambda."}}, True),
    ({"prefix": {"type": "network.notifi.lambda.build"}}, False),
    ({"prefix": {"type": ""}}, True),
    ({"prefix": {"missing": ""}}, False),
    ({"prefix": {"source": "network.notifi.", "subject": "parser-"}}, True),
    ({"prefix": {"source": "network.notifi.", "subject": "x"}}, False),
    # suffix
    ({"suffix": {"type": ".parser.start"}}, True),
    ({"suffix": {"type": ".build.start"}}, False),
    ({"suffix": {"subject": "-1"}}, True),
    ({"suffix": {"missing": "x"}}, False),
    ({"suffix": {"type": ""}}, True),
    # all
    ({"all": []}, True),
    ({"all": [{"exact": {"subject": "parser-1"}}]}, True),
    ({"all": [{"exact": {"subject": "parser-1"}}, {"prefix": {"type": "network."}}]}, True),
    ({"all": [{"exact": {"subject": "parser-1"}}, {"prefix": {"type": "com."}}]}, False),
    # any
    ({"any": []}, True),  # Knative: an empty list is no filter
    ({"any": [{"exact": {"subject": "nope"}}, {"suffix": {"type": "start"}}]}, True),
    ({"any": [{"exact": {"subject": "nope"}}, {"suffix": {"type": "stop"}}]}, False),
    # not
    ({"not": {"exact": {"subject": "parser-1"}}}, False),
    ({"not": {"exact": {"subject": "nope"}}}, True),
    ({"not": {"exact": {"missing": "x"}}}, True),
    ({"not": {"not": {"prefix": {"type": "network."}}}}, True),
    ({"not": {"any": [{"exact": {"subject": "a"}}, {"exact": {"subject": "parser-1"}}]}}, False),
    ({"not": {"all": []}}, False),
    # nesting
    ({"all": [{"any": [{"exact": {"subject": "a"}}, {"suffix": {"subject": "-1"}}]},
              {"not": {"prefix": {"source": "network.notifi.evil"}}}]}, True),
    ({"any": [{"all": [{"exact": {"subject": "parser-1"}}, {"exact": {"id": "41"}}]},
              {"not": {"exact": {"id": "42"}}}]}, False),
]


@pytest.mark.parametrize(("expr", "want"), EXPRESSION_CASES)
def test_filters_dialects(expr, want):
    assert validate_filters([expr]) == []
    assert match_expression(expr, EVENT) is want
    assert matches(EVENT, filters=[expr]) is want


def test_filters_list_is_anded():
    a, b = {"exact": {"subject": "parser-1"}}, {"exact": {"id": "41"}}
    assert matches(EVENT, filters=[a]) is True
    assert matches(EVENT, filters=[a, b]) is False


@pytest.mark.parametrize(
    ("attributes", "filters", "want"),
    [
        ({"type": "other"}, [{"exact": {"subject": "parser-1"}}], True),  # filters win
        ({"type": "other"}, [], False),  # empty filters: attributes apply
        ({"type": "other"}, None, False),
        (None, None, True),  # no filter at all: everything
        ({}, [], True),
    ],
)
def test_filters_take_precedence_over_attributes(attributes, filters, want):
    assert matches(EVENT, attributes, filters) is want


@pytest.mark.parametrize(
    ("filters", "problem"),
    [
        ("x", "must be a list"),
        ([{}], "exactly one of"),
        ([{"exact": {"a": "b"}, "prefix": {"a": "b"}}], "exactly one of"),
        ([{"exact": {}}], "non-empty map"),
        ([{"exact": "type"}], "non-empty map"),
        ([{"prefix": {"type": 1}}], "must be a string"),
        ([{"all": {"exact": {"a": "b"}}}], "must be a list"),
        ([{"any": [{"bogus": {}}]}], "unknown dialect"),
        ([{"not": [{"exact": {"a": "b"}}]}], "exactly one of"),
        ([{"cesql": "type = 'x'"}], "CESQL is not supported"),
        ([{"all": [{"exact": {"a": "b"}}, {"any": [{"suffix": {"a": 3}}]}]}], "spec.filters[0].all[1].any[0].suffix.a"),
    ],
)
def test_invalid_filters_are_reported(filters, problem):
    problems = validate_filters(filters)
    assert problems and any(problem in p for p in problems), problems


def test_unknown_dialect_at_evaluation_is_a_config_error():
    with pytest.raises(ConfigError):
        match_expression({"bogus": {}}, EVENT)


def test_validate_attributes():
    assert validate_attributes(None) == []
    assert validate_attributes({"type": "x", "subject": ""}) == []
    assert validate_attributes(["type"]) != []
    assert validate_attributes({"type": 3}) == ["spec.filter.attributes.type: value must be a string"]


@pytest.mark.parametrize(
    ("attributes", "filters", "want"),
    [
        ({"type": "a.b"}, None, "a.b"),
        ({"type": ""}, None, None),
        ({"source": "s"}, None, None),
        ({"type": "a.b"}, [{"exact": {"type": "c.d"}}], "c.d"),  # filters win
        (None, [{"prefix": {"type": "c."}}], None),
        (None, [{"not": {"exact": {"type": "c.d"}}}], None),  # negated: not required
        (None, [{"any": [{"exact": {"type": "c.d"}}]}], None),
        (None, None, None),
    ],
)
def test_required_type(attributes, filters, want):
    assert required_type(attributes, filters) == want


def test_string_attributes():
    t = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    got = string_attributes({"time": t, "id": "1", "n": 3, "b": True, "none": None})
    assert got == {"time": "2026-01-02T03:04:05Z", "id": "1", "n": "3", "b": "true"}
