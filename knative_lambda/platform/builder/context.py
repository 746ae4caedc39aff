"""The build context: what a docker/kaniko build needs, as one deterministic tar.gz.

Layout (uploaded to ``build-context/<parser_id>/context.tar.gz`` in the temp bucket):

    Dockerfile                generated from templates/Dockerfile.<runtime>
    build-config.json         who/what/where: ids, hash, runtime, entry, image, base
    requirements.txt | package.json   the dependency manifest, when the function has one
    function/...              the function's code as extracted
    deps/...                  vendored dependencies (docker backend: installed by the builder)
    kl_invoke.py | .js        one-shot runner (stdlib only) used to smoke-test an artifact
    manifest.json             the image's artifact manifest (/app), read by the runtime wrapper
    runtime-requirements.txt  what the Python wrapper imports (aiohttp, cloudevents, dateutil)
    knative_lambda/platform/runtime/...   the in-instance wrapper (owned by platform.runtime),
    knative_lambda/contract/..., settings.py, errors.py   the modules the wrapper imports

Entries are sorted with zeroed owners and times, so the same inputs give the
same bytes (and the same key in a registry cache).
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.metadata
import io
import json
import tarfile
from dataclasses import asdict, dataclass
from pathlib import Path

from knative_lambda.platform.builder.runtimes import FunctionSpec

TEMPLATES = Path(__file__).parent / "templates"
PACKAGE_DIR = Path(__file__).resolve().parents[2]  # knative_lambda/
RUNTIME_DIR = PACKAGE_DIR / "platform" / "runtime"
# What the Python wrapper imports from the project, and from PyPI (pinned to the platform's versions).
WRAPPER_SUPPORT = ("settings.py", "errors.py", "contract", "platform/tracing.py")
WRAPPER_DISTRIBUTIONS = ("aiohttp", "cloudevents", "python-dateutil", "opentelemetry-api",
                         "opentelemetry-sdk")
_WRAPPER_SKIP = ("__pycache__",)


def runtime_requirements() -> str:
    """requirements.txt lines for the wrapper's third-party imports, pinned when installed."""
    lines = []
    for dist in WRAPPER_DISTRIBUTIONS:
        try:
            lines.append(f"{dist}=={importlib.metadata.version(dist)}")
        except importlib.metadata.PackageNotFoundError:
            lines.append(dist)
    return "\n".join(lines) + "\n"


def image_manifest(spec: FunctionSpec) -> bytes:
    """The artifact manifest of the image (/app), in the builder's artifact layout."""
    manifest = {"runtime": spec.runtime, "entry": spec.entry, "export": spec.export, "code": "function",
                "pythonpath": ["function", "deps"], "node_path": ["function/node_modules"], "node": "node"}
    return json.dumps(manifest, indent=2, sort_keys=True).encode() + b"\n"


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


# Bytecode is compiled at build time: the instance user cannot write /app, so otherwise every
# container cold start compiles the wrapper, its packages and the function in memory. The image
# never changes, hence unchecked-hash pycs (no source check at import; and the context's zeroed
# mtimes make timestamp pycs unreliable). A file that does not compile is left to fail if imported.
COMPILE = "RUN python3 -m compileall -q -j 0 --invalidation-mode unchecked-hash {paths} || true"


def deps_step(spec: FunctionSpec, vendored: bool) -> str:
    """The Dockerfile lines that put dependencies into the image."""
    if vendored and spec.runtime == "python":  # installed by the builder: the base needs no pip
        # The wrapper's packages first, compiled: unchanged layers, so docker reuses them across functions.
        return ("COPY runtime-deps/ /app/deps/\n" + COMPILE.format(paths="/app/deps")
                + ("\nCOPY deps/ /app/deps/" if spec.deps else ""))
    if spec.runtime == "python":  # the wrapper's own imports, then the function's requirements
        files = "runtime-requirements.txt" + (" requirements.txt" if spec.deps else "")
        reqs = " -r /app/runtime-requirements.txt" + (" -r /app/requirements.txt" if spec.deps else "")
        return f"COPY {files} /app/\nRUN python3 -m pip install --no-cache-dir --target /app/deps{reqs}"
    if spec.deps is None:
        return "# no dependency manifest"
    if vendored:
        return "# node_modules vendored in function/"
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
        compile_step=compile_step(spec, vendored),
        export=spec.export,
    )


def compile_step(spec: FunctionSpec, vendored: bool) -> str:
    """The Dockerfile line that compiles the wrapper and the function (and vendored function deps)."""
    if spec.runtime != "python":
        return "# node: nothing to compile"
    # pip (unvendored) compiles what it installs; the function's vendored deps came after the runtime's
    return COMPILE.format(paths="/app/knative_lambda /app/function" + (" /app/deps" if vendored and spec.deps else ""))


def wrapper_files(runtime_dir: Path = RUNTIME_DIR, package_dir: Path | None = PACKAGE_DIR) -> dict[str, Path]:
    """Archive path -> file for the runtime wrapper and the project modules it imports."""
    files: dict[str, Path] = {}
    roots = [(runtime_dir, "knative_lambda/platform/runtime")]
    if package_dir is not None:
        roots += [(package_dir / name, f"knative_lambda/{name}") for name in WRAPPER_SUPPORT]
    for root, prefix in roots:
        if root.is_file():
            files[prefix] = root
        elif root.is_dir():
            for path in sorted(root.rglob("*")):
                if path.is_file() and not any(p in path.parts for p in _WRAPPER_SKIP):
                    files[f"{prefix}/{path.relative_to(root).as_posix()}"] = path
    return files


def runtime_files(
    runtime: str, runtime_dir: Path = RUNTIME_DIR, package_dir: Path | None = PACKAGE_DIR,
    templates: Path = TEMPLATES,
) -> dict[str, bytes]:
    """What the builder puts into a ``runtime`` artifact or image besides the function: the wrapper
    (and for Python the project modules it imports and its pinned packages), the templates, and
    this module, which writes the Dockerfile and the image manifest."""
    files = {name: path.read_bytes() for name, path in wrapper_files(runtime_dir, package_dir).items()
             if runtime == "python" or name.endswith("/wrapper.js")}
    for path in sorted(templates.iterdir()):
        if path.is_file() and not (path.name.startswith("Dockerfile.") and path.name != f"Dockerfile.{runtime}"):
            files[f"templates/{path.name}"] = path.read_bytes()
    files["builder/context.py"] = Path(__file__).read_bytes()
    if runtime == "python":
        files["runtime-requirements.txt"] = runtime_requirements().encode()
    return files


def runtime_digest(
    runtime: str, runtime_dir: Path = RUNTIME_DIR, package_dir: Path | None = PACKAGE_DIR,
    templates: Path = TEMPLATES,
) -> str:
    """16 hex of SHA-256 over :func:`runtime_files`: part of the artifact cache key, so an artifact
    (image) built with another wrapper is rebuilt rather than reused."""
    digest = hashlib.sha256()
    for name, data in sorted(runtime_files(runtime, runtime_dir, package_dir, templates).items()):
        digest.update(f"{name}\x00{len(data)}\x00".encode())
        digest.update(data)
    return digest.hexdigest()[:16]


def wrapper_state(runtime_dir: Path = RUNTIME_DIR) -> str:
    files = wrapper_files(runtime_dir, None)
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


def assemble(
    code_dir: Path,
    spec: FunctionSpec,
    config: BuildConfig,
    deps_dir: Path | None = None,
    runtime_deps_dir: Path | None = None,
    level: int = 6,
) -> bytes:
    """The context tar.gz for ``code_dir`` (the function).

    With ``runtime_deps_dir`` (the wrapper's packages) and ``deps_dir`` (the function's),
    installed by the builder, the Dockerfile copies them instead of running pip.
    """
    entries: dict[str, bytes] = {
        "Dockerfile": dockerfile(spec, config, vendored=runtime_deps_dir is not None).encode(),
        "build-config.json": config.to_json(),
        "kl_invoke.py": (TEMPLATES / "kl_invoke.py.tmpl").read_bytes(),
        "kl_invoke.js": (TEMPLATES / "kl_invoke.js").read_bytes(),
        "manifest.json": image_manifest(spec),
        "runtime-requirements.txt": runtime_requirements().encode(),
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
    if runtime_deps_dir is not None:
        entries.update(_tree(runtime_deps_dir, "runtime-deps"))
    buffer = io.BytesIO()
    # mtime=0 in the gzip header too, so equal inputs give equal bytes.
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0, compresslevel=level) as gz, tarfile.open(
        fileobj=gz, mode="w", format=tarfile.PAX_FORMAT
    ) as tar:
        for name in sorted(entries):
            _add(tar, name, entries[name])
    return buffer.getvalue()
