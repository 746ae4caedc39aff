"""The build context: what a docker/kaniko build needs, as one deterministic tar.gz.

Layout (uploaded to ``build-context/<parser_id>/context.tar.gz`` in the temp bucket):

    Dockerfile                generated from templates/Dockerfile.<runtime>
    build-config.json         who/what/where: ids, hash, runtime, entry, image, base
    requirements.txt | package.json   the dependency manifest, when the function has one
    function/...              the function's code as extracted
    deps/...                  vendored dependencies (docker backend: installed by the builder)
    kl_invoke.py | .js        one-shot runner (stdlib only) used to smoke-test an artifact
    knative_lambda/platform/runtime/...   the in-instance wrapper (owned by platform.runtime)

Entries are sorted with zeroed owners and times, so the same inputs give the
same bytes (and the same key in a registry cache).
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from dataclasses import asdict, dataclass
from pathlib import Path

from knative_lambda.platform.builder.runtimes import FunctionSpec

TEMPLATES = Path(__file__).parent / "templates"
RUNTIME_DIR = Path(__file__).resolve().parents[1] / "runtime"  # knative_lambda/platform/runtime
_WRAPPER_SKIP = ("__pycache__",)


@dataclass(frozen=True)
class BuildConfig:
    third_party_id: str
    parser_id: str
    content_hash: str
    runtime: str
    entry: str
    export: str
    deps: str | None
    image_uri: str
    job_name: str
    base_image: str
    backend: str
    runtime_wrapper: str  # "included" or "missing" (platform/runtime not written yet)

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), indent=2, sort_keys=True).encode() + b"\n"


def deps_step(spec: FunctionSpec, vendored: bool) -> str:
    """The Dockerfile lines that put dependencies into the image."""
    if spec.deps is None:
        return "# no dependency manifest"
    if vendored:  # installed by the builder (offline-friendly: the base needs no pip/npm)
        return "COPY deps/ /app/deps/" if spec.runtime == "python" else "# node_modules vendored in function/"
    if spec.runtime == "python":
        return (
            "COPY requirements.txt /app/requirements.txt\n"
            "RUN python3 -m pip install --no-cache-dir --target /app/deps -r /app/requirements.txt"
        )
    return (
        "COPY package.json /app/function/package.json\n"
        "RUN cd /app/function && npm install --omit=dev --no-audit --no-fund"
    )


def dockerfile(spec: FunctionSpec, config: BuildConfig, vendored: bool = False) -> str:
    template = (TEMPLATES / f"Dockerfile.{spec.runtime}").read_text()
    return template.format(
        base_image=config.base_image,
        entry=spec.entry,
        parser_id=config.parser_id,
        third_party_id=config.third_party_id,
        content_hash=config.content_hash,
        deps_step=deps_step(spec, vendored),
    )


def wrapper_files(runtime_dir: Path = RUNTIME_DIR) -> dict[str, Path]:
    """Archive path -> file for the runtime wrapper (plus package markers to import it)."""
    files: dict[str, Path] = {}
    if runtime_dir.is_dir():
        for path in sorted(runtime_dir.rglob("*")):
            if path.is_file() and not any(p in path.parts for p in _WRAPPER_SKIP):
                files[f"knative_lambda/platform/runtime/{path.relative_to(runtime_dir).as_posix()}"] = path
    return files


def wrapper_state(runtime_dir: Path = RUNTIME_DIR) -> str:
    files = wrapper_files(runtime_dir)
    return "included" if any(not k.endswith("/__init__.py") for k in files) else "missing"


def _add(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), mode, 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    tar.addfile(info, io.BytesIO(data))


def _tree(root: Path, prefix: str) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    if root.is_dir():
        for path in sorted(root.rglob("*")):
            if path.is_file() and not path.is_symlink() and "__pycache__" not in path.parts:
                out[f"{prefix}/{path.relative_to(root).as_posix()}"] = path.read_bytes()
    return out


def assemble(code_dir: Path, spec: FunctionSpec, config: BuildConfig, deps_dir: Path | None = None) -> bytes:
    """The context tar.gz for ``code_dir`` (the function) and optional vendored ``deps_dir``."""
    entries: dict[str, bytes] = {
        "Dockerfile": dockerfile(spec, config, vendored=deps_dir is not None).encode(),
        "build-config.json": config.to_json(),
        "kl_invoke.py": (TEMPLATES / "kl_invoke.py.tmpl").read_bytes(),
        "kl_invoke.js": (TEMPLATES / "kl_invoke.js").read_bytes(),
        "knative_lambda/__init__.py": b"",
        "knative_lambda/platform/__init__.py": b"",
    }
    if spec.deps:
        entries[spec.deps] = (code_dir / spec.deps).read_bytes()
    for name, path in wrapper_files().items():
        entries[name] = path.read_bytes()
    entries.update(_tree(code_dir, "function"))
    if deps_dir is not None:
        entries.update(_tree(deps_dir, "deps"))
    buffer = io.BytesIO()
    # mtime=0 in the gzip header too, so equal inputs give equal bytes.
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0, compresslevel=6) as gz, tarfile.open(
        fileobj=gz, mode="w", format=tarfile.PAX_FORMAT
    ) as tar:
        for name in sorted(entries):
            _add(tar, name, entries[name])
    return buffer.getvalue()
