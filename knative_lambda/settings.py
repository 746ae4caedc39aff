"""Platform settings, read once from the environment.

Every platform process is started by the harness with these variables set, so a
process needs nothing but its environment. Names mirror the original platform's
where it had one (``KL_EVENT_PREFIX``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_PREFIX = "network.notifi.lambda"


def _env(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


@dataclass(frozen=True)
class Settings:
    event_prefix: str = DEFAULT_PREFIX
    amqp_url: str = ""
    s3_endpoint: str = ""
    s3_access_key: str = ""
    s3_secret_key: str = ""
    s3_region: str = "us-east-1"
    source_bucket: str = "kl-source"
    temp_bucket: str = "kl-temp"
    registry: str = "localhost:5000"
    namespace: str = "default"
    broker_url: str = ""  # base URL of the broker process (ingress + trigger API)
    builder_url: str = ""
    gateway_url: str = ""  # base URL of the gateway (management API under /apis)
    token: str = ""  # bearer token for management APIs and ingress; empty = open
    data_dir: Path = field(default_factory=lambda: Path(".kl"))
    port: int = 0  # the port this process listens on

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            event_prefix=_env("KL_EVENT_PREFIX", DEFAULT_PREFIX),
            amqp_url=_env("KL_AMQP_URL"),
            s3_endpoint=_env("KL_S3_ENDPOINT"),
            s3_access_key=_env("KL_S3_ACCESS_KEY"),
            s3_secret_key=_env("KL_S3_SECRET_KEY"),
            s3_region=_env("KL_S3_REGION", "us-east-1"),
            source_bucket=_env("KL_SOURCE_BUCKET", "kl-source"),
            temp_bucket=_env("KL_TEMP_BUCKET", "kl-temp"),
            registry=_env("KL_REGISTRY", "localhost:5000"),
            namespace=_env("KL_NAMESPACE", "default"),
            broker_url=_env("KL_BROKER_URL"),
            builder_url=_env("KL_BUILDER_URL"),
            gateway_url=_env("KL_GATEWAY_URL"),
            token=_env("KL_TOKEN"),
            data_dir=Path(_env("KL_DATA_DIR", ".kl")),
            port=int(_env("KL_PORT", "0") or 0),
        )

    def to_env(self) -> dict[str, str]:
        """The inverse of :meth:`from_env`: what a child process needs."""
        return {
            "KL_EVENT_PREFIX": self.event_prefix,
            "KL_AMQP_URL": self.amqp_url,
            "KL_S3_ENDPOINT": self.s3_endpoint,
            "KL_S3_ACCESS_KEY": self.s3_access_key,
            "KL_S3_SECRET_KEY": self.s3_secret_key,
            "KL_S3_REGION": self.s3_region,
            "KL_SOURCE_BUCKET": self.source_bucket,
            "KL_TEMP_BUCKET": self.temp_bucket,
            "KL_REGISTRY": self.registry,
            "KL_NAMESPACE": self.namespace,
            "KL_BROKER_URL": self.broker_url,
            "KL_BUILDER_URL": self.builder_url,
            "KL_GATEWAY_URL": self.gateway_url,
            "KL_TOKEN": self.token,
            "KL_DATA_DIR": str(self.data_dir),
            "KL_PORT": str(self.port),
        }
