"""Fixtures of the builder's integration tests: settings on the session's real S3 server."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from knative_lambda.harness.services import Service
from knative_lambda.platform.builder.config import BuilderConfig
from knative_lambda.platform.builder.service import Builder
from knative_lambda.settings import Settings
from tests.conftest import tar_gz  # noqa: F401 - builder tests import it from here

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


@pytest.fixture
def builder_settings(s3: Service, tmp_path: Path) -> Settings:
    desc = s3.describe()
    creds, (source, temp) = desc["credentials"], desc["buckets"]
    return Settings(s3_endpoint=s3.url(), s3_access_key=creds["access_key"], s3_secret_key=creds["secret_key"],
                    s3_region=creds["region"], source_bucket=source, temp_bucket=temp, data_dir=tmp_path / "data")


# Tests install only from uv's local cache (no network); backoff off unless a test wants it.
TEST_CONFIG = BuilderConfig(offline=True, backoff_s=0, max_concurrent=5)


@pytest.fixture
def make_builder(builder_settings: Settings):
    def make(**overrides: Any) -> Builder:
        fields = TEST_CONFIG.__dict__ | overrides
        return Builder(builder_settings, BuilderConfig(**fields))

    return make


@pytest.fixture
def upload(s3_client: Any, builder_settings: Settings):
    """Put a function's source at global/parser/<new id>; returns the parser id."""

    def put(data: bytes, parser_id: str | None = None, metadata: dict[str, str] | None = None) -> str:
        parser_id = parser_id or f"p-{uuid.uuid4().hex[:10]}"
        s3_client.put_object(Bucket=builder_settings.source_bucket, Key=f"global/parser/{parser_id}",
                             Body=data, Metadata=metadata or {})
        return parser_id

    return put


def example(name: str) -> bytes:
    """An example folder as a tar.gz (what `kl build` uploads)."""
    folder = EXAMPLES / name
    return tar_gz({p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()})
