"""Names: formats, DNS-1123 limits, sanitizing, and no collisions after truncation."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from knative_lambda.contract import (
    image_tag,
    image_uri,
    is_dns1123_label,
    job_name,
    sanitize,
    service_name,
)

HASH = "0123456789ab"
TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
DNS1035_RE = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")  # Knative Service names start with a letter


def test_formats_of_the_original_platform() -> None:
    assert job_name("acme", "parser-1", HASH) == "build-acme-parser-1-01234567"
    assert service_name("acme", "parser-1") == "lambda-acme-parser-1"
    assert image_uri("localhost:5000", "acme", "parser-1", HASH) == (
        "localhost:5000/knative-lambdas:acme-parser-1-01234567"
    )
    assert image_uri("registry.example.com/team/", "a", "b", HASH) == (
        "registry.example.com/team/knative-lambdas:a-b-01234567"
    )


@pytest.mark.parametrize(
    "s, ok",
    [
        ("a", True),
        ("abc-123", True),
        ("0abc", True),
        ("a" * 63, True),
        ("a" * 64, False),
        ("", False),
        ("-a", False),
        ("a-", False),
        ("A", False),
        ("a_b", False),
        ("a.b", False),
        ("ä", False),
        ("a b", False),
        (None, False),
        (7, False),
    ],
)
def test_is_dns1123_label(s, ok: bool) -> None:
    assert is_dns1123_label(s) is ok


@pytest.mark.parametrize(
    "raw, clean",
    [("Acme_Corp", "acme-corp"), ("--a--b--", "a-b"), ("a.b/c", "a-b-c"), ("___", ""), ("ÄÖü", "")],
)
def test_sanitize(raw: str, clean: str) -> None:
    assert sanitize(raw) == clean


def test_job_name_limit_is_exact() -> None:
    # build- (6) + tp + '-' + parser + '-' + 8 hex = 63 when tp+parser = 47
    tp, parser = "t" * 23, "p" * 24
    name = job_name(tp, parser, HASH)
    assert len(name) == 63 and name == f"build-{tp}-{parser}-01234567"
    longer = job_name(tp, parser + "p", HASH)
    assert len(longer) <= 63 and is_dns1123_label(longer) and longer.endswith("-01234567")


def test_service_parts_are_cut_at_15_with_a_digest() -> None:
    assert service_name("t" * 15, "p" * 15) == f"lambda-{'t' * 15}-{'p' * 15}"
    cut = service_name("t" * 16, "p" * 15)
    assert cut.startswith(f"lambda-{'t' * 15}-{'p' * 15}-") and len(cut) <= 55


@pytest.mark.parametrize(
    "a, b",
    [
        (("payments", "invoice-parser-eu-west"), ("payments", "invoice-parser-us-east")),
        (("very-long-third-party-one", "p"), ("very-long-third-party-two", "p")),
        (("acme", "x" * 100 + "1"), ("acme", "x" * 100 + "2")),
        (("Acme", "p"), ("acme", "p")),  # sanitizing is lossy too
        (("a_b", "p"), ("a.b", "p")),
    ],
)
def test_ids_that_truncate_or_sanitize_alike_do_not_collide(a, b) -> None:
    assert service_name(*a) != service_name(*b)
    assert job_name(*a, HASH) != job_name(*b, HASH)
    assert image_tag(*a, HASH) != image_tag(*b, HASH)


def test_image_tag_is_cut_to_128() -> None:
    tag = image_tag("t" * 100, "p" * 100, HASH)
    assert len(tag) <= 128 and TAG_RE.match(tag) and tag.endswith("-01234567")


def test_non_hex_content_hash_still_gives_8_hex() -> None:
    assert re.fullmatch(r"build-a-b-[0-9a-f]{8}", job_name("a", "b", "not a hash!"))


_any_text = st.text(max_size=120)
_id_text = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_.AZ", max_size=80)


@settings(max_examples=400, deadline=None)
@given(tp=_any_text | _id_text, parser=_any_text | _id_text, h=st.text(max_size=70))
def test_any_input_gives_valid_names(tp: str, parser: str, h: str) -> None:
    job = job_name(tp, parser, h)
    assert is_dns1123_label(job) and len(job) <= 63 and DNS1035_RE.match(job)
    svc = service_name(tp, parser)
    assert is_dns1123_label(svc) and len(svc) <= 55 and DNS1035_RE.match(svc)
    tag = image_tag(tp, parser, h)
    assert TAG_RE.match(tag), tag
    assert image_uri("localhost:5000", tp, parser, h) == f"localhost:5000/knative-lambdas:{tag}"


_plain_id = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=60)


@settings(max_examples=400, deadline=None)
@given(a=st.tuples(_plain_id, _plain_id), b=st.tuples(_plain_id, _plain_id))
def test_distinct_ids_give_distinct_names(a, b) -> None:
    # ids without '-' cannot be confused by the '-' joins of the format; see names.py
    if a == b:
        return
    assert job_name(*a, HASH) != job_name(*b, HASH)
    assert service_name(*a) != service_name(*b)
    assert image_tag(*a, HASH) != image_tag(*b, HASH)


@settings(max_examples=200, deadline=None)
@given(tp=_any_text, parser=_any_text)
def test_names_are_deterministic(tp: str, parser: str) -> None:
    assert job_name(tp, parser, HASH) == job_name(tp, parser, HASH)
    assert service_name(tp, parser) == service_name(tp, parser)
