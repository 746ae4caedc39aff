"""Build context assembly and the kaniko Job manifest."""

from __future__ import annotations

import copy
import io
import json
import shutil
import tarfile

import pytest

from knative_lambda.contract import keys
from knative_lambda.contract.events import BuildRequest
from knative_lambda.platform.builder import context
from knative_lambda.platform.builder.backends import kaniko
from knative_lambda.platform.builder.cache import cache_key
from knative_lambda.platform.builder.config import BuilderConfig
from knative_lambda.platform.builder.errors import BuildFailed
from knative_lambda.platform.builder.runtimes import FunctionSpec
from knative_lambda.platform.builder.service import Builder
from knative_lambda.platform.builder.source import Source
from knative_lambda.settings import Settings


def config(runtime: str = "python", deps: str | None = None) -> context.BuildConfig:
    return context.BuildConfig(
        third_party_id="tp", parser_id="p", content_hash="0123456789ab", runtime=runtime,
        entry="handler.py" if runtime == "python" else "index.js", export="handle", deps=deps,
        image_uri="localhost:5000/knative-lambdas:tp-p-01234567", job_name="build-tp-p-01234567",
        base_image="kl-base/python:bookworm", backend="local", runtime_wrapper="missing",
    )


def members(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}


def test_python_context_layout_and_determinism(tmp_path) -> None:
    (tmp_path / "handler.py").write_text("def handle(e):\n    return 1\n")
    (tmp_path / "requirements.txt").write_text("six\n")
    spec = FunctionSpec("python", "handler.py", "requirements.txt")
    data = context.assemble(tmp_path, spec, config(deps="requirements.txt"))
    files = members(data)
    assert {"Dockerfile", "build-config.json", "requirements.txt", "function/handler.py",
            "function/requirements.txt", "kl_invoke.py"} <= set(files)
    dockerfile = files["Dockerfile"].decode()
    assert dockerfile.startswith("# Generated")
    assert "FROM kl-base/python:bookworm" in dockerfile
    assert ("pip install --no-cache-dir --target /app/deps -r /app/runtime-requirements.txt "
            "-r /app/requirements.txt") in dockerfile
    assert "aiohttp==" in files["runtime-requirements.txt"].decode()
    assert json.loads(files["manifest.json"])["code"] == "function"
    assert "knative_lambda/platform/runtime/__init__.py" in files and "knative_lambda/contract/events.py" in files
    assert json.loads(files["build-config.json"])["content_hash"] == "0123456789ab"
    assert context.assemble(tmp_path, spec, config(deps="requirements.txt")) == data  # same bytes


@pytest.mark.parametrize(
    "runtime, deps, vendored, expected",
    [
        ("python", None, False, "--target /app/deps -r /app/runtime-requirements.txt"),
        ("python", None, True, "COPY runtime-deps/ /app/deps/"),
        ("node", None, False, "# no dependency manifest"),
        ("python", None, True, "COPY runtime-deps/ /app/deps/\nRUN python3 -m compileall -q -j 0 "
                               "--invalidation-mode unchecked-hash /app/deps || true"),
        ("python", "requirements.txt", True, "/app/deps || true\nCOPY deps/ /app/deps/"),
        ("node", "package.json", False, "npm install --omit=dev"),
        ("node", "package.json", True, "vendored"),
    ],
)
def test_deps_step(runtime: str, deps: str | None, vendored: bool, expected: str) -> None:
    spec = FunctionSpec(runtime, "x", deps)
    assert expected in context.deps_step(spec, vendored)


def test_node_dockerfile(tmp_path) -> None:
    (tmp_path / "index.js").write_text("module.exports={handle:()=>1}")
    files = members(context.assemble(tmp_path, FunctionSpec("node", "index.js"), config("node")))
    assert 'CMD ["node", "/app/wrapper.js", "/app/function/index.js", "handle"]' in files["Dockerfile"].decode()
    assert "function/index.js" in files


@pytest.mark.parametrize("deps", [None, "requirements.txt"])
def test_python_image_is_compiled_after_its_last_copy(tmp_path, deps: str | None) -> None:
    (tmp_path / "handler.py").write_text("def handle(e):\n    return 1\n")
    if deps:
        (tmp_path / deps).write_text("six\n")
    spec = FunctionSpec("python", "handler.py", deps)
    lines = context.dockerfile(spec, config(deps=deps), vendored=True).splitlines()
    compiles = [i for i, line in enumerate(lines) if "compileall" in line]
    copies = [i for i, line in enumerate(lines) if line.startswith("COPY")]
    # the runtime's packages in their own (shared) layer, then the wrapper and function after the last COPY
    assert lines[compiles[0] - 1] == "COPY runtime-deps/ /app/deps/"
    assert compiles[-1] > copies[-1] and lines[compiles[-1] + 1].startswith("USER")
    assert lines[compiles[-1]].split("unchecked-hash ")[1] == (
        "/app/knative_lambda /app/function" + (" /app/deps" if deps else "") + " || true")
    # unvendored (pip in the image, which compiles what it installs): still the wrapper and function
    assert "/app/knative_lambda /app/function ||" in context.dockerfile(spec, config(deps=deps))
    node = context.dockerfile(FunctionSpec("node", "index.js"), config("node"), vendored=True)
    assert "compileall" not in node


def _runtime_tree(tmp_path):
    runtime, templates = tmp_path / "runtime", tmp_path / "templates"
    shutil.copytree(context.RUNTIME_DIR, runtime, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(context.TEMPLATES, templates)
    return runtime, templates


def test_the_cache_key_changes_with_the_wrapper(tmp_path) -> None:
    runtime, templates = _runtime_tree(tmp_path)

    def key(rt: str = "python") -> str:
        return cache_key("0123456789ab", rt, "docker", "kl-base/python:bookworm",
                         context.runtime_digest(rt, runtime, None, templates))

    before, node_before = key(), key("node")
    assert key() == before  # deterministic
    (runtime / "__pycache__").mkdir()
    (runtime / "__pycache__" / "app.cpython-311.pyc").write_bytes(b"junk")
    assert key() == before  # bytecode is not what goes into the image
    app = runtime / "app.py"
    original = app.read_bytes()
    app.write_bytes(original.replace(b"127.0.0.1", b"0.0.0.0") + b"\n# listen elsewhere\n")
    assert key() != before  # an image of the older wrapper is not reused
    assert key("node") == node_before  # node images do not carry the Python wrapper
    app.write_bytes(original)
    assert key() == before
    (runtime / "wrapper.js").write_bytes((runtime / "wrapper.js").read_bytes() + b"\n// changed\n")
    assert key("node") != node_before  # (Python images carry the whole runtime dir, wrapper.js too)
    python_after, node_after = key(), key("node")
    (templates / "Dockerfile.python").write_text((templates / "Dockerfile.python").read_text() + "# more\n")
    assert key() != python_after and key("node") == node_after


def test_the_builder_keys_artifacts_with_the_runtime_files(tmp_path) -> None:
    builder = Builder(Settings(data_dir=tmp_path), BuilderConfig(backend="local"), s3=object())
    src = Source("b", "k", b"def handle(event):\n    return 1\n", {"filename": "handler.py"})
    prepared = builder._prepare(BuildRequest("acme", "p1"), src)
    try:
        assert prepared.key == cache_key(keys.content_hash(src.data), "python", "local",
                                         builder.backend.base("python"), context.runtime_digest("python"))
    finally:
        builder.store.discard(prepared.staging)


def test_wrapper_files_from_a_runtime_dir(tmp_path) -> None:
    (tmp_path / "__init__.py").write_text("")
    assert context.wrapper_state(tmp_path) == "missing"
    (tmp_path / "wrapper.py").write_text("x = 1")
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "w.pyc").write_bytes(b"x")
    assert context.wrapper_state(tmp_path) == "included"
    assert sorted(context.wrapper_files(tmp_path, None)) == [
        "knative_lambda/platform/runtime/__init__.py", "knative_lambda/platform/runtime/wrapper.py"]


def job(**overrides):
    args = dict(job_name="build-tp-p-01234567", namespace="knative-lambda",
                context_url="s3://kl-temp/build-context/p/context.tar.gz",
                destination="registry.local/knative-lambdas:tp-p-01234567", timeout_s=1800,
                s3_endpoint="http://minio:9000")
    return kaniko.job_manifest(**(args | overrides))


@pytest.mark.parametrize("overrides", [{}, {"s3_endpoint": ""}, {"timeout_s": 60, "insecure_registry": True}])
def test_kaniko_job_validates(overrides) -> None:
    manifest = job(**overrides)
    kaniko.validate(manifest)
    spec = manifest["spec"]
    assert spec["backoffLimit"] == 2 and spec["ttlSecondsAfterFinished"] == 3600
    assert spec["activeDeadlineSeconds"] == int(overrides.get("timeout_s", 1800))
    pod = spec["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["restartPolicy"] == "Never"
    container = pod["containers"][0]
    assert container["resources"]["requests"] == container["resources"]["limits"]
    args = container["args"]
    assert "--context=s3://kl-temp/build-context/p/context.tar.gz" in args
    assert "--destination=registry.local/knative-lambdas:tp-p-01234567" in args
    assert "--dockerfile=Dockerfile" in args


@pytest.mark.parametrize(
    "path, value",
    [(("spec", "backoffLimit"), "two"), (("spec", "template", "spec", "containers"), "nope"),
     (("spec", "unknownField"), 1), (("metadata", "name"), 5)],
)
def test_kaniko_schema_catches_mistakes(path, value) -> None:
    manifest = copy.deepcopy(job())
    target = manifest
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(BuildFailed, match="kaniko Job manifest is invalid"):
        kaniko.validate(manifest)
