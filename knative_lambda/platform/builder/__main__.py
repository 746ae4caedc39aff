"""``python -m knative_lambda.platform.builder``: the builder process of the local target."""

from __future__ import annotations

import sys

from knative_lambda.errors import KLError
from knative_lambda.platform.builder.app import make_app
from knative_lambda.platform.builder.config import BuilderConfig
from knative_lambda.platform.builder.metrics import register_process_metrics
from knative_lambda.platform.http import run_app
from knative_lambda.platform.observe import setup_process
from knative_lambda.settings import Settings


def main() -> int:
    try:
        settings = Settings.from_env()
        setup_process("builder", settings)
        register_process_metrics()
        app = make_app(settings, BuilderConfig.from_env())
    except KLError as exc:
        print(f"builder: {exc}", file=sys.stderr)
        return 2
    run_app(app, settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
