"""Inputs the hostile-input suite found getting through: each is now a ContractError naming the place.

Huge integers and NaN/Infinity in JSON bodies, control characters, surrogates and
noncharacters in attributes, percent-encoded bytes that are not UTF-8, ce-
headers sent twice, and attributes larger than AMQP 0-9-1 can carry.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from multidict import CIMultiDict

from knative_lambda.contract import ContractError, from_amqp, from_http, validate
from knative_lambda.contract.validation import (
    MAX_ATTRIBUTE_BYTES,
    MAX_ATTRIBUTE_NAME,
    MAX_ATTRIBUTES_BYTES,
    MAX_SHORT_ATTRIBUTE_BYTES,
    attribute_problems,
)

P = "network.notifi.lambda"
STRUCTURED = {"content-type": "application/cloudevents+json"}
BINARY = [
    ("ce-specversion", "1.0"),
    ("ce-id", "id-1"),
    ("ce-source", "network.notifi.acme"),
    ("ce-type", f"{P}.build.start"),
    ("ce-subject", "parser-1"),
    ("Content-Type", "application/json"),
]
BUILD_DATA = b'{"third_party_id": "acme", "parser_id": "parser-1"}'


def doc(**changes: Any) -> dict[str, Any]:
    d: dict[str, Any] = {
        "specversion": "1.0", "id": "id-1", "source": "network.notifi.acme",
        "type": f"{P}.parser.start", "subject": "parser-1", "data": {"x": 1},
    }
    return d | changes


def rejected(fn: Any, *args: Any) -> str:
    with pytest.raises(ContractError) as info:
        validate(fn(*args), P)
    message = str(info.value)
    assert "\n" not in message
    return message


def binary(**replace: str) -> CIMultiDict[str]:
    return CIMultiDict([(k, replace.get(k, v)) for k, v in BINARY])


# --- JSON bodies ------------------------------------------------------------------------

DIGITS = "9" * 5000


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('{"n": ' + DIGITS + "}", "body: invalid JSON: a number has too many digits"),
        ('{"n": -' + DIGITS + "}", "body: invalid JSON: a number has too many digits"),
        ('{"n": NaN}', "body: invalid JSON: NaN is not a JSON number"),
        ('{"n": Infinity}', "body: invalid JSON: Infinity is not a JSON number"),
        ('{"n": -Infinity}', "body: invalid JSON: -Infinity is not a JSON number"),
    ],
)
def test_binary_body_numbers_json_does_not_have_are_rejected(body: str, expected: str) -> None:
    assert expected in rejected(from_http, binary(), body.encode())
    assert expected in rejected(from_amqp, dict(BINARY[:-1]), body.encode(), "application/json")


@pytest.mark.parametrize("number", [DIGITS, "NaN", "Infinity", "-Infinity", "1e5000"])
def test_structured_body_numbers(number: str) -> None:
    body = json.dumps(doc(data={"n": 0})).replace('"n": 0', f'"n": {number}').encode()
    if number == "1e5000":  # a float overflow is valid JSON (inf in Python): the data check says no
        assert "data" in rejected(from_http, STRUCTURED, body)
    else:
        assert "body: invalid JSON" in rejected(from_http, STRUCTURED, body)


def test_large_but_allowed_integers_still_decode() -> None:
    body = json.dumps(doc(data={"n": 10**4000})).encode()
    validate(from_http(STRUCTURED, body), P)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_nan_in_an_object_given_to_validate_is_a_data_problem(value: float) -> None:
    with pytest.raises(ContractError, match="data: is not JSON-serializable"):
        validate(doc(data={"x": value}), P)


# --- characters -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "what"),
    [
        ("a\nb", "a control character (U+000A at index 1)"),
        ("a\x00b", "a control character (U+0000"),
        ("\r", "a control character (U+000D"),
        ("a\x1b[31m", "a control character (U+001B"),
        ("a\x7f", "a control character (U+007F"),
        ("a\x85", "a control character (U+0085"),
        ("a\x9f", "a control character (U+009F"),
        ("\ud800", "a surrogate (U+D800"),
        ("x\udfff", "a surrogate (U+DFFF"),
        ("\ufdd0", "a Unicode noncharacter (U+FDD0"),
        ("\ufffe", "a Unicode noncharacter (U+FFFE"),
        ("\U0010ffff", "a Unicode noncharacter (U+10FFFF"),
        ("\U0001fffe", "a Unicode noncharacter (U+1FFFE"),
    ],
)
@pytest.mark.parametrize("attr", ["id", "source", "subject", "note"])
def test_forbidden_characters_are_named_with_the_attribute(value: str, what: str, attr: str) -> None:
    message = rejected(lambda: doc(**{attr: value}))
    assert f"attribute {attr}: contains {what}" in message


@pytest.mark.parametrize("value", ["plain", "é-ü", "日本語", "emoji \U0001f600", "a b", "\xa0nbsp"])
def test_printable_unicode_is_allowed(value: str) -> None:
    assert attribute_problems({"specversion": "1.0", "id": value, "source": "s", "type": "t", "note": value}) == []


def test_a_surrogate_in_a_structured_body_is_rejected_not_published() -> None:
    body = json.dumps(doc(id="\ud800")).encode()  # json.dumps writes the escape \\ud800
    assert "attribute id: contains a surrogate" in rejected(from_http, STRUCTURED, body)


def test_an_extension_name_with_a_trailing_newline_is_not_a_name() -> None:
    assert attribute_problems({"specversion": "1.0", "id": "1", "source": "s", "type": "t", "ab\n": "v"})


# --- percent-encoding in binary mode ----------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("a%FF%FEb", "attribute id: percent-encoded bytes are not UTF-8"),
        ("a%ED%A0%80b", "attribute id: percent-encoded bytes are not UTF-8"),  # an encoded surrogate
        ("a%C3", "attribute id: percent-encoded bytes are not UTF-8"),  # cut in the middle
        ("a%00b", "attribute id: contains a control character"),
        ("a%0D%0Ax-evil:%201", "attribute id: contains a control character"),
    ],
)
def test_percent_encoded_ids_decode_strictly(raw: str, expected: str) -> None:
    assert expected in rejected(from_http, binary(**{"ce-id": raw}), BUILD_DATA)


@pytest.mark.parametrize(("raw", "decoded"), [("a%20b", "a b"), ("caf%C3%A9", "café"), ("100%25", "100%")])
def test_valid_percent_encoding_still_decodes(raw: str, decoded: str) -> None:
    event = from_http(binary(**{"ce-id": raw}), BUILD_DATA)
    assert event.get_id() == decoded


def test_raw_bytes_that_are_not_utf8_in_amqp_headers_are_rejected() -> None:
    headers = {k: v for k, v in BINARY[:-1]} | {"ce-id": b"a\xff\xfeb"}
    assert "attribute id: contains a surrogate" in rejected(from_amqp, headers, BUILD_DATA, "application/json")


# --- duplicate headers ------------------------------------------------------------------


@pytest.mark.parametrize("name", ["ce-id", "ce-type", "CE-Source", "ce-correlationid"])
def test_a_ce_header_sent_twice_is_rejected(name: str) -> None:
    headers = binary()
    if name == "ce-correlationid":
        headers.add(name, "7f0c6f8e-2a5b-4c3d-9e1f-0a1b2c3d4e5f")
    headers.add(name, "other-value")
    assert f"header {name.lower()}: duplicate" in rejected(from_http, headers, BUILD_DATA)


def test_the_same_value_twice_is_still_a_duplicate() -> None:
    headers = binary()
    headers.add("ce-id", "id-1")
    assert "duplicate" in rejected(from_http, headers, BUILD_DATA)


def test_duplicates_are_rejected_in_structured_mode_too() -> None:
    headers = CIMultiDict(STRUCTURED)
    headers.add("ce-id", "a")
    headers.add("ce-id", "b")
    assert "duplicate" in rejected(from_http, headers, json.dumps(doc()).encode())


def test_case_variants_of_one_amqp_header_are_duplicates() -> None:
    headers = {k: v for k, v in BINARY[:-1]} | {"CE-ID": "id-2"}
    assert "header ce-id: duplicate" in rejected(from_amqp, headers, BUILD_DATA, "application/json")


def test_repeated_non_ce_headers_are_fine() -> None:
    headers = binary()
    headers.add("Accept", "a")
    headers.add("Accept", "b")
    validate(from_http(headers, BUILD_DATA), P)


# --- sizes AMQP can carry ---------------------------------------------------------------


def test_short_attributes_are_bounded_in_utf8_bytes() -> None:
    validate(doc(id="i" * MAX_SHORT_ATTRIBUTE_BYTES), P)
    assert "attribute id: too long: 256 bytes, limit 255" in rejected(lambda: doc(id="i" * 256))
    assert "attribute id: too long: 256 bytes" in rejected(lambda: doc(id="é" * 128))  # 2 bytes each
    assert "attribute type: too long" in rejected(lambda: doc(type=f"{P}." + "t" * 300))
    assert "attribute source: too long" in rejected(lambda: doc(source="s" * 300))


def test_other_attributes_are_bounded() -> None:
    validate(doc(note="v" * MAX_ATTRIBUTE_BYTES), P)
    message = rejected(lambda: doc(note="v" * (MAX_ATTRIBUTE_BYTES + 1)))
    assert f"attribute note: too long: {MAX_ATTRIBUTE_BYTES + 1} bytes, limit {MAX_ATTRIBUTE_BYTES}" in message
    assert "attribute note: too long" in rejected(lambda: doc(note="v" * 200_000))


def test_all_attributes_together_are_bounded() -> None:
    many = {f"ext{i}": "v" * 4000 for i in range(MAX_ATTRIBUTES_BYTES // 4000 + 1)}
    message = rejected(lambda: doc(**many))
    assert "attributes: too large together" in message and "limit 65536" in message
    validate(doc(**{f"ext{i}": "v" * 4000 for i in range(10)}), P)


def test_extension_names_are_bounded() -> None:
    validate(doc(**{"n" * MAX_ATTRIBUTE_NAME: "v"}), P)
    assert "name too long" in rejected(lambda: doc(**{"n" * (MAX_ATTRIBUTE_NAME + 1): "v"}))


@pytest.mark.parametrize(("value", "ok"), [(2**31 - 1, True), (-(2**31), True), (2**31, False), (-(2**31) - 1, False),
                                           (10**30, False), (True, True)])
def test_integer_extensions_fit_in_32_bits(value: int, ok: bool) -> None:
    if ok:
        validate(doc(count=value), P)
    else:
        assert "attribute count: integers must fit in 32 bits" in rejected(lambda: doc(count=value))


def test_a_huge_attribute_name_is_clipped_in_the_message() -> None:
    message = rejected(lambda: doc(**{"X" * 10_000: "v"}))
    assert len(message) < 1000
