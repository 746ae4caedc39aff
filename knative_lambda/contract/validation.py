"""Checking an event against the contract: envelope, then type-specific rules.

Two layers, both collecting *every* problem before raising one ContractError:

- the envelope (:func:`attribute_problems`): CloudEvents 1.0 attributes and
  extension names/values. The bindings apply it when decoding, so a message
  that is not a CloudEvent never becomes one.
- the contract (:func:`validate`): the type is one of ours under the prefix,
  source/subject follow the per-type rule, extensions are well formed, the data
  matches its model and agrees with source/subject, and fits the size limit.

Nothing here does I/O and no library exception escapes: anything unexpected in
the input becomes a Problem.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cloudevents.core.exceptions import BaseCloudEventException, CloudEventValidationError
from cloudevents.core.v1.event import CloudEvent
from dateutil.parser import isoparse

from knative_lambda.contract.errors import ContractError, Problem
from knative_lambda.contract.events import (
    BUILD_REQUEST_KINDS,
    BUILD_RESULT_KINDS,
    BUILDER_SOURCE,
    DEFAULT_PREFIX,
    EXT_CORRELATION_ID,
    EXT_JOB_NAME,
    EXT_PARSER_ID,
    EXT_RESPONSE_TYPE,
    EXT_THIRD_PARTY_ID,
    FUNCTION_RESULT_KINDS,
    ID_REASON,
    ID_RULE,
    MODEL_OF,
    RESPONSE_TYPES,
    SOURCE_PREFIX,
    EventKind,
    Model,
    event_type,
    is_uuid4,
    kind_of,
)
from knative_lambda.contract.names import is_dns1123_label

MAX_DATA_BYTES = 1024 * 1024  # 1 MiB by default; callers pass their own limit

SPECVERSION = "1.0"
REQUIRED_ATTRIBUTES = ("id", "source", "type", "specversion")
OPTIONAL_ATTRIBUTES = ("datacontenttype", "dataschema", "subject", "time")
_EXTENSION_NAME_RE = re.compile(r"^[a-z0-9]+$")

# What AMQP 0-9-1 carries (the broker publishes every attribute as a message
# header, the id also as the ``message_id`` short string): short strings are at
# most 255 bytes, and all headers travel in one frame (RabbitMQ: 128 KiB).
MAX_SHORT_ATTRIBUTE_BYTES = 255  # id, source, type, specversion
MAX_ATTRIBUTE_BYTES = 4 * 1024  # any other attribute value
MAX_ATTRIBUTES_BYTES = 64 * 1024  # all names and values together
MAX_ATTRIBUTE_NAME = 64  # characters ("SHOULD NOT exceed 20" in CloudEvents 1.0)
_SHORT_ATTRIBUTES = frozenset(("id", "source", "type", "specversion"))
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1  # CloudEvents Integer
# CloudEvents 1.0 String: no control characters (U+0000-U+001F, U+007F-U+009F),
# no lone surrogates, no Unicode noncharacters.
_BAD_CHAR_RE = re.compile(
    r"[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef"
    + "".join(re.escape(chr(p * 0x10000 + 0xFFFE) + chr(p * 0x10000 + 0xFFFF)) for p in range(17))
    + "]"
)
_JSON_CT_RE = re.compile(r"^(application|text)/([a-zA-Z0-9\-.]+\+)?json(;.*)?$")
_BUILD_SUBJECT_RE = re.compile(r"^build/([^/]*)/([^/]*)$")


def _attr(name: str) -> str:
    return f"attribute {name}"


def _show(value: Any, limit: int = 60) -> str:
    text = repr(value[:limit] if isinstance(value, str | bytes) else value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _clip(name: Any, limit: int = 60) -> str:
    text = str(name)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _bad_char(value: str) -> str | None:
    """Why ``value`` is not a CloudEvents String, or None."""
    m = _BAD_CHAR_RE.search(value)
    if m is None:
        return None
    code = ord(m.group())
    what = "a surrogate" if 0xD800 <= code <= 0xDFFF else (
        "a Unicode noncharacter" if code >= 0xFDD0 else "a control character")
    return f"contains {what} (U+{code:04X} at index {m.start()}); CloudEvents strings forbid it"


def _size(value: Any) -> int:
    if isinstance(value, str):
        return len(value) if value.isascii() else len(value.encode("utf-8", "surrogatepass"))
    if isinstance(value, bytes | bytearray):
        return len(value)
    return len(str(value))


def _value_problems(attrs: Mapping[str, Any]) -> list[Problem]:
    """Characters and sizes of every attribute: what HTTP headers and AMQP can carry.

    On the ingress path for every event: plain ASCII strings take the cheap
    checks (``isprintable`` rules out every forbidden character).
    """
    problems: list[Problem] = []
    total = 0
    for name, value in attrs.items():
        if value.__class__ is str and value.isascii():
            size = len(value)
            if not value.isprintable() and (why := _bad_char(value)) is not None:
                problems.append(Problem(_attr(_clip(name)), why))
        elif value is None:
            continue
        else:
            size = _size(value)
            if isinstance(value, str) and (why := _bad_char(value)) is not None:
                problems.append(Problem(_attr(_clip(name)), why))
            if (
                isinstance(value, int)
                and not isinstance(value, bool)
                and not INT32_MIN <= value <= INT32_MAX
            ):
                problems.append(
                    Problem(_attr(_clip(name)), "integers must fit in 32 bits (CloudEvents)")
                )
        total += len(name) + size if name.__class__ is str else len(str(name)) + size
        if size > MAX_SHORT_ATTRIBUTE_BYTES and (
            size > MAX_ATTRIBUTE_BYTES or name in _SHORT_ATTRIBUTES
        ):
            limit = MAX_SHORT_ATTRIBUTE_BYTES if name in _SHORT_ATTRIBUTES else MAX_ATTRIBUTE_BYTES
            problems.append(Problem(_attr(_clip(name)), f"too long: {size} bytes, limit {limit}"))
    if total > MAX_ATTRIBUTES_BYTES:
        problems.append(
            Problem("attributes", f"too large together: {total} bytes, limit {MAX_ATTRIBUTES_BYTES}")
        )
    return problems


# --- envelope -----------------------------------------------------------------


def attribute_problems(attrs: Mapping[str, Any]) -> list[Problem]:
    """CloudEvents 1.0 envelope rules over a plain attribute mapping."""
    problems: list[Problem] = []
    spec = attrs.get("specversion")
    if spec is None:
        problems.append(Problem(_attr("specversion"), "required"))
    elif spec != SPECVERSION:
        problems.append(Problem(_attr("specversion"), f"must be '1.0', got {_show(spec)}"))
    for name in ("id", "source", "type"):
        value = attrs.get(name)
        if value is None:
            problems.append(Problem(_attr(name), "required"))
        elif not isinstance(value, str):
            problems.append(Problem(_attr(name), f"must be a string, got {type(value).__name__}"))
        elif not value.strip():
            problems.append(Problem(_attr(name), "must not be empty"))
    for name in ("subject", "datacontenttype", "dataschema"):
        value = attrs.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            problems.append(Problem(_attr(name), f"must be a string, got {type(value).__name__}"))
        elif not value:
            problems.append(Problem(_attr(name), "must not be empty"))
    when = attrs.get("time")
    if when is not None and (not isinstance(when, datetime) or when.tzinfo is None):
        problems.append(Problem(_attr("time"), "must be an RFC 3339 timestamp with a time zone"))
    for name, value in attrs.items():
        if name in REQUIRED_ATTRIBUTES or name in OPTIONAL_ATTRIBUTES:
            continue
        if name in ("data", "data_base64"):
            problems.append(Problem(_attr(name), "is reserved"))
        elif not isinstance(name, str) or not _EXTENSION_NAME_RE.fullmatch(name):
            problems.append(
                Problem(_attr(_clip(name)), "extension names are lowercase letters and digits only")
            )
        elif len(name) > MAX_ATTRIBUTE_NAME:
            problems.append(
                Problem(_attr(_clip(name)), f"name too long: {len(name)}, limit {MAX_ATTRIBUTE_NAME}")
            )
        elif value is not None and not isinstance(value, str | int | bytes | datetime):
            problems.append(
                Problem(
                    _attr(name), f"must be a string, integer or boolean, got {type(value).__name__}"
                )
            )
    problems += _value_problems(attrs)
    return problems


def parse_time(value: Any) -> tuple[Any, list[Problem]]:
    """An RFC 3339 string to an aware datetime (other values pass through)."""
    if not isinstance(value, str):
        return value, []
    try:
        parsed = isoparse(value)
    except (ValueError, OverflowError, TypeError):
        return value, [Problem(_attr("time"), f"must be an RFC 3339 timestamp, got {_show(value)}")]
    if parsed.tzinfo is None:
        return value, [Problem(_attr("time"), "must have a time zone (e.g. 'Z')")]
    return parsed, []


def take_time(attrs: dict[str, Any]) -> list[Problem]:
    """Parse ``attrs["time"]`` in place; an unparseable one is removed and reported once."""
    if "time" not in attrs:
        return []
    attrs["time"], problems = parse_time(attrs["time"])
    if problems:
        del attrs["time"]
    return problems


def split_structured(doc: Any) -> tuple[dict[str, Any], Any, list[Problem]]:
    """A structured-mode JSON object -> (attributes, data, problems)."""
    if not isinstance(doc, Mapping):
        return {}, None, [Problem("event", f"must be a JSON object, got {type(doc).__name__}")]
    problems: list[Problem] = []
    attrs = {k: v for k, v in doc.items() if k not in ("data", "data_base64") and v is not None}
    problems += take_time(attrs)
    data = doc.get("data")
    encoded = doc.get("data_base64")
    if encoded is not None:
        if data is not None:
            problems.append(Problem("data_base64", "must not appear together with data"))
        elif not isinstance(encoded, str):
            problems.append(Problem("data_base64", "must be a base64 string"))
        else:
            try:
                data = base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError):
                problems.append(Problem("data_base64", "is not valid base64"))
    return attrs, data, problems


def build_event(attrs: Mapping[str, Any], data: Any, *, checked: bool = False) -> CloudEvent:
    """A CloudEvent from its parts; raises ContractError (never a library error).

    ``checked``: the caller has just run :func:`attribute_problems` on ``attrs``
    (the bindings do), so it is not run again on the ingress's hot path.
    """
    problems = [] if checked else attribute_problems(attrs)
    if problems:
        raise ContractError(problems)
    try:
        return CloudEvent(dict(attrs), data)
    except CloudEventValidationError as e:  # a rule we do not mirror: report it anyway
        raise ContractError(
            Problem(_attr(name), "; ".join(str(x) for x in errs)) for name, errs in e.errors.items()
        ) from None
    except (BaseCloudEventException, ValueError, TypeError) as e:
        raise ContractError([Problem("event", str(e))]) from None


# --- contract -----------------------------------------------------------------


@dataclass(frozen=True)
class ValidatedEvent:
    """An event that honours the contract, with its parsed parts."""

    kind: EventKind
    model: Model | Any  # the data model; parser.start: the function's raw input
    correlation_id: str | None
    event: CloudEvent
    third_party_id: str | None = None
    parser_id: str | None = None


def data_size(data: Any) -> int:
    """Bytes the data takes on the wire (compact JSON for objects)."""
    if data is None:
        return 0
    if isinstance(data, bytes | bytearray):
        return len(data)
    if isinstance(data, str):
        return len(data.encode("utf-8", "surrogatepass"))
    # allow_nan=False: NaN and Infinity are not JSON (RFC 8259); a receiver would choke.
    return len(
        json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode(
            "utf-8", "surrogatepass"
        )
    )


def _tenant_of(source: Any) -> str | None:
    """``network.notifi.<tp>`` -> tp, when tp is a valid id."""
    if isinstance(source, str) and source.startswith(SOURCE_PREFIX):
        tp = source[len(SOURCE_PREFIX) :]
        if is_dns1123_label(tp):
            return tp
    return None


def _routing_problems(
    kind: EventKind, attrs: Mapping[str, Any], data: Any
) -> tuple[list[Problem], str | None, str | None]:
    """Source/subject rules of the kind, and the (tp, parser) they name."""
    problems: list[Problem] = []
    source, subject = attrs.get("source"), attrs.get("subject")
    tp: str | None = None
    parser: str | None = None
    type_name = kind.value
    if kind in BUILD_REQUEST_KINDS or kind == EventKind.PARSER_START:
        tp = _tenant_of(source)
        if tp is None and isinstance(source, str) and source:
            problems.append(
                Problem(
                    _attr("source"),
                    f"must be 'network.notifi.<third_party_id>' for {type_name}, got {_show(source)}",
                )
            )
    elif (
        kind in BUILD_RESULT_KINDS
        and isinstance(source, str)
        and source not in ("", BUILDER_SOURCE)
    ):
        problems.append(
            Problem(
                _attr("source"), f"must be '{BUILDER_SOURCE}' for {type_name}, got {_show(source)}"
            )
        )
    if kind in BUILD_RESULT_KINDS:
        m = _BUILD_SUBJECT_RE.match(subject) if isinstance(subject, str) else None
        if subject is None:
            problems.append(
                Problem(_attr("subject"), f"required for {type_name}: 'build/<tp>/<parser>'")
            )
        elif not isinstance(subject, str) or not subject:
            pass  # the envelope check reports it
        elif not m or not is_dns1123_label(m.group(1)) or not is_dns1123_label(m.group(2)):
            problems.append(
                Problem(
                    _attr("subject"),
                    f"must be 'build/<third_party_id>/<parser_id>', got {_show(subject)}",
                )
            )
        else:
            tp, parser = m.group(1), m.group(2)
    elif subject is None:
        problems.append(Problem(_attr("subject"), f"required for {type_name}: the parser id"))
    elif not isinstance(subject, str) or not subject:
        pass  # the envelope check reports it
    elif not is_dns1123_label(subject):
        problems.append(
            Problem(_attr("subject"), f"must be the parser id ({ID_RULE}), got {_show(subject)}")
        )
    else:
        parser = subject
    # The data repeats the ids: they must name the same function as the routing.
    if (
        isinstance(data, Mapping)
        and kind not in FUNCTION_RESULT_KINDS
        and kind != EventKind.PARSER_START
    ):
        for key, expected, attr in (
            ("third_party_id", tp, "subject" if kind in BUILD_RESULT_KINDS else "source"),
            ("parser_id", parser, "subject"),
        ):
            value = data.get(key)
            if expected is not None and is_dns1123_label(value) and value != expected:
                problems.append(
                    Problem(
                        f"data.{key}",
                        f"{_show(value)} does not match {attr} {_show(attrs.get(attr))}",
                    )
                )
            if expected is None and is_dns1123_label(value):
                if key == "third_party_id":
                    tp = value
                else:
                    parser = value
    return problems, tp, parser


def _extension_problems(
    attrs: Mapping[str, Any], tp: str | None, parser: str | None
) -> list[Problem]:
    problems: list[Problem] = []
    cid = attrs.get(EXT_CORRELATION_ID)
    if cid is not None and not is_uuid4(cid):
        problems.append(Problem(_attr(EXT_CORRELATION_ID), f"must be a UUID v4, got {_show(cid)}"))
    rtype = attrs.get(EXT_RESPONSE_TYPE)
    if rtype is not None and rtype not in RESPONSE_TYPES:
        problems.append(
            Problem(
                _attr(EXT_RESPONSE_TYPE),
                f"must be one of {', '.join(RESPONSE_TYPES)}, got {_show(rtype)}",
            )
        )
    job = attrs.get(EXT_JOB_NAME)
    if job is not None and not is_dns1123_label(job):
        problems.append(Problem(_attr(EXT_JOB_NAME), f"must be a DNS-1123 label, got {_show(job)}"))
    for name, expected in ((EXT_THIRD_PARTY_ID, tp), (EXT_PARSER_ID, parser)):
        value = attrs.get(name)
        if value is None:
            continue
        if not is_dns1123_label(value):
            problems.append(Problem(_attr(name), f"{ID_REASON}, got {_show(value)}"))
        elif expected is not None and value != expected:
            problems.append(
                Problem(_attr(name), f"{_show(value)} does not match the event's {_show(expected)}")
            )
    return problems


def _data_problems(
    kind: EventKind, attrs: Mapping[str, Any], data: Any, limit: int
) -> list[Problem]:
    problems: list[Problem] = []
    try:
        size = data_size(data)
    except (TypeError, ValueError) as e:
        return [Problem("data", f"is not JSON-serializable: {e}")]
    if size > limit:
        problems.append(Problem("data", f"too large: {size} bytes, limit {limit}"))
    model = MODEL_OF.get(kind)
    if model is None:  # parser.start: the function's own input, any shape
        return problems
    ctype = attrs.get("datacontenttype")
    if isinstance(ctype, str) and ctype and not _JSON_CT_RE.match(ctype):
        problems.append(
            Problem(
                _attr("datacontenttype"),
                f"must be application/json for {kind.value}, got {_show(ctype)}",
            )
        )
    problems += model.problems(data)
    only_job_start = kind in (EventKind.BUILD_START, EventKind.REBUILD_START)
    if only_job_start and isinstance(data, Mapping) and data.get("priority") is not None:
        problems.append(Problem("data.priority", "only allowed on job.start"))
    return problems


def _parts(event: Any) -> tuple[dict[str, Any], Any, list[Problem]]:
    if isinstance(event, Mapping):
        return split_structured(event)
    get_attributes = getattr(event, "get_attributes", None)
    if callable(get_attributes):
        attrs = {k: v for k, v in dict(get_attributes()).items() if v is not None}
        return attrs, event.get_data(), []
    return (
        {},
        None,
        [Problem("event", f"must be a CloudEvent or a JSON object, got {type(event).__name__}")],
    )


def problems_of(
    event: Any, prefix: str = DEFAULT_PREFIX, *, max_data_bytes: int = MAX_DATA_BYTES
) -> list[Problem]:
    """Every contract problem of ``event`` (empty when it is valid); never raises."""
    return _check(event, prefix, max_data_bytes)[0]


def _check(event: Any, prefix: str, limit: int, checked: bool = False) -> tuple[list[Problem], Any]:
    attrs, data, problems = _parts(event)
    if problems and not attrs and data is None:
        return problems, None
    if not checked:
        problems += attribute_problems(attrs)
    type_ = attrs.get("type")
    kind = kind_of(type_, prefix) if isinstance(type_, str) else None
    if kind is None and isinstance(type_, str) and type_.strip():
        known = ", ".join(event_type(k, prefix) for k in EventKind)
        problems.append(
            Problem(_attr("type"), f"unknown event type {_show(type_)}; known: {known}")
        )
    tp = parser = None
    if kind is not None:
        routing, tp, parser = _routing_problems(kind, attrs, data)
        problems += routing
        problems += _data_problems(kind, attrs, data, limit)
    problems += _extension_problems(attrs, tp, parser)
    return problems, (kind, attrs, data, tp, parser)


def validate(
    event: Any, prefix: str = DEFAULT_PREFIX, *, max_data_bytes: int = MAX_DATA_BYTES, checked: bool = False
) -> ValidatedEvent:
    """Check ``event`` (a CloudEvent, or its structured JSON object) against the contract.

    Raises ContractError listing every problem found. ``checked``: ``event`` comes from
    ``bindings.from_http`` / ``from_amqp``, which checked its envelope (CloudEvents rules)
    already; the contract's own rules are still checked.
    """
    try:
        problems, parts = _check(event, prefix, max_data_bytes, checked)
    except ContractError:
        raise
    except Exception as e:  # noqa: BLE001 - a gap in the rules must not crash the edge
        raise ContractError(
            [Problem("event", f"cannot be checked: {type(e).__name__}: {e}")]
        ) from None
    if problems:
        raise ContractError(problems)
    kind, attrs, data, tp, parser = parts
    cloud_event = event if not isinstance(event, Mapping) else build_event(attrs, data)
    model_cls = MODEL_OF.get(kind)
    model = model_cls.from_dict(data) if model_cls is not None else data
    return ValidatedEvent(
        kind=kind,
        model=model,
        correlation_id=attrs.get(EXT_CORRELATION_ID),
        event=cloud_event,
        third_party_id=tp,
        parser_id=parser,
    )
