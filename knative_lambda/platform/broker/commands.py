"""``kl emit`` and ``kl triggers``: talk to the running broker named in the state file."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

from knative_lambda.errors import ConfigError
from knative_lambda.settings import Settings

DEFAULT_STATE = ".kl/env.json"


def load_settings(state: str | None) -> Settings:
    """Settings from the state file ``kl up`` wrote; ``KL_BROKER_URL`` in the env wins when set."""
    if not state and os.environ.get("KL_BROKER_URL"):
        return Settings.from_env()
    path = Path(state or os.environ.get("KL_STATE", DEFAULT_STATE))
    try:
        from knative_lambda.harness.state import settings_from_state
    except ImportError:  # pragma: no cover - the harness is part of the package
        return _settings_from_json(path)
    return settings_from_state(path)


def _settings_from_json(path: Path) -> Settings:
    try:
        raw = json.loads(path.read_text())["settings"]
    except FileNotFoundError:
        raise ConfigError(f"no platform state at {path}: run 'kl up' first (or pass --state)") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"cannot read settings from {path}: {exc}") from None
    fields = set(Settings.__dataclass_fields__)
    values = {k: v for k, v in raw.items() if k in fields}
    if "data_dir" in values:
        values["data_dir"] = Path(values["data_dir"])
    return Settings(**values)


# --- emit ------------------------------------------------------------------------------


def resolve_type(type_: str, prefix: str) -> Any:
    """A full type or a suffix (``build.start``) -> EventKind; ConfigError naming the choices."""
    from knative_lambda.contract.events import EventKind, kind_of

    by_value = {k.value: k for k in EventKind}
    kind = by_value.get(type_) or kind_of(type_, prefix)
    if kind is None:
        known = ", ".join(sorted(by_value))
        raise ConfigError(f"unknown event type {type_!r}: use one of {known} (or the full {prefix}.<kind>)")
    return kind


def default_source(kind: Any, data: Any) -> str | None:
    """The source the contract expects when it can be told from the data."""
    from knative_lambda.contract.events import BUILD_RESULT_KINDS, BUILDER_SOURCE, tenant_source

    if kind in BUILD_RESULT_KINDS:
        return BUILDER_SOURCE
    if isinstance(data, dict) and isinstance(data.get("third_party_id"), str):
        return tenant_source(data["third_party_id"])
    return None


def default_subject(kind: Any, data: Any) -> str | None:
    from knative_lambda.contract.events import BUILD_RESULT_KINDS, build_subject

    if not isinstance(data, dict):
        return None
    tp, parser = data.get("third_party_id"), data.get("parser_id")
    if kind in BUILD_RESULT_KINDS and isinstance(tp, str) and isinstance(parser, str):
        return build_subject(tp, parser)
    return parser if isinstance(parser, str) else None


def build_event(type_: str, source: str | None, subject: str | None, data: Any, prefix: str) -> Any:
    """One CloudEvent from the command line's parts (checked by the contract)."""
    from knative_lambda.contract.factory import new_event
    from knative_lambda.contract.validation import validate

    kind = resolve_type(type_, prefix)
    source = source or default_source(kind, data)
    if not source:
        raise ConfigError("--source is required for this type (e.g. network.notifi.<third_party_id>)")
    subject = subject if subject is not None else default_subject(kind, data)
    event = new_event(kind, data, source=source, subject=subject, prefix=prefix)
    validate(event, prefix)
    return event


def parse_batch(lines: list[str], prefix: str) -> list[Any]:
    """A JSONL batch: each line a structured CloudEvent or ``{type, source?, subject?, data}``.

    Every line is checked before anything is sent; ConfigError lists every bad line.
    """
    from knative_lambda.contract.bindings import event_from_dict
    from knative_lambda.contract.errors import ContractError
    from knative_lambda.contract.validation import validate

    events, problems = [], []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
            if not isinstance(doc, dict):
                raise ConfigError("must be a JSON object")
            if "specversion" in doc:
                event = event_from_dict(doc)
                validate(event, prefix)
            else:
                event = build_event(str(doc.get("type", "")), doc.get("source"), doc.get("subject"),
                                    doc.get("data"), prefix)
            events.append(event)
        except ValueError as exc:
            problems.append(f"line {n}: invalid JSON ({exc})")
        except RecursionError:
            problems.append(f"line {n}: invalid JSON (nested too deeply)")
        except (ConfigError, ContractError) as exc:
            problems.append(f"line {n}: {exc}")
    if problems:
        raise ConfigError(f"{len(problems)} bad line(s), nothing sent: " + " | ".join(problems))
    return events


@click.command()
@click.argument("type_", metavar="TYPE", required=False)
@click.option("--source", help="event source (default: derived from data.third_party_id)")
@click.option("--subject", help="event subject (default: data.parser_id)")
@click.option("--data", "data_json", default="{}", show_default=True, help="event data as JSON")
@click.option("--file", "batch", type=click.Path(dir_okay=False, path_type=Path),
              help="JSONL batch: one event per line ('-' for stdin)")
@click.option("--broker", default="default", show_default=True)
@click.option("--namespace", default="default", show_default=True)
@click.option("--mode", type=click.Choice(["binary", "structured"]), default="binary", show_default=True)
@click.option("--state", default=None, help=f"state file written by kl up [default: {DEFAULT_STATE}]")
def emit(type_: str | None, source: str | None, subject: str | None, data_json: str,
         batch: Path | None, broker: str, namespace: str, mode: str, state: str | None) -> None:
    """Publish CloudEvents to the broker; prints each event id once RabbitMQ stored it.

    TYPE is a full type or a suffix such as build.start or parser.start.
    """
    from knative_lambda.platform.broker.client import BrokerClient

    settings = load_settings(state)
    if batch is not None:
        text = click.get_text_stream("stdin").read() if str(batch) == "-" else _read(batch)
        events = parse_batch(text.splitlines(), settings.event_prefix)
    else:
        if not type_:
            raise click.UsageError("give TYPE (e.g. build.start) or --file")
        try:
            data = json.loads(data_json)
        except ValueError as exc:
            raise ConfigError(f"--data is not valid JSON: {exc}") from None
        except RecursionError:
            raise ConfigError("--data is not valid JSON: nested too deeply") from None
        events = [build_event(type_, source, subject, data, settings.event_prefix)]
    client = BrokerClient(settings.broker_url, settings.token, namespace=namespace, broker=broker)
    try:
        for event in events:
            click.echo(client.publish_sync(event, mode))
    finally:
        client.close()


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"cannot read {path}: not UTF-8 text") from None


# --- triggers --------------------------------------------------------------------------

COLUMNS = (
    ("NAME", "name"), ("BROKER", "broker"), ("FILTER", "filter"), ("SUBSCRIBER", "subscriber"),
    ("DEPTH", "queue_depth"), ("DELIVERED", "delivered"), ("RETRIED", "retried"),
    ("DEAD-LETTERED", "dead_lettered"),
)


def format_triggers(items: list[dict[str, Any]], max_width: int = 48) -> str:
    """The ``kl triggers`` table (pure: items in, text out)."""

    def cell(item: dict[str, Any], key: str) -> str:
        value = item.get(key)
        if key == "name" and item.get("namespace", "default") != "default":
            value = f"{item['namespace']}/{value}"
        text = "-" if value is None else str(value)
        return text if len(text) <= max_width else text[: max_width - 1] + "…"

    rows = [[h for h, _ in COLUMNS]] + [[cell(i, k) for _, k in COLUMNS] for i in items]
    widths = [max(len(r[c]) for r in rows) for c in range(len(COLUMNS))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    if not items:
        lines.append("(no triggers)")
    return "\n".join(lines)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="print the broker's JSON instead of a table")
@click.option("--state", default=None, help=f"state file written by kl up [default: {DEFAULT_STATE}]")
def triggers(as_json: bool, state: str | None) -> None:
    """List triggers with queue depth and delivered / retried / dead-lettered counts."""
    from knative_lambda.platform.broker.client import BrokerClient

    settings = load_settings(state)
    client = BrokerClient(settings.broker_url, settings.token)
    try:
        items = client.list_triggers()
    finally:
        client.close()
    click.echo(json.dumps(items, indent=2) if as_json else format_triggers(items))
