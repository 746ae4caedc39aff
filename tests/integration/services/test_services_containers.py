"""Container providers: run only where a Docker engine and the images are present (no pulls)."""

from __future__ import annotations

import json

import pytest

from knative_lambda.harness.services import attach
from knative_lambda.harness.services.containers import docker_problem
from knative_lambda.harness.services.rabbitmq import IMAGE as RABBITMQ_IMAGE
from knative_lambda.harness.services.rabbitmq import RabbitMQContainer
from knative_lambda.harness.services.s3 import MINIO_IMAGE, MinioContainer

pytestmark = pytest.mark.docker


def _needs(image: str) -> None:
    problem = docker_problem(image)
    if problem:
        pytest.skip(problem)


def test_rabbitmq_container_lifecycle() -> None:
    _needs(RABBITMQ_IMAGE)
    service = RabbitMQContainer()
    service.start()
    try:
        assert service.health()[0]
        service.restart()
        assert service.health()[0]
    finally:
        attach(json.loads(json.dumps(service.describe()))).stop()
    assert not service.health()[0]


def test_minio_container_lifecycle() -> None:
    _needs(MINIO_IMAGE)
    service = MinioContainer()
    service.start()
    try:
        client = service.client()
        client.put_object(Bucket="kl-source", Key="k", Body=b"v")
        service.restart()
        assert service.client().get_object(Bucket="kl-source", Key="k")["Body"].read() == b"v"
    finally:
        attach(json.loads(json.dumps(service.describe()))).stop()
    assert not service.health()[0]
