from __future__ import annotations

from pathlib import Path

import pytest

from knative_lambda.harness.kube import knative_schemas_dir


@pytest.fixture(scope="session")
def schemas_dir() -> Path:
    found = knative_schemas_dir()
    if found is None:
        pytest.skip(
            "Knative CRD schemas not found: set KL_SCHEMAS_DIR or check out shared/ beside the repo"
        )
    return found
