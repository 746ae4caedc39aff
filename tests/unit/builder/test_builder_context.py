"""Build context assembly and the kaniko Job manifest."""

from __future__ import annotations

import copy
import io
import json
import tarfile

import pytest

from knative_lambda.platform.builder import context
from knative_lambda.platform.builder.backends import kaniko
from knative_lambda.platform.builder.errors import BuildFailed
from knative_lambda.platform.builder.runtimes import FunctionSpec


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
        ("python", "requirements.txt", True, "COPY runtime-deps/ /app/deps/\nCOPY deps/ /app/deps/"),
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
