"""``python -m knative_lambda.platform.deployer``: the deployer of the local target."""

from __future__ import annotations

import sys

from knative_lambda.errors import KLError
from knative_lambda.platform.deployer.app import DeployerOptions, create_app
from knative_lambda.platform.http import run_app
from knative_lambda.platform.observe import setup_process
from knative_lambda.settings import Settings


def main() -> int:
    try:
        settings = Settings.from_env()
        setup_process("deployer", settings)
        run_app(create_app(settings, DeployerOptions.from_env()), settings)
    except KLError as e:
        print(f"deployer: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
