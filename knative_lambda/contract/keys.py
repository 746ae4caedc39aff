"""Object-store keys and content hashes of the contract (DESIGN.md §2)."""

from __future__ import annotations

import hashlib
import ipaddress
import re

from knative_lambda.contract.errors import ContractError, Problem

SOURCE_PREFIX = "global/parser/"
CONTEXT_PREFIX = "build-context/"
CONTEXT_NAME = "context.tar.gz"
CONTENT_HASH_LEN = 12

_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]*[a-z0-9]$")
_BAD_BUCKET_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_BAD_BUCKET_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")


def _key_part(parser_id: str) -> str:
    """A parser id safe inside a key: no '/', no '.'/'..', no control characters.

    Without this, ``source_key("../x")`` would address another object.
    """
    bad = (
        not isinstance(parser_id, str)
        or not parser_id.strip()
        or parser_id in (".", "..")
        or "/" in parser_id
        or any(ord(c) < 32 or ord(c) == 127 for c in parser_id)
    )
    if bad:
        raise ContractError(
            [Problem("parser_id", f"cannot be used in an object key: {parser_id!r}")],
            "invalid key",
        )
    return parser_id


def source_key(parser_id: str) -> str:
    """``global/parser/<parser_id>``: the function's code in the source bucket."""
    return f"{SOURCE_PREFIX}{_key_part(parser_id)}"


def context_key(parser_id: str) -> str:
    """``build-context/<parser_id>/context.tar.gz``: the build context in the temp bucket."""
    return f"{CONTEXT_PREFIX}{_key_part(parser_id)}/{CONTEXT_NAME}"


def content_hash(data: bytes | bytearray | memoryview) -> str:
    """The first 12 hex digits of the SHA-256 of the code object."""
    return hashlib.sha256(bytes(data)).hexdigest()[:CONTENT_HASH_LEN]


def bucket_name_problems(name: object) -> list[Problem]:
    """S3 general-purpose bucket naming rules; empty when ``name`` is valid."""
    where = "bucket"
    if not isinstance(name, str):
        return [Problem(where, "must be a string")]
    problems: list[Problem] = []
    if not 3 <= len(name) <= 63:
        problems.append(Problem(where, f"must be 3..63 characters, got {len(name)}"))
    if not _BUCKET_RE.match(name):
        problems.append(
            Problem(
                where,
                "only lowercase letters, digits, '.' and '-', "
                "starting and ending with a letter or digit",
            )
        )
    if ".." in name:
        problems.append(Problem(where, "must not contain '..'"))
    try:
        ipaddress.IPv4Address(name)
        problems.append(Problem(where, "must not look like an IP address"))
    except ValueError:
        pass
    if name.startswith(_BAD_BUCKET_PREFIXES) or name.endswith(_BAD_BUCKET_SUFFIXES):
        problems.append(Problem(where, "uses a prefix or suffix reserved by S3"))
    return problems


def is_valid_bucket_name(name: object) -> bool:
    return not bucket_name_problems(name)


def check_bucket_name(name: str) -> str:
    """``name`` when valid; else ContractError with every rule it breaks."""
    problems = bucket_name_problems(name)
    if problems:
        raise ContractError(problems, f"invalid bucket name {name!r}")
    return name
