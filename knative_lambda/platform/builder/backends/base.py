"""The one interface every build backend satisfies."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from knative_lambda.platform.builder.context import BuildConfig
from knative_lambda.platform.builder.runtimes import FunctionSpec


@dataclass(frozen=True)
class BuildInput:
    key: str  # artifact key (content hash, runtime, backend, base)
    spec: FunctionSpec
    artifact_dir: Path  # staging dir of the artifact; the function's code is in <artifact_dir>/code
    config: BuildConfig  # ids, hash, image URI, job name, base image
    context_key: str  # where the build context was uploaded in the temp bucket

    @property
    def code_dir(self) -> Path:
        return self.artifact_dir / "code"


class BuildBackend(Protocol):
    name: str

    def base(self, runtime: str) -> str:
        """What the artifact is built on (part of the cache key): interpreter or base image."""
        ...

    async def build(self, job: BuildInput) -> dict[str, Any]:
        """Fill ``job.artifact_dir``; return manifest fields (runtime paths, image...).

        Raises BuildFailed subclasses with a message a person can act on.
        """
        ...
