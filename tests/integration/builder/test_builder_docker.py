"""The docker backend really builds an image and the image runs the function.

Skipped, with the reason, when no Docker engine answers or the offline base
image is missing (scripts/docker-setup.sh makes both).
"""

from __future__ import annotations

import asyncio
import json
import subprocess

import pytest

from knative_lambda.contract.events import BuildRequest
from knative_lambda.platform.builder.backends.docker import engine_reason
from knative_lambda.platform.builder.config import BuilderConfig

from .conftest import example

pytestmark = pytest.mark.docker
BASE = BuilderConfig().python_base


@pytest.fixture(scope="module")
def docker_engine() -> None:
    reason = asyncio.run(engine_reason())
    if reason:
        pytest.skip(reason)
    if subprocess.run(["docker", "image", "inspect", BASE], capture_output=True).returncode != 0:
        pytest.skip(f"base image {BASE} missing: run scripts/docker-setup.sh")


@pytest.mark.parametrize(
    "name, event, expected",
    [
        ("python-deps", {"text": "in-image"}, {"six": "1.17.0", "text": "in-image"}),
    ],
)
async def test_docker_backend_builds_and_runs(docker_engine, make_builder, upload, name, event, expected) -> None:
    builder = make_builder(backend="docker")
    result = await builder.handle(BuildRequest("acme", upload(example(name))))
    assert result.status == "succeeded", result.error_message
    assert result.backend == "docker" and result.image_uri.startswith("localhost:5000/knative-lambdas:acme-")
    try:
        run = await asyncio.to_thread(
            subprocess.run,
            ["docker", "run", "--rm", "--network=none", result.image_uri,
             "python3", "/app/kl_invoke.py", "/app/function", "handler.py", json.dumps(event)],
            capture_output=True, text=True, timeout=60,
        )
        assert run.returncode == 0, run.stderr
        assert json.loads(run.stdout.strip().splitlines()[-1]) == expected
        inspect = subprocess.run(["docker", "image", "inspect", result.image_uri, "--format", "{{.Config.User}}"],
                                 capture_output=True, text=True)
        assert inspect.stdout.strip() == "65532:65532"  # not root
        again = await builder.handle(BuildRequest("acme", result.parser_id))
        assert again.cached and builder.builds_done == 1
    finally:
        subprocess.run(["docker", "rmi", "-f", result.image_uri], capture_output=True)


@pytest.mark.parametrize(
    "name, argv, expected",
    [
        ("python-hello", ["python3", "-m", "knative_lambda.platform.runtime", "/app"], "hello, wrapper"),
        ("node-hello", None, "hello, wrapper"),
    ],
)
async def test_image_serves_the_function_through_the_runtime_wrapper(
    docker_engine, make_builder, upload, name, argv, expected
) -> None:
    import httpx

    from knative_lambda.harness.services.ports import free_port

    if name.startswith("node") and subprocess.run(["docker", "image", "inspect", BuilderConfig().node_base],
                                                   capture_output=True).returncode != 0:
        pytest.skip(f"node base image {BuilderConfig().node_base} not present (offline: no registry pull)")
    builder = make_builder(backend="docker")
    result = await builder.handle(BuildRequest("acme", upload(example(name))))
    assert result.status == "succeeded", result.error_message
    port = free_port()
    # The wrapper listens on 127.0.0.1, so share the host's network namespace to reach it.
    command = (argv + [str(port)]) if argv else []
    env = ["-e", f"PORT={port}"]
    started = subprocess.run(["docker", "run", "-d", "--rm", "--network=host", *env, result.image_uri, *command],
                             capture_output=True, text=True)
    container = started.stdout.strip()
    try:
        assert started.returncode == 0, started.stderr
        async with httpx.AsyncClient(timeout=5) as http:
            for _ in range(100):
                try:
                    if (await http.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    await asyncio.sleep(0.1)
            reply = await http.post(f"http://127.0.0.1:{port}/", json={"name": "wrapper"})
        assert reply.status_code == 200, reply.text
        assert reply.json()["succeeded"] is True and expected in json.dumps(reply.json())
    finally:
        subprocess.run(["docker", "rm", "-f", container], capture_output=True)
        subprocess.run(["docker", "rmi", "-f", result.image_uri], capture_output=True)
