"""Shared fixtures: one RabbitMQ and one S3 API server for the whole test session.

``rabbitmq`` honours ``KL_AMQP_URL`` and ``s3`` honours ``KL_S3_ENDPOINT`` (+ keys):
set them to test against servers you already run. Otherwise a private RabbitMQ
node and an S3 server (minio if on PATH, else the embedded moto server) are
started once and stopped at the end. When no RabbitMQ can be had at all, tests
that need it are skipped with the one-line reason; a server that is there but
fails to start is an error.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from knative_lambda.errors import ServiceUnavailable
from knative_lambda.harness.services import (
    Service,
    boto3_client,
    resolve_rabbitmq,
    resolve_s3,
    with_services,
)
from knative_lambda.settings import Settings


@pytest.fixture(scope="session")
def rabbitmq(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    try:
        service = resolve_rabbitmq(os.environ, tmp_path_factory.mktemp("rabbitmq"))
    except ServiceUnavailable as exc:
        pytest.skip(str(exc))
    service.start()
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture(scope="session")
def amqp_url(rabbitmq: Service) -> str:
    return rabbitmq.url()


@pytest.fixture(scope="session")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    service = resolve_s3(os.environ, tmp_path_factory.mktemp("s3"))
    service.start()
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture(scope="session")
def s3_client(s3: Service) -> Any:
    """A boto3 S3 client for the session's S3 server (buckets kl-source and kl-temp exist)."""
    return boto3_client(s3.describe())


@pytest.fixture(scope="session")
def service_settings(
    rabbitmq: Service, s3: Service, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    """Settings pointing at the session's RabbitMQ and S3 (other fields at their defaults)."""
    source, temp = s3.describe()["buckets"]
    base = Settings(
        source_bucket=source, temp_bucket=temp, data_dir=tmp_path_factory.mktemp("kl-data")
    )
    return with_services(base, rabbitmq, s3)
