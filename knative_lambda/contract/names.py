"""Kubernetes/registry names derived from (third party, parser, content hash).

Formats follow the original platform (DESIGN.md §2):

    job      build-<tp>-<parser>-<hash8>              at most 63 (a DNS-1123 label)
    service  lambda-<tp[:15]>-<parser[:15]>           at most 55 (Knative adds suffixes)
    image    <registry>/knative-lambdas:<tp>-<parser>-<hash8>   tag at most 128

Any input gives a valid name: parts are sanitized (lowercase, other characters
become '-', runs of '-' collapse, '-' trimmed). Whenever a part loses
information (sanitized or truncated), a short hash of the *original* input is
appended, so two different ids never map to the same name: with plain
truncation "payments-parser-eu" and "payments-parser-us" would both become
"payments-parser" and the second deploy would overwrite the first.
"""

from __future__ import annotations

import hashlib
import re

DNS1123_MAX = 63
JOB_NAME_MAX = 63
SERVICE_NAME_MAX = 55
SERVICE_PART_MAX = 15
IMAGE_REPOSITORY = "knative-lambdas"
IMAGE_TAG_MAX = 128
HASH8_LEN = 8
_DIGEST_LEN = 8  # hex chars of the disambiguating digest: 32 bits

_DNS1123_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_INVALID_RUN = re.compile(r"[^a-z0-9]+")


def is_dns1123_label(s: object) -> bool:
    """True for a DNS-1123 label: 1..63 of [a-z0-9-], starting and ending alphanumeric."""
    return isinstance(s, str) and len(s) <= DNS1123_MAX and bool(_DNS1123_RE.match(s))


def is_docker_tag(s: object) -> bool:
    return isinstance(s, str) and bool(_TAG_RE.match(s))


def digest(*parts: str, length: int = _DIGEST_LEN) -> str:
    """Short hex digest of the parts; the separator keeps ("a-b","c") apart from ("a","b-c")."""
    joined = "\x00".join(parts).encode("utf-8", "surrogatepass")
    return hashlib.sha256(joined).hexdigest()[:length]


def sanitize(s: str) -> str:
    """Lowercase, runs of anything but [a-z0-9] become one '-', and trim '-'.

    May return "" (input had no letters or digits); callers handle that.
    """
    return _INVALID_RUN.sub("-", s.lower()).strip("-")


def _part(s: str, max_len: int) -> tuple[str, bool]:
    """The sanitized part cut to max_len, and whether information was lost."""
    clean = sanitize(s)
    cut = clean[:max_len].rstrip("-")
    return cut, cut != s


def _hash8(content_hash: str) -> str:
    """The first 8 hex of a content hash; a non-hex hash is hashed itself."""
    h = content_hash.lower()
    if len(h) >= HASH8_LEN and re.fullmatch(r"[0-9a-f]+", h):
        return h[:HASH8_LEN]
    return digest(content_hash)


def _fit(prefix: str, parts: list[str], suffix: str, limit: int) -> str:
    """``prefix-part1-part2[-digest]suffix`` within ``limit`` characters.

    Parts are sanitized; if any is altered or the whole is too long, the parts
    are shortened (the longest first) and a digest of the original parts is
    appended so the result stays unique.
    """
    cleaned = [sanitize(p) for p in parts]
    lossy = any(c != p for c, p in zip(cleaned, parts, strict=True)) or not all(cleaned)
    fixed = len(prefix) + len(suffix) + len(parts)  # one '-' before each part
    if not lossy and fixed + sum(len(c) for c in cleaned) <= limit:
        return prefix + "".join(f"-{c}" for c in cleaned) + suffix
    dig = digest(*parts)
    room = limit - fixed - (len(dig) + 1)
    # Shorten the longest part one character at a time: fair to both ids.
    lens = [min(len(c), max(room, 0)) for c in cleaned]
    while sum(lens) > room:
        i = max(range(len(lens)), key=lambda k: lens[k])
        lens[i] -= 1
    pieces = [c[:n].rstrip("-") for c, n in zip(cleaned, lens, strict=True)]
    body = "".join(f"-{p}" for p in pieces if p)
    return f"{prefix}{body}-{dig}{suffix}"


def job_name(third_party_id: str, parser_id: str, content_hash: str) -> str:
    """``build-<tp>-<parser>-<hash8>``, at most 63 characters."""
    return _fit("build", [third_party_id, parser_id], f"-{_hash8(content_hash)}", JOB_NAME_MAX)


def service_name(third_party_id: str, parser_id: str) -> str:
    """``lambda-<tp[:15]>-<parser[:15]>``; a digest is appended when an id was cut."""
    tp, tp_lost = _part(third_party_id, SERVICE_PART_MAX)
    parser, parser_lost = _part(parser_id, SERVICE_PART_MAX)
    pieces = [p for p in (tp, parser) if p]
    name = "lambda" + "".join(f"-{p}" for p in pieces)
    if tp_lost or parser_lost or len(pieces) < 2:
        name += f"-{digest(third_party_id, parser_id)}"
    return name  # at most 6 + 16 + 16 + 9 = 47 <= 55


def image_tag(third_party_id: str, parser_id: str, content_hash: str) -> str:
    """``<tp>-<parser>-<hash8>`` as a valid docker tag (at most 128 characters)."""
    name = _fit("x", [third_party_id, parser_id], f"-{_hash8(content_hash)}", IMAGE_TAG_MAX + 2)
    return name[2:]  # drop the "x-" anchor that lets this reuse _fit


def image_uri(registry: str, third_party_id: str, parser_id: str, content_hash: str) -> str:
    """``<registry>/knative-lambdas:<tp>-<parser>-<hash8>``."""
    reg = registry.strip().rstrip("/")
    repo = f"{reg}/{IMAGE_REPOSITORY}" if reg else IMAGE_REPOSITORY
    return f"{repo}:{image_tag(third_party_id, parser_id, content_hash)}"
