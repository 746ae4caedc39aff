"""Trigger filter evaluation, as Knative Eventing defines it; pure functions over plain data.

Two filter forms exist on a Knative Trigger:

* ``spec.filter.attributes`` — a map of attribute -> value, all must be equal.
  The value ``""`` means "any value". A missing *extension* fails; a missing
  optional core attribute (subject, dataschema, ...) reads as ``""`` (as in
  Knative, where ``event.Subject()`` returns the empty string).
* ``spec.filters`` — a list of dialect expressions, all must match:
  ``{"exact": {a: v}}``, ``{"prefix": {a: v}}``, ``{"suffix": {a: v}}``,
  ``{"all": [f, ...]}``, ``{"any": [f, ...]}``, ``{"not": f}``.
  A missing attribute never matches exact/prefix/suffix. An empty ``all`` or
  ``any`` list is "no filter" and passes (Knative's ``NoFilter``).
  When ``filters`` is non-empty, ``filter`` is ignored (Knative's rule).

Event attributes are given as ``dict[str, str]`` (see :func:`string_attributes`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from knative_lambda.errors import ConfigError

CORE_ATTRIBUTES = frozenset(
    {"specversion", "id", "source", "type", "subject", "datacontenttype", "dataschema", "time"}
)
LEAF_DIALECTS = ("exact", "prefix", "suffix")
NESTED_DIALECTS = ("all", "any", "not")
DIALECTS = LEAF_DIALECTS + NESTED_DIALECTS
# all/any/not nesting limit: real filters are a few levels deep, and evaluation,
# storage and listing recurse, so an unbounded depth is a RecursionError (500).
MAX_FILTER_DEPTH = 32


def string_attributes(attributes: Mapping[str, Any]) -> dict[str, str]:
    """CloudEvent attributes as strings, the form filters compare against."""
    out: dict[str, str] = {}
    for key, value in attributes.items():
        if value is None:
            continue
        if isinstance(value, datetime):
            out[key] = value.isoformat().replace("+00:00", "Z")
        elif isinstance(value, bool):
            out[key] = "true" if value else "false"
        else:
            out[key] = str(value)
    return out


def match_attributes(expected: Mapping[str, str], attrs: Mapping[str, str]) -> bool:
    """``spec.filter.attributes``: every key equal, ``""`` = any value."""
    for key, want in expected.items():
        have = attrs.get(key)
        if have is None:
            if key not in CORE_ATTRIBUTES:
                return False
            have = ""
        if want != "" and want != have:
            return False
    return True


def match_expression(expr: Mapping[str, Any], attrs: Mapping[str, str]) -> bool:
    """One ``filters`` dialect expression (assumed valid, see :func:`validate_filters`)."""
    (dialect, arg), = expr.items()
    if dialect == "exact":
        return all(attrs.get(k) == v for k, v in arg.items())
    if dialect == "prefix":
        return all(k in attrs and attrs[k].startswith(v) for k, v in arg.items())
    if dialect == "suffix":
        return all(k in attrs and attrs[k].endswith(v) for k, v in arg.items())
    if dialect == "all":
        return all(match_expression(e, attrs) for e in arg)
    if dialect == "any":
        return not arg or any(match_expression(e, attrs) for e in arg)
    if dialect == "not":
        return not match_expression(arg, attrs)
    raise ConfigError(f"unknown filter dialect {dialect!r}; use one of {', '.join(DIALECTS)}")


def matches(
    attrs: Mapping[str, str],
    attributes: Mapping[str, str] | None = None,
    filters: Sequence[Mapping[str, Any]] | None = None,
) -> bool:
    """Does an event pass a trigger's filter? ``filters`` wins over ``attributes``."""
    if filters:
        return all(match_expression(e, attrs) for e in filters)
    if attributes:
        return match_attributes(attributes, attrs)
    return True


def validate_filters(filters: Any, where: str = "spec.filters") -> list[str]:
    """Every problem with a ``filters`` list, as ``"where: reason"`` strings (empty = valid)."""
    if filters is None:
        return []
    if not isinstance(filters, list):
        return [f"{where}: must be a list of filter expressions"]
    problems: list[str] = []
    for i, expr in enumerate(filters):
        problems += _validate_expression(expr, f"{where}[{i}]", 1)
    return problems


def _validate_expression(expr: Any, where: str, depth: int) -> list[str]:
    if depth > MAX_FILTER_DEPTH:
        return [f"{where}: filters nested more than {MAX_FILTER_DEPTH} levels deep"]
    if not isinstance(expr, dict) or len(expr) != 1:
        return [f"{where}: must be an object with exactly one of {', '.join(DIALECTS)}"]
    (dialect, arg), = expr.items()
    if dialect in LEAF_DIALECTS:
        if not isinstance(arg, dict) or not arg:
            return [f"{where}.{dialect}: must be a non-empty map of attribute to string"]
        bad = [k for k, v in arg.items() if not isinstance(k, str) or not isinstance(v, str)]
        return [f"{where}.{dialect}.{k}: value must be a string" for k in bad]
    if dialect in ("all", "any"):
        if not isinstance(arg, list):
            return [f"{where}.{dialect}: must be a list of filter expressions"]
        return [p for i, e in enumerate(arg) for p in _validate_expression(e, f"{where}.{dialect}[{i}]", depth + 1)]
    if dialect == "not":
        return _validate_expression(arg, f"{where}.not", depth + 1)
    if dialect == "cesql":
        return [f"{where}.cesql: CESQL is not supported by this broker; use exact/prefix/suffix/all/any/not"]
    return [f"{where}: unknown dialect {dialect!r}; use one of {', '.join(DIALECTS)}"]


def validate_attributes(attributes: Any, where: str = "spec.filter.attributes") -> list[str]:
    if attributes is None:
        return []
    if not isinstance(attributes, dict):
        return [f"{where}: must be a map of attribute to string"]
    return [f"{where}.{k}: value must be a string" for k, v in attributes.items() if not isinstance(v, str)]


def required_type(
    attributes: Mapping[str, str] | None, filters: Sequence[Mapping[str, Any]] | None
) -> str | None:
    """The event type every matching event must have, if the filter pins one.

    Used to narrow the RabbitMQ binding (routing key = type) so that a trigger's
    queue only receives candidate events; the dispatcher still evaluates the full
    filter, so this is an optimisation, never the decision.
    """
    if filters:
        for expr in filters:
            exact = expr.get("exact")
            if isinstance(exact, dict) and exact.get("type"):
                return exact["type"]
        return None
    if attributes and attributes.get("type"):
        return attributes["type"]
    return None
