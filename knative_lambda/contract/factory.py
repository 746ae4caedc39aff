"""Making contract events: the one place ids, time and correlation are set."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from cloudevents.core.v1.event import CloudEvent

from knative_lambda.contract.errors import ContractError, Problem
from knative_lambda.contract.events import (
    DATA_CONTENT_TYPE,
    DEFAULT_PREFIX,
    EXT_CORRELATION_ID,
    EventKind,
    event_type,
    is_uuid4,
)
from knative_lambda.contract.validation import SPECVERSION, build_event


def new_correlation_id() -> str:
    return str(uuid.uuid4())


def new_event(
    kind: EventKind,
    data: Any,
    *,
    source: str,
    subject: str | None,
    prefix: str = DEFAULT_PREFIX,
    correlation_id: str | None = None,
    extensions: Mapping[str, Any] | None = None,
) -> CloudEvent:
    """A CloudEvent of ``kind`` with a fresh id, the current time and a correlation id.

    ``data`` is a model (anything with ``to_dict()``) or JSON-able data. The
    envelope is checked (ContractError on a bad extension name or correlation
    id); the contract rules are not, so tests can build events a consumer must
    reject. Use :func:`validate` for those.
    """
    extra = {k: v for k, v in (extensions or {}).items() if v is not None}
    cid = correlation_id or extra.pop(EXT_CORRELATION_ID, None) or new_correlation_id()
    if not is_uuid4(cid):
        raise ContractError(
            [Problem(f"attribute {EXT_CORRELATION_ID}", f"must be a UUID v4, got {cid!r}")]
        )
    payload = data.to_dict() if hasattr(data, "to_dict") else data
    attrs: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "source": source,
        "type": event_type(kind, prefix),
        "specversion": SPECVERSION,
        "time": datetime.now(UTC),
        "datacontenttype": DATA_CONTENT_TYPE,
    }
    if subject is not None:
        attrs["subject"] = subject
    attrs.update(extra)
    attrs[EXT_CORRELATION_ID] = cid
    return build_event(attrs, payload)


def correlation_id_of(event: CloudEvent) -> str | None:
    value = event.get_extension(EXT_CORRELATION_ID)
    return value if isinstance(value, str) and value else None


def ensure_correlation_id(event: CloudEvent) -> CloudEvent:
    """The event itself when it has a correlation id, else a copy with a new UUID v4.

    A present but malformed id is kept: validation reports it rather than this
    silently replacing what the sender will search its logs for.
    """
    if correlation_id_of(event) is not None:
        return event
    attrs = dict(event.get_attributes())
    attrs[EXT_CORRELATION_ID] = new_correlation_id()
    return CloudEvent(attrs, event.get_data())
