"""Object keys, content hashes and bucket names."""

from __future__ import annotations

import hashlib

import pytest

from knative_lambda.contract import (
    ContractError,
    bucket_name_problems,
    check_bucket_name,
    content_hash,
    context_key,
    is_valid_bucket_name,
    source_key,
)


def test_keys() -> None:
    assert source_key("parser-1") == "global/parser/parser-1"
    assert context_key("parser-1") == "build-context/parser-1/context.tar.gz"


@pytest.mark.parametrize("bad", ["", " ", ".", "..", "a/b", "../x", "a\nb", "a\x00"])
def test_ids_that_would_escape_their_key_are_refused(bad: str) -> None:
    for fn in (source_key, context_key):
        with pytest.raises(ContractError, match="parser_id: cannot be used in an object key"):
            fn(bad)


@pytest.mark.parametrize("data", [b"", b"def handle(event):\n    return event\n", bytes(range(256)) * 100])
def test_content_hash_is_first_12_hex_of_sha256(data: bytes) -> None:
    h = content_hash(data)
    assert h == hashlib.sha256(data).hexdigest()[:12] and len(h) == 12
    assert content_hash(bytearray(data)) == h == content_hash(memoryview(data))


def test_content_hash_known_vector() -> None:
    assert content_hash(b"") == "e3b0c44298fc"


@pytest.mark.parametrize("name", ["kl-source", "kl-temp", "abc", "a.b.c", "a" * 63, "bucket-1.example"])
def test_valid_bucket_names(name: str) -> None:
    assert is_valid_bucket_name(name) and check_bucket_name(name) == name


@pytest.mark.parametrize(
    "name, reason",
    [
        ("ab", "3..63 characters"),
        ("a" * 64, "3..63 characters"),
        ("Kl-Source", "only lowercase letters"),
        ("kl_source", "only lowercase letters"),
        ("-kl", "starting and ending"),
        ("kl-", "starting and ending"),
        ("a..b", "must not contain '..'"),
        ("192.168.1.1", "IP address"),
        ("xn--bucket", "reserved by S3"),
        ("bucket-s3alias", "reserved by S3"),
        (5, "must be a string"),
    ],
)
def test_invalid_bucket_names(name, reason: str) -> None:
    assert not is_valid_bucket_name(name)
    assert any(reason in p.reason for p in bucket_name_problems(name))
    if isinstance(name, str):
        with pytest.raises(ContractError, match=reason.replace(".", r"\.")):
            check_bucket_name(name)
