"""The ``kl`` command.

Subcommands live beside the code they drive and are imported only when used, so
``kl --help`` stays fast and one broken backend cannot break the others.
"""

from __future__ import annotations

import importlib
import sys

import click

from knative_lambda.errors import KLError

# name -> "module:attribute" of a click command
COMMANDS: dict[str, str] = {
    "up": "knative_lambda.harness.commands:up",
    "down": "knative_lambda.harness.commands:down",
    "status": "knative_lambda.harness.commands:status",
    "emit": "knative_lambda.platform.broker.commands:emit",
    "triggers": "knative_lambda.platform.broker.commands:triggers",
    "build": "knative_lambda.platform.builder.commands:build",
    "functions": "knative_lambda.platform.serving.commands:functions",
    "invoke": "knative_lambda.platform.serving.commands:invoke",
    "conformance": "knative_lambda.harness.conformance:conformance",
    "bench": "knative_lambda.bench.commands:bench",
    "gate": "knative_lambda.bench.commands:gate",
    "report": "knative_lambda.bench.commands:report",
    "chaos": "knative_lambda.chaos.commands:chaos",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name for name in COMMANDS if self._load(name) is not None)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        return self._load(name)

    @staticmethod
    def _load(name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):
                return None  # not built yet
            raise
        return getattr(module, attr, None)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="knative-lambda-harness")
def cli() -> None:
    """Knative Lambda harness: bring a platform up, load it, break it, gate on budgets."""


def main() -> None:
    try:
        code = cli.main(standalone_mode=False)
        if isinstance(code, int):
            sys.exit(code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KLError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
