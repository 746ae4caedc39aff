"""Local backend: the artifact is the function's code plus an isolated environment.

Python without requirements shares the platform interpreter (nothing to build,
so an uncached single-file build costs a check and a copy); with requirements
it gets its own ``uv venv`` filled by ``uv pip install`` (uv's cache makes that
fast). Node gets ``npm install --omit=dev`` in its code dir when package.json
declares dependencies and no node_modules came with the archive.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import sysconfig
from pathlib import Path
from typing import Any

from knative_lambda.platform.builder import proc
from knative_lambda.platform.builder.backends.base import BuildInput
from knative_lambda.platform.builder.config import BuilderConfig
from knative_lambda.platform.builder.errors import BuildFailed, DependencyFailed, FunctionInvalid
from knative_lambda.settings import Settings

_PIP_REASON = re.compile(r"^\s*(error|cause|hint|×|╰─▶|ERROR)[:\s]", re.I)


def pip_reason(output: str) -> str:
    """The lines of uv/pip output that say why an install failed, as one line."""
    lines = output.strip().splitlines()
    # From the first error line on (uv wraps its explanation over indented lines).
    start = next((i for i, line in enumerate(lines) if _PIP_REASON.match(line)), None)
    text = " ".join(lines[start:]) if start is not None else proc.tail(output, 4).replace("\n", " ")
    return re.sub(r"\s+", " ", text).strip()[:600]


def npm_reason(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.startswith("npm ERR!") or line.startswith("npm error")]
    return re.sub(r"\s+", " ", " ".join(lines[:6]) or proc.tail(output, 4))[:600]


def node_dependencies(package_json: Path) -> dict[str, Any]:
    try:
        data = json.loads(package_json.read_text())
    except (OSError, ValueError):
        raise FunctionInvalid("package.json is not valid JSON") from None
    deps = data.get("dependencies") if isinstance(data, dict) else None
    return deps if isinstance(deps, dict) else {}


def _uv() -> str:
    found = shutil.which("uv") or str(Path(sys.executable).with_name("uv"))
    return found


async def install_python(requirements: Path, env_dir: Path, offline: bool, target: bool = False) -> Path:
    """Install ``requirements`` into a new venv at ``env_dir`` (or as a plain ``--target`` dir).

    Returns the site-packages dir. DependencyFailed carries uv's reason.
    """
    uv = _uv()
    flags = ["--offline"] if offline else []
    try:
        if target:
            argv = [uv, "pip", "install", "--python", sys.executable, "--target", str(env_dir), "-q", "-r", str(requirements)]
            site = env_dir
        else:
            rc, out = await proc.run([uv, "venv", "-q", "--python", sys.executable, str(env_dir)])
            if rc != 0:
                raise BuildFailed(f"cannot create a venv: {pip_reason(out)}")
            argv = [uv, "pip", "install", "--python", str(env_dir / "bin" / "python"), "-q", "-r", str(requirements)]
            site = env_dir / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages"
        rc, out = await proc.run(argv + flags)
    except FileNotFoundError:
        raise BuildFailed("uv is not installed on the builder (pip install uv)") from None
    if rc != 0:
        raise DependencyFailed(f"installing requirements.txt failed: {pip_reason(out)}")
    return site


async def install_node(code_dir: Path, offline: bool) -> None:
    if (code_dir / "node_modules").is_dir() or not node_dependencies(code_dir / "package.json"):
        return  # vendored, or nothing to install: no npm run (and no network)
    argv = ["npm", "install", "--omit=dev", "--no-audit", "--no-fund", "--loglevel=error"]
    try:
        rc, out = await proc.run(argv + (["--offline"] if offline else []), cwd=str(code_dir))
    except FileNotFoundError:
        raise BuildFailed("npm is not installed on the builder (install nodejs/npm)") from None
    if rc != 0:
        raise DependencyFailed(f"npm install failed: {npm_reason(out)}")


class LocalBackend:
    name = "local"

    def __init__(self, config: BuilderConfig, settings: Settings) -> None:
        self.config = config
        self.settings = settings

    def base(self, runtime: str) -> str:
        if runtime == "python":
            return f"python{sys.version_info[0]}.{sys.version_info[1]}:{sys.executable}"
        return f"node:{shutil.which('node') or 'node'}"

    async def build(self, job: BuildInput) -> dict[str, Any]:
        code = job.code_dir
        spec = job.spec
        if spec.runtime == "python":
            # Paths are relative to the artifact dir: it is built under a staging name.
            pythonpath = ["code"]
            env_python = None
            if spec.deps:
                site = await install_python(code / spec.deps, job.artifact_dir / "env", self.config.offline)
                pythonpath.append(site.relative_to(job.artifact_dir).as_posix())
                env_python = "env/bin/python"
            return {
                "python": sys.executable,  # the platform interpreter runs the wrapper...
                "pythonpath": pythonpath,  # ...with the code and its own deps first on the path
                "env_python": env_python,
                "stdlib": sysconfig.get_paths()["stdlib"],
            }
        if spec.deps:
            await install_node(code, self.config.offline)
        return {"node": shutil.which("node") or "node", "node_path": ["code/node_modules"]}
