"""CloudEvents <-> HTTP and RabbitMQ messages, on the cloudevents SDK (``cloudevents.core``).

- HTTP: binary mode (``ce-*`` headers, data in the body) or structured mode
  (``content-type: application/cloudevents+json``, the whole event in the body);
  :func:`from_http` detects the mode from the content type.
- AMQP: the RabbitMQ protocol binding of Knative eventing-rabbitmq (AMQP 0-9-1
  message headers ``ce-*`` plus the ``content_type`` property), which is what
  aio-pika carries; ``cloudevents.core.bindings.amqp`` is the AMQP 1.0 binding
  (application properties), a different wire format.

Decoding checks the envelope before the SDK sees it, so broken JSON, missing
``ce-`` headers, a bad specversion or time become one ContractError listing
every problem; no SDK exception escapes.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import unquote

from cloudevents.core.bindings import http as ce_http
from cloudevents.core.bindings import rabbitmq as ce_rabbitmq
from cloudevents.core.exceptions import BaseCloudEventException
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from knative_lambda.contract.errors import ContractError, Problem
from knative_lambda.contract.validation import (
    attribute_problems,
    build_event,
    split_structured,
    take_time,
)

Mode = Literal["binary", "structured"]

STRUCTURED_CONTENT_TYPE = JSONFormat.CONTENT_TYPE  # application/cloudevents+json
_JSON_FORMAT = JSONFormat()
_CE = "ce-"
_JSON_MEDIA_RE = JSONFormat.JSON_CONTENT_TYPE_PATTERN


def _text(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        # Not "replace": bytes that are not UTF-8 stay visible (as lone surrogates)
        # so the envelope check rejects them instead of a silently changed value.
        return bytes(value).decode("utf-8", "surrogateescape")
    return value if isinstance(value, str) else str(value)


def _lowered(pairs: Any) -> tuple[dict[str, str], list[Problem]]:
    """Headers by lowercase name; a ce- header sent twice is a problem, not "last wins".

    ``pairs`` is ``headers.items()``: a multi-dict (aiohttp, httpx) yields every
    occurrence, so duplicates are seen; a plain dict can only show case variants.
    """
    out: dict[str, str] = {}
    problems: list[Problem] = []
    for key, value in pairs:
        name = str(key).lower()
        if name in out and name.startswith(_CE):
            problems.append(
                Problem(f"header {name}", "duplicate: sent more than once; send it once")
            )
        out[name] = _text(value)
    return out, problems


def _unquote(name: str, value: str) -> tuple[str, list[Problem]]:
    """A binary-mode header value, percent-decoded strictly (the bytes must be UTF-8)."""
    if "%" not in value:
        return value, []
    try:
        return unquote(value, errors="strict"), []
    except UnicodeDecodeError:
        return value, [
            Problem(f"attribute {name[len(_CE):]}", "percent-encoded bytes are not UTF-8")
        ]


def _as_bytes(body: Any) -> bytes:
    if body is None:
        return b""
    if isinstance(body, str):
        return body.encode("utf-8")
    return bytes(body)


def _media(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


def _no_constants(name: str) -> Any:
    raise _NotJSON(f"{name} is not a JSON number (RFC 8259)")


class _NotJSON(ValueError):
    pass


def _parse_json(body: bytes, where: str) -> tuple[Any, list[Problem]]:
    try:
        return json.loads(body.decode("utf-8"), parse_constant=_no_constants), []
    except UnicodeDecodeError:
        return None, [Problem(where, "is not UTF-8 text")]
    except json.JSONDecodeError as e:
        return None, [Problem(where, f"invalid JSON: {e.msg} at line {e.lineno} column {e.colno}")]
    except RecursionError:
        return None, [Problem(where, "invalid JSON: nested too deeply")]
    except _NotJSON as e:
        return None, [Problem(where, f"invalid JSON: {e}")]
    except ValueError:  # int() refuses more than sys.get_int_max_str_digits() digits
        return None, [Problem(where, "invalid JSON: a number has too many digits")]


def _encode(fn: Any, event: CloudEvent) -> Any:
    try:
        return fn(event, _JSON_FORMAT)
    except (TypeError, ValueError) as e:
        raise ContractError([Problem("data", f"cannot be encoded as JSON: {e}")]) from None


def _structured(body: bytes, content_type: str) -> CloudEvent:
    media = _media(content_type)
    if media != STRUCTURED_CONTENT_TYPE:
        what = "batch mode" if "batch" in media else f"format {media!r}"
        raise ContractError(
            [Problem("content-type", f"{what} is not supported; use {STRUCTURED_CONTENT_TYPE}")]
        )
    doc, problems = _parse_json(body, "body")
    if problems:
        raise ContractError(problems)
    return event_from_dict(doc)


def _binary(
    ce_headers: dict[str, str],
    content_type: str | None,
    body: bytes,
    decode: Any,
    header_problems: list[Problem] | None = None,
) -> CloudEvent:
    """Pre-check binary-mode parts, then let the SDK decode with our checked factory
    (``decode``), or with ``decode=None`` build the event from the checked parts."""
    if not ce_headers:
        raise ContractError(
            [
                Problem(
                    "headers",
                    f"no ce- headers and content-type is not {STRUCTURED_CONTENT_TYPE}: "
                    "not a CloudEvent",
                )
            ]
        )
    attrs: dict[str, Any] = {k[len(_CE) :]: v for k, v in ce_headers.items()}
    if content_type is not None:
        attrs["datacontenttype"] = content_type
    problems: list[Problem] = list(header_problems or ())
    problems += take_time(attrs)
    data: Any = None
    json_body = bool(body) and _JSON_MEDIA_RE.match(content_type or JSONFormat.DEFAULT_CONTENT_TYPE)
    if json_body:
        data, bad = _parse_json(body, "body")
        problems += bad
    problems += attribute_problems(attrs)
    if problems:
        raise ContractError(problems)
    if decode is None:
        # HTTP: these attributes (percent-decoded, time parsed) and this data are what the
        # SDK's from_binary would decode again, so the event is built from them directly.
        return build_event(attrs, data if json_body else _JSON_FORMAT.read_data(body, content_type), checked=True)
    try:
        return decode(functools.partial(build_event, checked=True))
    except ContractError:
        raise
    except (BaseCloudEventException, ValueError, TypeError, AttributeError) as e:
        raise ContractError([Problem("message", f"cannot be decoded: {e}")]) from None


# --- HTTP ---------------------------------------------------------------------


def to_http(event: CloudEvent, mode: Mode = "binary") -> tuple[dict[str, str], bytes]:
    """Headers and body of an HTTP request carrying ``event``."""
    if mode == "binary":
        msg = _encode(ce_http.to_binary, event)
    elif mode == "structured":
        msg = _encode(ce_http.to_structured, event)
    else:
        raise ValueError(f"mode must be 'binary' or 'structured', not {mode!r}")
    return dict(msg.headers), msg.body


def from_http(headers: Mapping[str, Any], body: bytes | str | None) -> CloudEvent:
    """The CloudEvent in an HTTP request; binary or structured mode by content type.

    Header names are case-insensitive; ``headers`` may be any mapping
    (aiohttp's CIMultiDict, httpx.Headers, a dict). Pass the multi-dict itself
    (``request.headers``, not ``dict(...)``) so a ce- header sent twice is
    rejected rather than one copy silently winning.
    """
    lowered, problems = _lowered(headers.items())
    raw = _as_bytes(body)
    content_type = lowered.get("content-type")
    if _media(content_type).startswith("application/cloudevents"):
        if problems:
            raise ContractError(problems)
        return _structured(raw, content_type or "")
    ce_headers: dict[str, str] = {}
    for k, v in lowered.items():
        if k.startswith(_CE):
            ce_headers[k], bad = _unquote(k, v)
            problems += bad
    return _binary(ce_headers, content_type, raw, None, problems)


# --- AMQP (RabbitMQ) ----------------------------------------------------------


def to_amqp(event: CloudEvent, mode: Mode = "binary") -> tuple[dict[str, Any], bytes, str]:
    """(message headers, body, content_type) for an aio-pika ``Message``."""
    if mode == "binary":
        msg = _encode(ce_rabbitmq.to_binary, event)
    elif mode == "structured":
        msg = _encode(ce_rabbitmq.to_structured, event)
    else:
        raise ValueError(f"mode must be 'binary' or 'structured', not {mode!r}")
    content_type = msg.content_type or JSONFormat.DEFAULT_CONTENT_TYPE
    return dict(msg.headers), msg.body, content_type


def from_amqp(
    headers: Mapping[str, Any] | None, body: bytes | str | None, content_type: str | None
) -> CloudEvent:
    """The CloudEvent in a RabbitMQ message (header values may arrive as bytes)."""
    raw = _as_bytes(body)
    if _media(content_type).startswith("application/cloudevents"):
        return _structured(raw, content_type or "")
    text_headers, problems = _lowered((headers or {}).items())
    ce_headers = {k: v for k, v in text_headers.items() if k.startswith(_CE)}
    message = ce_rabbitmq.RabbitMQMessage(
        headers=ce_headers, content_type=content_type or None, body=raw
    )
    return _binary(
        ce_headers,
        content_type or None,
        raw,
        lambda factory: ce_rabbitmq.from_binary(message, _JSON_FORMAT, factory),
        problems,
    )


# --- JSON storage -------------------------------------------------------------


def event_to_dict(event: CloudEvent) -> dict[str, Any]:
    """The structured-mode JSON object of ``event`` (for files, journals, fixtures)."""
    try:
        return json.loads(_JSON_FORMAT.write(event))
    except (TypeError, ValueError) as e:
        raise ContractError([Problem("data", f"cannot be encoded as JSON: {e}")]) from None


def event_from_dict(doc: Any) -> CloudEvent:
    """The inverse of :func:`event_to_dict`; ContractError listing every envelope problem."""
    attrs, data, problems = split_structured(doc)
    if isinstance(doc, Mapping):
        problems += attribute_problems(attrs)
    if problems:
        raise ContractError(problems)
    return build_event(attrs, data, checked=isinstance(doc, Mapping))


# Short names for code that stores events as JSON objects.
to_dict = event_to_dict
from_dict = event_from_dict
