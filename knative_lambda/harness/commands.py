"""``kl up``, ``kl status``, ``kl down``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from knative_lambda.harness import state as statefile

state_option = click.option(
    "--state", "state_path", type=click.Path(path_type=Path), default=None,
    help="State file written by 'kl up' [default: $KL_STATE or .kl/env.json].",
)


def _state_path(value: Path | None) -> Path:
    return value or statefile.default_state_path()


@click.command()
@click.option("--target", type=click.Choice(["local", "kind", "cluster"]), default="local",
              show_default=True, help="Which platform to bring up.")
@click.option("--dry-run", is_flag=True, help="kind: print every manifest and command, apply nothing.")
@click.option("--open", "open_access", is_flag=True,
              help="No token: management APIs, broker ingress and receivers open to anyone "
                   "on this machine (default: a generated token, kept in the state file).")
@click.option("--faults", is_flag=True,
              help="Put fault proxies on the platform's links to RabbitMQ and S3 (for chaos).")
@state_option
def up(target: str, dry_run: bool, open_access: bool, faults: bool, state_path: Path | None) -> None:
    """Start the platform and record it in the state file.

    Safe to run twice: a healthy platform is left alone, stale state from a
    crashed run is cleaned up first. The management APIs and the broker ingress
    require the bearer token that the state file holds (every kl command sends
    it); --open starts without one ($KL_TOKEN, when set, is used as the token).
    """
    if target == "kind":
        from knative_lambda.harness.targets import kind

        options = kind.options_from()
        if dry_run:
            click.echo(kind.dry_run(options))
            return
        kind.up(options, state_path=_state_path(state_path))
        return
    if target == "cluster":
        raise click.UsageError(
            "the cluster target is not started by kl: point KL_* settings at it "
            "(see README, 'Targets') and use --target cluster with bench/conformance"
        )
    if dry_run:
        raise click.UsageError("--dry-run applies to --target kind")
    from knative_lambda.harness import local

    local.up(_state_path(state_path), open_access=open_access, faults=faults)


@click.command()
@state_option
def down(state_path: Path | None) -> None:
    """Stop everything 'kl up' started and remove the state file."""
    path = _state_path(state_path)
    if path.exists() and statefile.load(path).target == "kind":
        from knative_lambda.harness.targets import kind

        kind.down(state_path=path)
        return
    from knative_lambda.harness import local

    local.down(path)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@state_option
def status(as_json: bool, state_path: Path | None) -> None:
    """Health of each part of the running platform (exit 1 when any is unhealthy)."""
    from knative_lambda.harness import local

    state = statefile.load(_state_path(state_path))
    from knative_lambda.harness.headline import render

    report = local.health(state)
    numbers = local.headlines(state) if state.target == "local" else {}
    urls = {name: desc.get("url", "") for name, desc in state.services.items()}
    urls.update({name: rec.get("url", "") for name, rec in state.components.items()})
    rows = [
        {"part": name, "healthy": ok, "detail": detail, "url": urls.get(name, ""),
         **({"metrics": numbers[name]} if name in numbers else {})}
        for name, (ok, detail) in report.items()
    ]
    if as_json:
        click.echo(json.dumps({"target": state.target, "parts": rows}, indent=2))
    else:
        width = max((len(r["part"]) for r in rows), default=4)
        click.echo(f"{'PART':<{width}}  {'HEALTH':<9}  {'URL':<28}  DETAIL")
        for r in rows:
            health = "healthy" if r["healthy"] else "UNHEALTHY"
            extra = f"; {render(r['metrics'])}" if r.get("metrics") else ""
            click.echo(f"{r['part']:<{width}}  {health:<9}  {r['url']:<28}  {r['detail']}{extra}")
    if not all(r["healthy"] for r in rows):
        sys.exit(1)
