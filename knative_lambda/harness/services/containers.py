"""A backing service in a Docker container (used only when an engine and the image are here).

Containers are run through the Docker SDK that testcontainers builds on, with
fixed host ports (so ``restart`` keeps the URL) and without the Ryuk reaper (so
``kl up`` can leave the container running after the CLI exits); ``stop`` removes
it. Images are never pulled: this must work offline, so a missing image is a
reason to skip, said in one line.
"""

from __future__ import annotations

import contextlib
from typing import Any

from knative_lambda.errors import ServiceUnavailable


def docker_problem(image: str) -> str | None:
    """None when a Docker engine answers and ``image`` is present locally, else why not."""
    try:
        import docker

        client = docker.from_env(timeout=3)
        client.ping()
    except Exception as exc:  # any failure means: no usable engine
        return f"no Docker engine reachable ({type(exc).__name__})"
    try:
        client.images.get(image)
    except Exception:
        return f"Docker image {image} is not present locally (pull it first)"
    finally:
        client.close()
    return None


class Container:
    """One container with fixed host port bindings, recreated from its id by ``attach``."""

    def __init__(
        self,
        image: str,
        ports: dict[int, int],
        env: dict[str, str],
        command: list[str] | None = None,
        container_id: str = "",
    ) -> None:
        self.image = image
        self.ports = ports  # container port -> host port
        self.env = env
        self.command = command
        self.container_id = container_id

    def _client(self) -> Any:
        import docker

        return docker.from_env(timeout=10)

    def run(self) -> None:
        problem = docker_problem(self.image)
        if problem:
            raise ServiceUnavailable(problem)
        container = self._client().containers.run(
            self.image,
            command=self.command,
            environment=self.env,
            detach=True,
            ports={f"{c}/tcp": ("127.0.0.1", h) for c, h in self.ports.items()},
            labels={"org.knative-lambda.harness": "service"},
        )
        self.container_id = container.id

    def restart(self) -> None:
        self._client().containers.get(self.container_id).restart(timeout=10)

    def remove(self) -> None:
        if not self.container_id:
            return
        with contextlib.suppress(Exception):  # already gone is fine
            self._client().containers.get(self.container_id).remove(force=True)
        self.container_id = ""
