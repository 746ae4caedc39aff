"""Builder configuration from ``KL_BUILD_*`` variables (platform URLs come from Settings)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from knative_lambda.errors import ConfigError

BACKENDS = ("local", "docker", "kaniko")


@dataclass(frozen=True)
class BuilderConfig:
    backend: str = "local"
    max_concurrent: int = 5
    backoff_s: float = 300.0
    timeout_s: float = 1800.0
    rate_per_s: float = 20.0  # token bucket: sustained build requests per second
    burst: int = 50
    max_entries: int = 10_000  # archive limits (bombs)
    max_bytes: int = 256 * 1024 * 1024
    max_ratio: float = 200.0
    python_base: str = "kl-base/python:bookworm"  # docker/kaniko base images
    node_base: str = "kl-base/node:bookworm"  # made offline by scripts/docker-setup.sh
    offline: bool = False  # uv --offline / npm --offline: install only from the local cache
    push: bool = False  # docker backend: push the image to its registry (kind: the local registry)
    recent: int = 200  # finished builds kept for GET /apis/v1/builds

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ConfigError(f"KL_BUILD_BACKEND={self.backend!r}: use one of {', '.join(BACKENDS)}")
        if self.max_concurrent < 1:
            raise ConfigError("KL_BUILD_MAX_CONCURRENT must be at least 1")
        if self.timeout_s <= 0:
            raise ConfigError("KL_BUILD_TIMEOUT must be positive (seconds)")

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> BuilderConfig:
        env = dict(os.environ if env is None else env)
        d = cls()

        def num(name: str, default: float, kind: type = float):
            raw = env.get(name, "")
            if raw == "":
                return default
            try:
                return kind(raw)
            except ValueError:
                raise ConfigError(f"{name}={raw!r} is not a number") from None

        return cls(
            backend=env.get("KL_BUILD_BACKEND", d.backend) or d.backend,
            max_concurrent=num("KL_BUILD_MAX_CONCURRENT", d.max_concurrent, int),
            backoff_s=num("KL_BUILD_BACKOFF", d.backoff_s),
            timeout_s=num("KL_BUILD_TIMEOUT", d.timeout_s),
            rate_per_s=num("KL_BUILD_RATE", d.rate_per_s),
            burst=num("KL_BUILD_BURST", d.burst, int),
            max_entries=num("KL_BUILD_MAX_ENTRIES", d.max_entries, int),
            max_bytes=num("KL_BUILD_MAX_BYTES", d.max_bytes, int),
            max_ratio=num("KL_BUILD_MAX_RATIO", d.max_ratio),
            python_base=env.get("KL_BUILD_PYTHON_BASE", d.python_base) or d.python_base,
            node_base=env.get("KL_BUILD_NODE_BASE", d.node_base) or d.node_base,
            offline=env.get("KL_BUILD_OFFLINE", "").lower() in ("1", "true", "yes"),
            push=env.get("KL_BUILD_PUSH", "").lower() in ("1", "true", "yes"),
        )

    def to_env(self) -> dict[str, str]:
        return {
            "KL_BUILD_BACKEND": self.backend,
            "KL_BUILD_MAX_CONCURRENT": str(self.max_concurrent),
            "KL_BUILD_BACKOFF": str(self.backoff_s),
            "KL_BUILD_TIMEOUT": str(self.timeout_s),
            "KL_BUILD_RATE": str(self.rate_per_s),
            "KL_BUILD_BURST": str(self.burst),
            "KL_BUILD_MAX_ENTRIES": str(self.max_entries),
            "KL_BUILD_MAX_BYTES": str(self.max_bytes),
            "KL_BUILD_MAX_RATIO": str(self.max_ratio),
            "KL_BUILD_PYTHON_BASE": self.python_base,
            "KL_BUILD_NODE_BASE": self.node_base,
            "KL_BUILD_OFFLINE": "1" if self.offline else "",
            "KL_BUILD_PUSH": "1" if self.push else "",
        }
