"""Event types, extensions and data models of the contract (DESIGN.md §2).

Types are ``<prefix>.<suffix>``; the prefix is configurable (``KL_EVENT_PREFIX``),
so code holds an :class:`EventKind` (the suffix) and turns it into a type with
:func:`event_type`. The data models are frozen dataclasses whose ``to_dict()``
is the wire JSON and whose ``from_dict()`` checks every field and raises one
:class:`ContractError` listing all problems. ``problems(data)`` gives the same
list without raising, for :mod:`.validation` to merge with attribute problems.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from knative_lambda.contract.errors import ContractError, Problem
from knative_lambda.contract.names import is_dns1123_label
from knative_lambda.settings import DEFAULT_PREFIX

__all__ = [
    "DEFAULT_PREFIX",
    "EventKind",
    "event_type",
    "kind_of",
    "known_types",
    "BuildRequest",
    "BuildResult",
    "ServiceDelete",
    "FunctionResult",
]

# Extension attributes (CloudEvents extension names: lowercase alphanumeric).
EXT_CORRELATION_ID = "correlationid"
EXT_THIRD_PARTY_ID = "thirdpartyid"
EXT_PARSER_ID = "parserid"
EXT_JOB_NAME = "jobname"
EXT_RESPONSE_TYPE = "responsetype"
RESPONSE_TYPE_SYNC = "sync"  # reply inline instead of emitting result events
RESPONSE_TYPE_ASYNC = "async"
RESPONSE_TYPES = (RESPONSE_TYPE_SYNC, RESPONSE_TYPE_ASYNC)

SOURCE_PREFIX = "network.notifi."
BUILDER_SOURCE = "network.notifi.builder"
DATA_CONTENT_TYPE = "application/json"

# BuildResult.status values the reference builder writes (others are accepted).
STATUS_SUCCEEDED = "succeeded"
STATUS_FAILED = "failed"
STATUS_TIMEOUT = "timeout"

PRIORITY_MIN, PRIORITY_MAX = 1, 10


class EventKind(enum.Enum):
    """An event type without its prefix."""

    BUILD_START = "build.start"
    JOB_START = "job.start"
    REBUILD_START = "rebuild.start"
    BUILD_COMPLETE = "build.complete"
    BUILD_FAILED = "build.failed"
    BUILD_TIMEOUT = "build.timeout"
    SERVICE_DELETE = "service.delete"
    PARSER_START = "parser.start"
    RESULT = "result"
    PROCESSED = "processed"
    ERROR = "error"


BUILD_REQUEST_KINDS = frozenset(
    {EventKind.BUILD_START, EventKind.JOB_START, EventKind.REBUILD_START}
)
BUILD_RESULT_KINDS = frozenset(
    {EventKind.BUILD_COMPLETE, EventKind.BUILD_FAILED, EventKind.BUILD_TIMEOUT}
)
FUNCTION_RESULT_KINDS = frozenset({EventKind.RESULT, EventKind.PROCESSED, EventKind.ERROR})


def event_type(kind: EventKind, prefix: str = DEFAULT_PREFIX) -> str:
    """``network.notifi.lambda`` + ``build.start`` -> ``network.notifi.lambda.build.start``."""
    return f"{prefix}.{kind.value}"


def kind_of(type_: str, prefix: str = DEFAULT_PREFIX) -> EventKind | None:
    """The kind of a full type under ``prefix``; None when it is not one of ours."""
    if not isinstance(type_, str) or not type_.startswith(prefix + "."):
        return None
    try:
        return EventKind(type_[len(prefix) + 1 :])
    except ValueError:
        return None


def known_types(prefix: str = DEFAULT_PREFIX) -> list[str]:
    return [event_type(k, prefix) for k in EventKind]


def tenant_source(third_party_id: str) -> str:
    """The source of requests for a third party: ``network.notifi.<tp>``."""
    return f"{SOURCE_PREFIX}{third_party_id}"


def build_subject(third_party_id: str, parser_id: str) -> str:
    """The subject of builder results: ``build/<tp>/<parser>``."""
    return f"build/{third_party_id}/{parser_id}"


# --- field checks -------------------------------------------------------------

ID_RULE = "1..63 of a-z, 0-9 and '-', alphanumeric at both ends"
ID_REASON = f"must be a DNS-friendly id ({ID_RULE})"
_HASH_RE = re.compile(r"^[0-9a-f]{8,64}$")
_UUID4_RE = re.compile(
    r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$", re.IGNORECASE
)


def is_uuid4(value: object) -> bool:
    """True for a canonical UUID version 4 string (any case)."""
    return isinstance(value, str) and bool(_UUID4_RE.match(value))


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)  # True is an int in Python


def _is_number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and v == v  # NaN fails


# check name -> (predicate, reason)
_CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "id": (is_dns1123_label, ID_REASON),
    "str": (lambda v: isinstance(v, str), "must be a string"),
    "text": (lambda v: isinstance(v, str) and v.strip() != "", "must be a non-empty string"),
    "hash": (
        lambda v: isinstance(v, str) and bool(_HASH_RE.match(v)),
        "must be a content hash: 8..64 lowercase hex digits",
    ),
    "uuid_or_empty": (lambda v: v == "" or is_uuid4(v), "must be a UUID v4"),
    "int": (_is_int, "must be an integer"),
    "duration": (lambda v: _is_number(v) and v >= 0, "must be a number of seconds >= 0"),
    "bool": (lambda v: isinstance(v, bool), "must be a boolean"),
    "object": (lambda v: isinstance(v, dict), "must be a JSON object"),
    "list": (lambda v: isinstance(v, list), "must be a list"),
    "priority": (
        lambda v: _is_int(v) and PRIORITY_MIN <= v <= PRIORITY_MAX,
        f"must be an integer {PRIORITY_MIN}..{PRIORITY_MAX}",
    ),
}


@dataclass(frozen=True)
class _Field:
    key: str  # the wire name
    check: str  # a key of _CHECKS
    required: bool = True
    nullable: bool = False


def _field_problems(data: Any, fields: tuple[_Field, ...], where: str = "data") -> list[Problem]:
    if not isinstance(data, Mapping):
        got = "nothing" if data is None else type(data).__name__
        return [Problem(where, f"must be a JSON object, got {got}")]
    problems: list[Problem] = []
    for f in fields:
        if f.key not in data:
            if f.required:
                problems.append(Problem(f"{where}.{f.key}", "required"))
            continue
        value = data[f.key]
        if value is None and (f.nullable or not f.required):
            continue
        ok, reason = _CHECKS[f.check]
        if not ok(value):
            problems.append(Problem(f"{where}.{f.key}", reason))
    return problems


def _raise_if(problems: list[Problem]) -> None:
    if problems:
        raise ContractError(problems, "invalid data")


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


# --- models -------------------------------------------------------------------


@dataclass(frozen=True)
class BuildRequest:
    """Data of build.start / job.start / rebuild.start (priority only on job.start)."""

    third_party_id: str
    parser_id: str
    content_hash: str | None = None
    context_id: str | None = None
    parameters: dict[str, Any] | None = None
    priority: int | None = None

    FIELDS: ClassVar[tuple[_Field, ...]] = (
        _Field("third_party_id", "id"),
        _Field("parser_id", "id"),
        _Field("content_hash", "hash", required=False),
        _Field("context_id", "str", required=False),
        _Field("parameters", "object", required=False),
        _Field("priority", "priority", required=False),
    )

    @classmethod
    def problems(cls, data: Any, where: str = "data") -> list[Problem]:
        return _field_problems(data, cls.FIELDS, where)

    @classmethod
    def from_dict(cls, data: Any) -> BuildRequest:
        _raise_if(cls.problems(data))
        return cls(
            third_party_id=data["third_party_id"],
            parser_id=data["parser_id"],
            content_hash=data.get("content_hash"),
            context_id=data.get("context_id"),
            parameters=data.get("parameters"),
            priority=data.get("priority"),
        )

    def to_dict(self) -> dict[str, Any]:
        return _drop_none(
            {
                "third_party_id": self.third_party_id,
                "parser_id": self.parser_id,
                "content_hash": self.content_hash,
                "context_id": self.context_id,
                "parameters": self.parameters,
                "priority": self.priority,
            }
        )


@dataclass(frozen=True)
class BuildResult:
    """Data of build.complete / build.failed / build.timeout.

    ``cached`` is true when the builder reused an image for the same content
    hash instead of building (conformance checks the build cache with it).
    """

    third_party_id: str
    parser_id: str
    content_hash: str
    job_name: str
    image_uri: str
    status: str
    error_message: str
    exit_code: int | None
    duration: float
    correlation_id: str
    cached: bool = False

    FIELDS: ClassVar[tuple[_Field, ...]] = (
        _Field("third_party_id", "id"),
        _Field("parser_id", "id"),
        _Field("content_hash", "hash"),
        _Field("job_name", "str"),
        _Field("image_uri", "str"),  # empty when no image was produced
        _Field("status", "text"),
        _Field("error_message", "str"),  # empty on success
        _Field("exit_code", "int", nullable=True),  # null when the build never ran
        _Field("duration", "duration"),
        _Field("correlation_id", "uuid_or_empty"),
        _Field("cached", "bool", required=False),
    )

    @classmethod
    def problems(cls, data: Any, where: str = "data") -> list[Problem]:
        return _field_problems(data, cls.FIELDS, where)

    @classmethod
    def from_dict(cls, data: Any) -> BuildResult:
        _raise_if(cls.problems(data))
        return cls(
            third_party_id=data["third_party_id"],
            parser_id=data["parser_id"],
            content_hash=data["content_hash"],
            job_name=data["job_name"],
            image_uri=data["image_uri"],
            status=data["status"],
            error_message=data["error_message"],
            exit_code=data["exit_code"],
            duration=data["duration"],
            correlation_id=data["correlation_id"],
            cached=bool(data.get("cached") or False),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "third_party_id": self.third_party_id,
            "parser_id": self.parser_id,
            "content_hash": self.content_hash,
            "job_name": self.job_name,
            "image_uri": self.image_uri,
            "status": self.status,
            "error_message": self.error_message,
            "exit_code": self.exit_code,
            "duration": self.duration,
            "correlation_id": self.correlation_id,
            "cached": self.cached,
        }


@dataclass(frozen=True)
class ServiceDelete:
    """Data of service.delete."""

    third_party_id: str
    parser_id: str
    service_name: str | None = None
    reason: str | None = None
    correlation_id: str | None = None

    FIELDS: ClassVar[tuple[_Field, ...]] = (
        _Field("third_party_id", "id"),
        _Field("parser_id", "id"),
        _Field("service_name", "id", required=False),
        _Field("reason", "str", required=False),
        _Field("correlation_id", "uuid_or_empty", required=False),
    )

    @classmethod
    def problems(cls, data: Any, where: str = "data") -> list[Problem]:
        return _field_problems(data, cls.FIELDS, where)

    @classmethod
    def from_dict(cls, data: Any) -> ServiceDelete:
        _raise_if(cls.problems(data))
        return cls(
            third_party_id=data["third_party_id"],
            parser_id=data["parser_id"],
            service_name=data.get("service_name"),
            reason=data.get("reason"),
            correlation_id=data.get("correlation_id"),
        )

    def to_dict(self) -> dict[str, Any]:
        return _drop_none(
            {
                "third_party_id": self.third_party_id,
                "parser_id": self.parser_id,
                "service_name": self.service_name,
                "reason": self.reason,
                "correlation_id": self.correlation_id,
            }
        )


@dataclass(frozen=True)
class FunctionResult:
    """Data of result / processed / error.

    Wire shape (camelCase, as the original functions return it):
    ``{succeeded: true, contextId, eventEntries}`` or ``{succeeded: false, errorMessage}``.
    """

    succeeded: bool
    context_id: str | None = None
    event_entries: list[Any] | None = None
    error_message: str | None = None

    _COMMON: ClassVar[tuple[_Field, ...]] = (
        _Field("succeeded", "bool"),
        _Field("contextId", "str", required=False),
    )
    _OK: ClassVar[tuple[_Field, ...]] = (_Field("eventEntries", "list"),)
    _FAILED: ClassVar[tuple[_Field, ...]] = (_Field("errorMessage", "str"),)

    @classmethod
    def problems(cls, data: Any, where: str = "data") -> list[Problem]:
        problems = _field_problems(data, cls._COMMON, where)
        if isinstance(data, Mapping) and isinstance(data.get("succeeded"), bool):
            rest = cls._OK if data["succeeded"] else cls._FAILED
            problems += _field_problems(data, rest, where)
        return problems

    @classmethod
    def from_dict(cls, data: Any) -> FunctionResult:
        _raise_if(cls.problems(data))
        return cls(
            succeeded=data["succeeded"],
            context_id=data.get("contextId"),
            event_entries=data.get("eventEntries"),
            error_message=data.get("errorMessage"),
        )

    @classmethod
    def ok(cls, event_entries: list[Any], context_id: str | None = None) -> FunctionResult:
        return cls(True, context_id=context_id, event_entries=list(event_entries))

    @classmethod
    def failed(cls, error_message: str, context_id: str | None = None) -> FunctionResult:
        return cls(False, context_id=context_id, error_message=error_message)

    def to_dict(self) -> dict[str, Any]:
        if self.succeeded:
            return {
                "succeeded": True,
                "contextId": self.context_id,
                "eventEntries": list(self.event_entries or []),
            }
        return _drop_none(
            {
                "succeeded": False,
                "contextId": self.context_id,
                "errorMessage": self.error_message or "",
            }
        )


Model = BuildRequest | BuildResult | ServiceDelete | FunctionResult

ModelType = type[BuildRequest] | type[BuildResult] | type[ServiceDelete] | type[FunctionResult]

MODEL_OF: dict[EventKind, ModelType] = {
    **{k: BuildRequest for k in BUILD_REQUEST_KINDS},
    **{k: BuildResult for k in BUILD_RESULT_KINDS},
    EventKind.SERVICE_DELETE: ServiceDelete,
    **{k: FunctionResult for k in FUNCTION_RESULT_KINDS},
}
"""The data model of each kind; parser.start carries the function's own input."""
