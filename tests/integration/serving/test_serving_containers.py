"""Container instances (KL_INSTANCE_MODE=container): a real docker-backend build, a real gateway.

The hello function is built into an image by the builder's docker backend, the
gateway starts its instance with ``docker run``, the request goes through the
gateway to the container's published port, a killed container is seen gone,
and scale to zero removes the container. A container's output lands in the
gateway's instances.log, as process instances' does, up to its last line; its
image holds the wrapper and function precompiled. Skipped, with the reason, when no
Docker engine answers or the offline base image is missing (scripts/docker-setup.sh
makes both; CI runs it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from knative_lambda.contract.events import BuildRequest
from knative_lambda.platform.builder.backends.docker import engine_reason
from knative_lambda.platform.builder.config import BuilderConfig
from knative_lambda.platform.builder.service import Builder
from knative_lambda.platform.serving import containers
from knative_lambda.settings import Settings
from tests.conftest import tar_gz

from .conftest import BROKEN_HANDLER, GatewayProc

pytestmark = [pytest.mark.docker, pytest.mark.slow]

# Says things on stdout and stderr at import and per request; {"exit": true} makes it say goodbye
# and exit (after answering), so its last lines are written as the container ends.
CHATTY_HANDLER = '''
import os, sys, threading
print("chatty importing", flush=True)

def _bye(say):
    print(f"bye stdout {say}", flush=True)
    print(f"bye stderr {say}", file=sys.stderr, flush=True)
    os._exit(3)

def handle(event):
    say = event.get("say", "")
    print(f"stdout {say}", flush=True)
    print(f"stderr {say}", file=sys.stderr, flush=True)
    if event.get("exit"):
        threading.Timer(0.2, _bye, (say,)).start()
    return {"said": say}
'''
EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
BASE = BuilderConfig().python_base


def _docker(*args: str) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=60).stdout


@pytest.fixture(scope="module")
def images(s3: Any, s3_client: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """Artifact dirs of two functions built by the docker backend: hello and one that cannot import."""
    reason = asyncio.run(engine_reason())
    if reason:
        pytest.skip(reason)
    if subprocess.run(["docker", "image", "inspect", BASE], capture_output=True).returncode != 0:
        pytest.skip(f"base image {BASE} missing: run scripts/docker-setup.sh")
    desc = s3.describe()
    creds, (source, temp) = desc["credentials"], desc["buckets"]
    settings = Settings(s3_endpoint=s3.url(), s3_access_key=creds["access_key"], s3_secret_key=creds["secret_key"],
                        s3_region=creds["region"], source_bucket=source, temp_bucket=temp,
                        data_dir=tmp_path_factory.mktemp("builder"))
    builder = Builder(settings, BuilderConfig(offline=True, backoff_s=0, backend="docker"))
    sources = {
        "hello": {"handler.py": (EXAMPLES / "python-hello" / "handler.py").read_bytes()},
        "broken": {"handler.py": BROKEN_HANDLER.encode()},
        "chatty": {"handler.py": CHATTY_HANDLER.encode()},
        # a file that does not compile and is never imported: precompiling at build must not fail on it
        "sloppy": {"handler.py": (EXAMPLES / "python-hello" / "handler.py").read_bytes(),
                   "legacy.py": b"print 'python 2'\n"},
    }

    async def build_all() -> dict[str, Any]:
        parsers = {}
        for name, files in sources.items():
            parsers[name] = f"p-{uuid.uuid4().hex[:10]}"
            s3_client.put_object(Bucket=source, Key=f"global/parser/{parsers[name]}", Body=tar_gz(files))
        results = await asyncio.gather(*(builder.handle(BuildRequest("acme", p)) for p in parsers.values()))
        return dict(zip(parsers, results, strict=True))

    built = asyncio.run(build_all())
    try:
        for name, result in built.items():
            assert result.status == "succeeded", f"{name}: {result.error_message}"
        dirs = {name: builder.store.path(result.artifact) for name, result in built.items()}
        manifest = json.loads((dirs["hello"] / "manifest.json").read_text())
        assert manifest["image"] == built["hello"].image_uri
        assert containers.image_of(manifest) == manifest["image_id"] and manifest["image_id"].startswith("sha256:")
        yield dirs
    finally:
        for result in built.values():
            if result.image_uri:
                subprocess.run(["docker", "rmi", "-f", result.image_uri], capture_output=True)


@pytest.fixture(scope="module")
def gateway(images: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProc]:
    gw = GatewayProc(tmp_path_factory.mktemp("gateway"), {"KL_INSTANCE_MODE": "container"})
    data_dir = str((gw.tmp / "data").resolve())
    try:
        yield gw
    finally:
        gw.stop()
        # closing the gateway removed its containers
        assert _docker("ps", "-aq", "--filter", f"label={containers.LABEL_DATA_DIR}={data_dir}").split() == []


def _instances_log(gw: GatewayProc) -> str:
    path = gw.tmp / "data" / "logs" / "instances.log"
    return path.read_text(errors="replace") if path.exists() else ""


def _followers(gw: GatewayProc, cid: str) -> list[psutil.Process]:
    """The gateway's `docker logs --follow` processes of container ``cid``."""
    out = []
    for p in psutil.Process(gw.proc.pid).children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if cid in p.cmdline() and "logs" in p.cmdline():
                out.append(p)
    return out


def _containers_of(gw: GatewayProc, service: str) -> list[str]:
    data_dir = str((gw.tmp / "data").resolve())
    return _docker("ps", "-aq", "--no-trunc", "--filter", f"label={containers.LABEL_DATA_DIR}={data_dir}",
                   "--filter", f"label={containers.LABEL_SERVICE}={service}").split()


def test_container_instance_serves_dies_visibly_and_is_removed_at_zero(gateway, images) -> None:
    gateway.deploy("hello", images["hello"])
    resp = httpx.post(f"{gateway.url}/default/hello/", json={"name": "container"}, timeout=30)
    assert resp.status_code == 200, resp.text
    assert resp.json()["eventEntries"] == [{"message": "hello, container", "runtime": "python"}]

    (cid,) = _containers_of(gateway, "hello")
    info = json.loads(_docker("inspect", cid))[0]
    (inst,) = gateway.instances("hello")
    assert inst["pid"] == info["State"]["Pid"]  # the gateway's instance is this container
    assert info["Config"]["Labels"][containers.LABEL_REVISION] == gateway.service("hello")["latest_revision"]
    assert info["HostConfig"]["Memory"] > 0
    assert [b["HostIp"] for b in info["NetworkSettings"]["Ports"]["8080/tcp"]] == ["127.0.0.1"]
    env = dict(e.split("=", 1) for e in info["Config"]["Env"])
    assert env["K_SERVICE"] == "hello" and "KL_TOKEN" not in env and "KL_DATA_DIR" not in env

    # a container that dies is seen gone, like an exited process
    _docker("kill", cid)
    stopped = gateway.wait_for(
        lambda: [e for e in gateway.timeline("hello") if e["event"] == "instance_stopped" and e["instance"] == inst["id"]],
        what="killed container seen gone")
    assert stopped[0]["expected"] is False and stopped[0]["reason"].startswith("exit 137")
    assert cid not in _containers_of(gateway, "hello")  # removed, not just exited

    gateway.wait_for(lambda: gateway.instances("hello") == [] and
                     gateway.service("hello")["revisions"][-1]["desired"] == 0, what="scale to zero")
    assert _containers_of(gateway, "hello") == []


def test_a_container_that_cannot_start_says_why(gateway, images) -> None:
    gateway.deploy("broken", images["broken"])
    resp = httpx.post(f"{gateway.url}/default/broken/", json={}, timeout=30)
    assert resp.status_code == 502, resp.text
    # the LaunchError carries the container's last log line
    assert "exited with code" in resp.text and "no_such_module_anywhere" in resp.text, resp.text
    # and what it wrote is in instances.log by the time the request fails
    lines = _instances_log(gateway).splitlines()
    assert ("error: importing handler.py failed: ModuleNotFoundError: No module named 'no_such_module_anywhere'"
            in lines), lines
    gateway.api.delete("/apis/v1/namespaces/default/services/broken")
    gateway.wait_for(lambda: _containers_of(gateway, "broken") == [], timeout=5, what="failed container removed")


def test_leftovers_of_a_data_dir_are_found_by_label_and_removed(images, tmp_path) -> None:
    # what `kl down` and a restarted gateway do with containers of a gateway that was killed
    mine, other = tmp_path / "mine", tmp_path / "other"
    started = [
        _docker("run", "-d", "--label", f"{containers.LABEL_MANAGED}=true",
                "--label", f"{containers.LABEL_DATA_DIR}={d.resolve()}", BASE, "sleep", "60").strip()
        for d in (mine, other)
    ]
    try:
        assert all(started)
        assert containers.remove_containers(mine) == 1
        remaining = _docker("ps", "-aq", "--no-trunc", "--filter", f"label={containers.LABEL_MANAGED}=true").split()
        assert started[0] not in remaining and started[1] in remaining
    finally:
        _docker("rm", "-f", *started)


def test_container_output_lands_in_instances_log_up_to_its_last_line(gateway, images) -> None:
    gateway.deploy("chatty", images["chatty"])
    say = uuid.uuid4().hex
    resp = httpx.post(f"{gateway.url}/default/chatty/", json={"say": say}, timeout=30)
    assert resp.status_code == 200, resp.text
    (cid,) = _containers_of(gateway, "chatty")
    (inst,) = gateway.instances("chatty")
    assert len(_followers(gateway, cid)) == 1  # one follower per live container
    lines = gateway.wait_for(lambda: {f"stdout {say}", f"stderr {say}"} <= set(_instances_log(gateway).splitlines())
                             and _instances_log(gateway).splitlines(), what="the function's lines in instances.log")
    # as written, no prefix (process instances' lines have none); the wrapper's handshake is not the function's
    assert "chatty importing" in lines
    assert not [line for line in lines if line.startswith("READY ")], lines

    # lines written as the container exits are in the log by the time it is removed
    last = uuid.uuid4().hex
    resp = httpx.post(f"{gateway.url}/default/chatty/", json={"say": last, "exit": True}, timeout=30)
    assert resp.status_code == 200, resp.text
    stopped = gateway.wait_for(
        lambda: [e for e in gateway.timeline("chatty") if e["event"] == "instance_stopped" and e["instance"] == inst["id"]],
        what="exited container seen gone")
    assert stopped[0]["reason"].startswith("exit 3"), stopped
    assert cid not in _containers_of(gateway, "chatty")
    lines = _instances_log(gateway).splitlines()
    assert f"bye stdout {last}" in lines and f"bye stderr {last}" in lines, lines[-20:]
    assert _followers(gateway, cid) == []  # its follower ended with it


def test_image_holds_the_wrapper_and_function_precompiled(images) -> None:
    image = json.loads((images["hello"] / "manifest.json").read_text())["image"]
    # what a cold start imports: the wrapper, its packages and the function; -v says where code came from
    script = ("import knative_lambda.platform.runtime.__main__; from knative_lambda.platform.runtime import loader; "
              "loader.load_python(loader.read_artifact('/app'))")
    run = subprocess.run(["docker", "run", "--rm", "--network", "none", image, "python3", "-v", "-c", script],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr[-2000:]
    from_app = [line for line in run.stderr.splitlines() if line.startswith("# code object from ") and "/app/" in line]
    assert any("/app/function/__pycache__/handler." in line for line in from_app), from_app
    assert any("/app/knative_lambda/platform/runtime/__pycache__/app." in line for line in from_app), from_app
    assert any("/app/deps/aiohttp/__pycache__/" in line for line in from_app), from_app
    # nothing under /app was compiled at start: every module came from a .pyc
    assert [line for line in from_app if "__pycache__" not in line] == []
