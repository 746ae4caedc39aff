"""Docker backend: ``docker build`` of the generated Dockerfile into ``image_uri``.

Dependencies are installed by the builder (uv ``--target`` / npm) and copied
into the image, so the base needs neither pip nor network: the offline base
made by scripts/docker-setup.sh (debootstrap + docker import) is enough.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
from pathlib import Path
from typing import Any

from knative_lambda.platform.builder import context, proc
from knative_lambda.platform.builder.backends.base import BuildInput
from knative_lambda.platform.builder.backends.local import install_node, install_python
from knative_lambda.platform.builder.config import BuilderConfig
from knative_lambda.platform.builder.errors import BuildFailed
from knative_lambda.settings import Settings


async def engine_reason(docker: str = "docker") -> str | None:
    """None when a Docker engine answers; otherwise why not (for skips and errors)."""
    if shutil.which(docker) is None:
        return "no docker client installed (run scripts/docker-setup.sh)"
    try:
        rc, out = await proc.run([docker, "version", "--format", "{{.Server.Version}}"])
    except FileNotFoundError:
        return "no docker client installed"
    return None if rc == 0 else f"no Docker engine reachable: {proc.tail(out, 2)} (run scripts/docker-setup.sh)"


class DockerBackend:
    name = "docker"

    def __init__(self, config: BuilderConfig, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self._lock = asyncio.Lock()

    async def _runtime_deps(self) -> Path:
        """The Python wrapper's packages, installed once per requirement set and reused."""
        reqs = context.runtime_requirements()
        target = Path(self.settings.data_dir) / "cache" / f"runtime-deps-{hashlib.sha256(reqs.encode()).hexdigest()[:12]}"
        async with self._lock:
            if not target.is_dir():
                staging = target.with_name(target.name + f".tmp-{os.getpid()}")
                shutil.rmtree(staging, ignore_errors=True)
                staging.mkdir(parents=True)
                (staging / "requirements.txt").write_text(reqs)
                await install_python(staging / "requirements.txt", staging / "site", self.config.offline, target=True)
                os.replace(staging / "site", target)
                shutil.rmtree(staging, ignore_errors=True)
        return target

    def base(self, runtime: str) -> str:
        return self.config.python_base if runtime == "python" else self.config.node_base

    async def build(self, job: BuildInput) -> dict[str, Any]:
        reason = await engine_reason()
        if reason:
            raise BuildFailed(f"docker backend: {reason}")
        spec = job.spec
        deps_dir = runtime_deps = None
        if spec.runtime == "python":  # the wrapper's imports (cached) and the function's requirements
            runtime_deps = await self._runtime_deps()
            if spec.deps:
                deps_dir = await install_python(job.code_dir / spec.deps, job.artifact_dir / "deps",
                                                self.config.offline, target=True)
        elif spec.deps:
            await install_node(job.code_dir, self.config.offline)
        data = await asyncio.to_thread(context.assemble, job.code_dir, spec, job.config, deps_dir, runtime_deps, 1)
        ctx = job.artifact_dir / "context.tar.gz"
        ctx.write_bytes(data)
        image = job.config.image_uri
        rc, out = await proc.run(["docker", "build", "-q", "-t", image, "-"], stdin_path=str(ctx))
        if rc != 0:
            raise BuildFailed(f"docker build of {image} failed: {proc.tail(out, 6)}")
        if self.config.push:  # kind/cluster pull from the registry named in the image URI
            rc, pushed = await proc.run(["docker", "push", "-q", image])
            if rc != 0:
                raise BuildFailed(f"docker push of {image} failed: {proc.tail(pushed, 4)}")
        return {"image": image, "image_id": out.strip().splitlines()[-1] if out.strip() else ""}
