"""``kl functions`` and ``kl invoke``: the gateway's management API and data plane from the CLI."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
import httpx

from knative_lambda.errors import ConfigError, PlatformError, ServiceUnavailable
from knative_lambda.settings import Settings


def _settings(state_path: str | None) -> Settings:
    from knative_lambda.harness import state as state_mod

    settings = state_mod.load(Path(state_path) if state_path else None).platform_settings()
    if not settings.gateway_url:
        raise ConfigError("the platform state has no gateway_url: run 'kl up' (local target) first")
    return settings


def _request(settings: Settings, method: str, path: str, **kw: Any) -> httpx.Response:
    headers = kw.pop("headers", {})
    if settings.token:
        headers["Authorization"] = f"Bearer {settings.token}"
    try:
        return httpx.request(method, settings.gateway_url.rstrip("/") + path, headers=headers, **kw)
    except httpx.HTTPError as exc:
        raise ServiceUnavailable(f"gateway at {settings.gateway_url} not reachable ({exc}); is 'kl up' running?") from None


def table(view: dict[str, Any]) -> list[str]:
    """Rows of services, revisions and instances (pure: for tests and printing)."""
    rows = [f"{'SERVICE':<40} {'REVISION':<36} {'TRAFFIC':<7} {'DESIRED':>7} {'INSTANCES':>9} {'INFLIGHT':>8} {'REQUESTS':>8}"]
    for svc in view.get("services", []):
        name = f"{svc['namespace']}/{svc['name']}"
        for rev in svc.get("revisions", []):
            live = [i for i in rev.get("instances", []) if i["state"] in ("starting", "ready")]
            rows.append(
                f"{name:<40} {rev['name']:<36} {'*' if rev['name'] == svc.get('traffic_revision') else '':<7} "
                f"{rev['desired']:>7} {len(live):>9} {rev['inflight']:>8} {rev['requests']:>8}"
            )
            for inst in rev.get("instances", []):
                rows.append(f"  {inst['id']:<38} pid {inst['pid']!s:<8} {inst['state']:<9} inflight {inst['inflight']}")
    return rows


@click.command()
@click.option("--json", "as_json", is_flag=True, help="print the management API's JSON")
@click.option("--state", "state_path", default=None, help="state file (default .kl/env.json)")
def functions(as_json: bool, state_path: str | None) -> None:
    """Services, revisions and instances of the local gateway."""
    resp = _request(_settings(state_path), "GET", "/apis/v1/services")
    if resp.status_code != 200:
        raise PlatformError(f"gateway answered {resp.status_code}: {resp.text[:200]}")
    view = resp.json()
    if as_json:
        click.echo(json.dumps(view, indent=2))
        return
    for row in table(view):
        click.echo(row)


@click.command()
@click.argument("name")
@click.option("--data", "data", default="{}", help="JSON input of the function")
@click.option("--namespace", default=None, help="namespace (default: the platform's)")
@click.option("--timeout", default=60.0, show_default=True, help="seconds")
@click.option("--state", "state_path", default=None, help="state file (default .kl/env.json)")
def invoke(name: str, data: str, namespace: str | None, timeout: float, state_path: str | None) -> None:
    """Call function NAME through the gateway with --data and print its result."""
    try:
        payload = json.loads(data)
    except ValueError as exc:
        raise ConfigError(f"--data is not JSON: {exc}") from None
    settings = _settings(state_path)
    ns = namespace or settings.namespace
    resp = _request(settings, "POST", f"/{ns}/{name}/", json=payload, timeout=timeout)
    click.echo(resp.text)
    if resp.status_code >= 400:
        sys.exit(1)
