"""Build backends behind one interface, chosen by ``KL_BUILD_BACKEND``.

    local   (default) isolated env per build in the artifact store: uv venv / node_modules
    docker  docker build of the generated Dockerfile, image named by contract.names.image_uri
    kaniko  a Kubernetes batch/v1 Job running the kaniko executor on the uploaded context
"""

from __future__ import annotations

from knative_lambda.platform.builder.backends.base import BuildBackend, BuildInput
from knative_lambda.platform.builder.config import BuilderConfig
from knative_lambda.settings import Settings

__all__ = ["BuildBackend", "BuildInput", "make_backend"]


def make_backend(config: BuilderConfig, settings: Settings) -> BuildBackend:
    if config.backend == "docker":
        from knative_lambda.platform.builder.backends.docker import DockerBackend

        return DockerBackend(config, settings)
    if config.backend == "kaniko":
        from knative_lambda.platform.builder.backends.kaniko import KanikoBackend

        return KanikoBackend(config, settings)
    from knative_lambda.platform.builder.backends.local import LocalBackend

    return LocalBackend(config, settings)
