"""Backing services of the local target: RabbitMQ and an S3 API.

``resolve_rabbitmq`` / ``resolve_s3`` pick a provider by preference order (an
external endpoint from the settings first, then a private process, a container,
and for S3 finally the embedded server) and return it *unstarted*, with its URL
already known. ``attach`` rebuilds a provider from the ``describe()`` dict kept
in the state file, so another process (``kl down``, ``kl status``, chaos) can
stop, restart or probe it.

    from knative_lambda.harness.services import resolve_rabbitmq, attach
    mq = resolve_rabbitmq(os.environ, data_dir); mq.start()
    state["services"]["rabbitmq"] = mq.describe()
    ...
    attach(state["services"]["rabbitmq"]).stop()
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from knative_lambda.errors import ConfigError
from knative_lambda.harness.services.base import Service
from knative_lambda.harness.services.ports import free_port, free_ports
from knative_lambda.harness.services.rabbitmq import (
    ExternalRabbitMQ,
    RabbitMQContainer,
    RabbitMQNode,
    pick_rabbitmq,
)
from knative_lambda.harness.services.s3 import (
    EmbeddedS3,
    ExternalS3,
    MinioContainer,
    MinioProcess,
    boto3_client,
    pick_s3,
)
from knative_lambda.settings import Settings

__all__ = [
    "Service",
    "attach",
    "boto3_client",
    "free_port",
    "free_ports",
    "resolve_rabbitmq",
    "resolve_s3",
    "with_services",
]

# (name, kind) -> provider class; every class has from_description(dict).
PROVIDERS: dict[tuple[str, str], Any] = {
    ("rabbitmq", "external"): ExternalRabbitMQ,
    ("rabbitmq", "process"): RabbitMQNode,
    ("rabbitmq", "container"): RabbitMQContainer,
    ("s3", "external"): ExternalS3,
    ("s3", "process"): MinioProcess,
    ("s3", "container"): MinioContainer,
    ("s3", "embedded"): EmbeddedS3,
}


def _settings(settings_or_env: Settings | Mapping[str, str]) -> tuple[Settings, Mapping[str, str]]:
    """Settings plus the environment used to look for binaries (PATH)."""
    if isinstance(settings_or_env, Settings):
        return settings_or_env, os.environ
    env = settings_or_env
    defaults = Settings()
    return Settings(
        amqp_url=env.get("KL_AMQP_URL", ""),
        s3_endpoint=env.get("KL_S3_ENDPOINT", ""),
        s3_access_key=env.get("KL_S3_ACCESS_KEY", ""),
        s3_secret_key=env.get("KL_S3_SECRET_KEY", ""),
        s3_region=env.get("KL_S3_REGION", defaults.s3_region) or defaults.s3_region,
        source_bucket=env.get("KL_SOURCE_BUCKET", defaults.source_bucket) or defaults.source_bucket,
        temp_bucket=env.get("KL_TEMP_BUCKET", defaults.temp_bucket) or defaults.temp_bucket,
    ), env


def resolve_rabbitmq(settings_or_env: Settings | Mapping[str, str], data_dir: Path) -> Service:
    """The preferred RabbitMQ provider (not started); raises ServiceUnavailable when none fits."""
    settings, env = _settings(settings_or_env)
    return pick_rabbitmq(settings.amqp_url, Path(data_dir), env)


def resolve_s3(settings_or_env: Settings | Mapping[str, str], data_dir: Path) -> Service:
    """The preferred S3 provider (not started); its start() creates the platform's buckets."""
    settings, env = _settings(settings_or_env)
    return pick_s3(
        settings.s3_endpoint,
        settings.s3_access_key,
        settings.s3_secret_key,
        settings.s3_region,
        (settings.source_bucket, settings.temp_bucket),
        Path(data_dir),
        env,
    )


def with_services(settings: Settings, rabbitmq: Service, s3: Service) -> Settings:
    """``settings`` pointing at these providers (AMQP URL, S3 endpoint, keys, region)."""
    creds = s3.describe()["credentials"]
    return dataclasses.replace(
        settings,
        amqp_url=rabbitmq.url(),
        s3_endpoint=s3.url(),
        s3_access_key=creds["access_key"],
        s3_secret_key=creds["secret_key"],
        s3_region=creds.get("region") or settings.s3_region,
    )


def attach(description: Mapping[str, Any]) -> Service:
    """Rebuild a provider from its ``describe()`` (as stored in the state file)."""
    key = (description.get("name", ""), description.get("kind", ""))
    cls = PROVIDERS.get(key)
    if cls is None:
        raise ConfigError(f"unknown service in the state file: name={key[0]!r} kind={key[1]!r}")
    return cls.from_description(dict(description))
