"""``kl build PATH --tp T --parser P``: upload a function, start its build, follow it to the end.

Exit code 0 when the build succeeded, 1 when it failed or timed out; a problem
before the build started (no platform, bad path) is a one-line error (exit 2).
"""

from __future__ import annotations

import gzip
import io
import tarfile
import time
from pathlib import Path
from typing import Any

import click
import httpx

from knative_lambda.contract import keys, names
from knative_lambda.contract.events import BuildRequest, EventKind, tenant_source
from knative_lambda.contract.factory import new_correlation_id, new_event
from knative_lambda.errors import ConfigError, PlatformError
from knative_lambda.platform.builder import source
from knative_lambda.settings import Settings

SKIP_DIRS = {"__pycache__", ".git", ".venv", ".mypy_cache", ".pytest_cache"}
RESULT_FIELDS = ("third_party_id", "parser_id", "content_hash", "job_name", "image_uri", "status",
                 "error_message", "exit_code", "duration", "correlation_id", "cached", "artifact", "runtime")


def pack(path: Path) -> tuple[bytes, str]:
    """The bytes to upload and their file name: a file as is, a directory as a tar.gz."""
    if path.is_file():
        return path.read_bytes(), path.name
    if not path.is_dir():
        raise ConfigError(f"{path} is neither a file nor a directory")
    buffer = io.BytesIO()

    def plain(info: tarfile.TarInfo) -> tarfile.TarInfo:
        # Content only: the same files give the same bytes, hence the same content hash (cache hit).
        info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
        return info

    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as gz, tarfile.open(fileobj=gz, mode="w") as tar:
        for item in sorted(path.rglob("*")):
            rel = item.relative_to(path)
            if any(p in SKIP_DIRS for p in rel.parts) or item.is_symlink() or not item.is_file():
                continue  # links are refused by the builder anyway; send only regular files
            tar.add(item, arcname=rel.as_posix(), recursive=False, filter=plain)
    return buffer.getvalue(), path.name + ".tar.gz"


def load_settings(state: str | None) -> Settings:
    from knative_lambda.harness.state import settings_from_state

    return settings_from_state(state)


ARRIVAL_TIMEOUT = 30.0  # the broker delivers in milliseconds; 30 s without a record means it never will


def follow(settings: Settings, cid: str, timeout: float, echo: Any = click.echo) -> dict[str, Any]:
    """Poll the builder's API until the build ends; prints each new phase; returns the result."""
    if not settings.builder_url:
        raise ConfigError("no builder URL in the state file: is the builder running? (kl status)")
    headers = {"Authorization": f"Bearer {settings.token}"} if settings.token else {}
    url = f"{settings.builder_url.rstrip('/')}/apis/v1/builds/{cid}"
    start = time.monotonic()
    deadline = start + timeout
    last_phase = None
    with httpx.Client(timeout=5.0, headers=headers) as client:
        while time.monotonic() < deadline:
            try:
                resp = client.get(url)
            except httpx.HTTPError as exc:
                raise PlatformError(f"builder at {settings.builder_url} unreachable ({exc})") from None
            if resp.status_code == 200:
                record = resp.json()
                if record["phase"] != last_phase:
                    last_phase = record["phase"]
                    echo(f"  {last_phase}")
                if record.get("result") is not None and record.get("ended"):
                    return record["result"]
            elif resp.status_code == 401:
                raise ConfigError("the builder refused the token (401): check the state file")
            elif time.monotonic() - start > min(ARRIVAL_TIMEOUT, timeout):
                raise PlatformError(
                    f"the builder has not received build {cid} after {ARRIVAL_TIMEOUT:g}s: "
                    "is its trigger registered? (kl triggers, kl status)"
                )
            time.sleep(0.1)
    raise PlatformError(f"build {cid} did not finish within {timeout:g}s (still running on the builder)")


@click.command("build")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--tp", "third_party_id", required=True, help="Third party id (DNS label).")
@click.option("--parser", "parser_id", required=True, help="Parser id (DNS label).")
@click.option("--runtime", type=click.Choice(["auto", "python", "node"]), default="auto", show_default=True)
@click.option("--rebuild", is_flag=True, help="Send rebuild.start: build even if cached.")
@click.option("--priority", type=click.IntRange(1, 10), default=None, help="Send job.start with this priority.")
@click.option("--state", default=None, help="State file of the platform (default .kl/env.json).")
@click.option("--timeout", type=float, default=1900.0, show_default=True, help="Seconds to follow the build.")
def build(path: Path, third_party_id: str, parser_id: str, runtime: str, rebuild: bool,
          priority: int | None, state: str | None, timeout: float) -> int:
    """Upload PATH (a .py/.js file or a directory) and build it; exit 0 on success, 1 on failure."""
    for label, value in (("--tp", third_party_id), ("--parser", parser_id)):
        if not names.is_dns1123_label(value):
            raise ConfigError(f"{label} {value!r} must be a DNS label: lowercase letters, digits and '-'")
    settings = load_settings(state)
    data, filename = pack(path)
    key = keys.source_key(parser_id)
    meta = {"filename": filename} | ({"runtime": runtime} if runtime != "auto" else {})
    source.upload(source.make_client(settings), settings.source_bucket, key, data, meta)
    digest = keys.content_hash(data)
    click.echo(f"uploaded {filename} ({len(data)} bytes, hash {digest}) to s3://{settings.source_bucket}/{key}")

    kind = EventKind.REBUILD_START if rebuild else EventKind.JOB_START if priority else EventKind.BUILD_START
    cid = new_correlation_id()
    request = BuildRequest(third_party_id, parser_id, content_hash=digest,
                           parameters={"runtime": runtime, "filename": filename}, priority=priority)
    event = new_event(kind, request, source=tenant_source(third_party_id), subject=parser_id,
                      prefix=settings.event_prefix, correlation_id=cid,
                      extensions={"thirdpartyid": third_party_id, "parserid": parser_id})
    from knative_lambda.platform.broker.client import BrokerClient

    client = BrokerClient(settings.broker_url, settings.token, namespace=settings.namespace)
    try:
        client.publish_sync(event)
    finally:
        client.close()
    click.echo(f"sent {event.get_type()} (correlation id {cid})")
    result = follow(settings, cid, timeout)
    outcome = {"succeeded": "build.complete", "timeout": "build.timeout"}.get(result.get("status"), "build.failed")
    click.echo(outcome)
    for field in RESULT_FIELDS:
        if field in result:
            click.echo(f"  {field}: {result[field]}")
    return 0 if result.get("status") == "succeeded" else 1
