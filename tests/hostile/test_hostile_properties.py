"""Property-based tests (hypothesis) over trigger filters, trigger specs, archive extraction
and the event attributes the broker accepts.

The contract's own property tests (tests/unit/contract) already cover "arbitrary
JSON / HTTP never crashes validate/from_http"; these add what they do not:
filter semantics, trigger parsing, the extractor against generated archives,
and what an accepted event must be fit for (AMQP headers). Known bugs are
pinned with an ``@example`` and a strict xfail, so the search stays deterministic.
"""

from __future__ import annotations

import io
import json
import stat
import string
import sys
import tarfile
import warnings
import zipfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from knative_lambda.contract import ContractError, from_http, validate
from knative_lambda.errors import ConfigError
from knative_lambda.platform.broker import filters as flt
from knative_lambda.platform.broker.triggers import TriggerSpecError, backoff_delays, parse_trigger
from knative_lambda.platform.builder import archive
from knative_lambda.platform.builder.errors import ArchiveRejected

FAST = settings(max_examples=150, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
SMALL = archive.Limits(max_entries=50, max_bytes=200_000, max_ratio=50.0, ratio_floor=10_000)

# --- trigger filters ---------------------------------------------------------------------

_attr_names = st.sampled_from(["type", "source", "subject", "id", "correlationid", "thirdpartyid", "x"])
_values = st.text(alphabet="ab.-", max_size=4)
_attrs = st.dictionaries(_attr_names, _values, max_size=6)
_leaf = st.builds(lambda d, m: {d: m}, st.sampled_from(flt.LEAF_DIALECTS),
                  st.dictionaries(_attr_names, _values, min_size=1, max_size=2))
_expr = st.recursive(
    _leaf,
    lambda inner: st.one_of(st.builds(lambda e: {"not": e}, inner),
                            st.builds(lambda es: {"all": es}, st.lists(inner, max_size=3)),
                            st.builds(lambda es: {"any": es}, st.lists(inner, max_size=3))),
    max_leaves=8,
)
_json = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                     max_leaves=10)


@FAST
@given(_expr, _attrs)
def test_valid_filters_validate_clean_and_evaluate_to_a_bool(expr: dict[str, Any], attrs: dict[str, str]) -> None:
    assert flt.validate_filters([expr]) == []
    assert isinstance(flt.matches(attrs, None, [expr]), bool)


@FAST
@given(_expr, _attrs)
def test_filter_algebra(expr: dict[str, Any], attrs: dict[str, str]) -> None:
    got = flt.match_expression(expr, attrs)
    assert flt.match_expression({"not": {"not": expr}}, attrs) == got
    assert flt.match_expression({"all": [expr]}, attrs) == got
    assert flt.match_expression({"any": [expr]}, attrs) == got
    assert flt.match_expression({"all": [expr, {"not": expr}]}, attrs) is False
    assert flt.match_expression({"any": [expr, {"not": expr}]}, attrs) is True


@FAST
@given(_attr_names, _values, _attrs)
def test_exact_prefix_suffix_mean_what_they_say(name: str, value: str, attrs: dict[str, str]) -> None:
    have = attrs.get(name)
    assert flt.match_expression({"exact": {name: value}}, attrs) == (have == value)
    assert flt.match_expression({"prefix": {name: value}}, attrs) == (have is not None and have.startswith(value))
    assert flt.match_expression({"suffix": {name: value}}, attrs) == (have is not None and have.endswith(value))


@FAST
@given(_json)
def test_any_json_as_filters_gives_problems_never_an_exception(value: Any) -> None:
    problems = flt.validate_filters(value)
    assert isinstance(problems, list) and all(isinstance(p, str) and ": " in p for p in problems)
    assert isinstance(flt.validate_attributes(value), list)


# --- trigger specs -------------------------------------------------------------------------

_spec = st.fixed_dictionaries({}, optional={
    "broker": st.sampled_from(["default", "Bad", ""]) | _json,
    "subscriber": st.sampled_from([{"uri": "http://127.0.0.1:9/"}, {"uri": "ftp://x"}, {}]) | _json,
    "filter": st.builds(lambda a: {"attributes": a}, _attrs) | _json,
    "filters": st.lists(_expr, max_size=2) | _json,
    "delivery": st.fixed_dictionaries({}, optional={
        "retry": st.integers(-5, 2_000_000) | _json,
        "backoffPolicy": st.sampled_from(["linear", "exponential", "fib"]),
        "backoffDelay": st.sampled_from(["PT1S", "PT0.2S", "1s", "P1Y", ""]) | _json,
        "timeout": st.sampled_from(["PT5S", "PT0S", "x"]) | _json,
    }) | _json,
})


@FAST
@given(_spec | _json)
def test_any_trigger_object_parses_or_lists_its_problems(spec: Any) -> None:
    obj = {"apiVersion": "eventing.knative.dev/v1", "kind": "Trigger", "spec": spec}
    try:
        parsed = parse_trigger(obj, "default", "t1")
    except ConfigError as exc:
        assert str(exc).startswith("invalid trigger default/t1: ")
        return
    assert parsed.subscriber.startswith(("http://", "https://"))


@FAST
@given(st.integers(0, 2_000_000))
@example(1_000_000)
def test_an_accepted_trigger_has_a_computable_retry_schedule(retry: int) -> None:
    spec = {"broker": "default", "subscriber": {"uri": "http://127.0.0.1:9/"},
            "delivery": {"retry": retry, "backoffDelay": "PT1S"}}
    try:
        parsed = parse_trigger({"spec": spec}, "default", "t1")
    except TriggerSpecError as exc:  # refused up front, naming the field: fine
        assert "spec.delivery.retry" in str(exc)
        return
    assert len(backoff_delays(parsed.delivery)) == retry


# --- archive extraction ----------------------------------------------------------------------

_segment = st.sampled_from(["..", ".", "", "a", "b", "handler.py", "é", "\u202e", "C:", "\\", "x" * 40])
_name = st.lists(_segment, min_size=1, max_size=5).map("/".join) | st.text(max_size=30)
_kind = st.sampled_from([tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE,
                         tarfile.CHRTYPE, tarfile.FIFOTYPE])


def _inside(dest: Path) -> None:
    root = dest.resolve()
    for path in dest.rglob("*"):
        assert not path.is_symlink(), path
        assert path.resolve().is_relative_to(root), path


@FAST
@given(_name)
def test_safe_name_is_relative_and_stays_inside(name: str) -> None:
    try:
        rel = archive.safe_name(name)
    except ArchiveRejected as exc:
        assert str(exc)
        return
    parts = rel.split("/") if rel else []
    assert ".." not in parts and not rel.startswith("/") and "\\" not in rel
    assert (Path("/dest") / rel).resolve().is_relative_to(Path("/dest")) or "\x00" in rel


@FAST
@given(st.binary(max_size=600))
@example(b"\x1f\x8b\x08\x00garbage")
@example(b"PK\x03\x04" + b"\x00" * 60)
@example(b"PK\x05\x06" + b"\x00" * 18)
def test_arbitrary_bytes_are_extracted_or_rejected(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    dest = tmp_path_factory.mktemp("x")
    try:
        archive.extract(data, dest, SMALL)
    except ArchiveRejected as exc:
        assert str(exc) and "\n" not in str(exc)
    _inside(dest)


_tar_entries = st.lists(st.tuples(_name, _kind, st.binary(max_size=40), _name), max_size=8)


def _tar(entries: list[tuple[str, bytes, bytes, str]], gz: bool) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz" if gz else "w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, data, link in entries:
            info = tarfile.TarInfo(name)
            info.type, info.linkname = kind, link
            info.size = len(data) if kind == tarfile.REGTYPE else 0
            tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
    return buffer.getvalue()


@FAST
@given(_tar_entries, st.booleans())
def test_generated_tars_extract_inside_or_are_rejected(tmp_path_factory: pytest.TempPathFactory,
                                                        entries: list[Any], gz: bool) -> None:
    dest = tmp_path_factory.mktemp("t")
    try:
        written = archive.extract(_tar(entries, gz), dest, SMALL)
    except ArchiveRejected as exc:
        assert str(exc)
    else:
        assert all((dest / w).is_file() for w in written)
        assert not any(k in (tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.CHRTYPE, tarfile.FIFOTYPE)
                       for _, k, _, _ in entries)
    _inside(dest)


_zip_modes = st.sampled_from([stat.S_IFREG | 0o644, stat.S_IFDIR | 0o755, stat.S_IFLNK | 0o777,
                              stat.S_IFIFO | 0o644, 0])
_zip_entries = st.lists(st.tuples(_name, _zip_modes, st.binary(max_size=40)), max_size=8)


def _zip(entries: list[tuple[str, int, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, mode, data in entries:
            info = zipfile.ZipInfo(name or "x")
            info.external_attr = mode << 16
            zf.writestr(info, data)
    return buffer.getvalue()


@FAST
@given(_zip_entries)
@example([("d", stat.S_IFREG | 0o644, b"x"), ("d/x.py", stat.S_IFREG | 0o644, b"y")])
def test_generated_zips_extract_inside_or_are_rejected(tmp_path_factory: pytest.TempPathFactory,
                                                       entries: list[Any]) -> None:
    dest = tmp_path_factory.mktemp("z")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate names are part of the search
        data = _zip(entries)
    try:
        archive.extract(data, dest, SMALL)
    except ArchiveRejected as exc:
        assert str(exc)
    _inside(dest)


# --- what an accepted event must be fit for ----------------------------------------------------

_PREFIX = "network.notifi.lambda"
_text = st.text(alphabet=st.characters(codec="utf-8") | st.sampled_from("\x00\n\x1b\ud800"), min_size=1,
                max_size=12)


def _doc(id_: str, extra: str) -> dict[str, Any]:
    return {"specversion": "1.0", "id": id_, "source": "network.notifi.acme",
            "type": f"{_PREFIX}.parser.start", "subject": "parser-1", "note": extra, "data": {"x": 1}}


@FAST
@given(_text, _text)
@example("a\x00b", "ok")
def test_accepted_attributes_are_printable_utf8(id_: str, extra: str) -> None:
    try:
        validate(_doc(id_, extra), _PREFIX)
    except ContractError:
        return
    for value in (id_, extra):
        value.encode("utf-8")  # no lone surrogates: AMQP headers and HTTP need UTF-8
        assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in value), repr(value)


def _digits(number: int) -> bytes:
    saved = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)
    try:
        return str(number).encode()
    finally:
        sys.set_int_max_str_digits(saved)


@FAST
@given(st.integers())
@example(10**5000)
def test_any_json_number_in_a_body_is_decoded_or_rejected(number: int) -> None:
    # str(number), not json.dumps: the test must not trip over the same digit limit itself
    head = json.dumps(_doc("id-1", "n") | {"data": {"n": 0}}).encode()
    body = head.replace(b'"data": {"n": 0}', b'"data": {"n": ' + _digits(number) + b"}")
    try:
        validate(from_http({"content-type": "application/cloudevents+json"}, body), _PREFIX)
    except ContractError:
        pass


_header_text = st.text(alphabet=string.printable + "é%", max_size=20)


@FAST
@given(st.dictionaries(st.sampled_from(["ce-id", "ce-source", "ce-type", "ce-subject", "ce-time",
                                        "ce-correlationid", "ce-specversion", "content-type"]),
                       _header_text, max_size=8),
       st.binary(max_size=60))
def test_binary_mode_headers_decode_or_name_the_problem(headers: dict[str, str], body: bytes) -> None:
    try:
        validate(from_http(headers, body), _PREFIX)
    except ContractError as exc:
        assert exc.problems and "\n" not in str(exc)
