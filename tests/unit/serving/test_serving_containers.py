"""Pure parts of the container launcher: mode setting, docker run argv, labels, parsing."""

from __future__ import annotations

import asyncio
import json

import pytest

from knative_lambda.errors import ConfigError
from knative_lambda.platform.serving import containers as c
from knative_lambda.platform.serving.isolation import InstanceUser


def test_mode_defaults_to_process_and_rejects_unknown_values() -> None:
    assert c.instance_mode({}) == "process"
    assert c.instance_mode({"KL_INSTANCE_MODE": ""}) == "process"
    assert c.instance_mode({"KL_INSTANCE_MODE": " Container "}) == "container"
    with pytest.raises(ConfigError, match="KL_INSTANCE_MODE: must be process or container, got 'vm'"):
        c.instance_mode({"KL_INSTANCE_MODE": "vm"})


def test_from_env_is_none_in_process_mode(tmp_path) -> None:
    assert c.Containers.from_env(tmp_path, {}) is None
    made = c.Containers.from_env(tmp_path, {"KL_INSTANCE_MODE": "container", "KL_CONTAINER_READY_TIMEOUT": "7.5"})
    assert made is not None and made.ready_timeout == 7.5 and made.data_dir == str(tmp_path.resolve())
    for bad in ("0", "-1", "soon", "nan"):
        with pytest.raises(ConfigError, match="KL_CONTAINER_READY_TIMEOUT: must be a positive number"):
            c.ready_timeout({"KL_CONTAINER_READY_TIMEOUT": bad})


def test_only_docker_backend_artifacts_have_an_image() -> None:
    assert c.image_of({"image": "localhost:5000/knative-lambdas:acme-p1-abc", "backend": "docker"}) == (
        "localhost:5000/knative-lambdas:acme-p1-abc")
    # pinned to the id the build recorded: the tag moves when the code is rebuilt
    assert c.image_of({"image": "localhost:5000/knative-lambdas:acme-p1-abc", "image_id": "sha256:0f1e",
                       "backend": "docker"}) == "sha256:0f1e"
    # the local backend records the name the image would have, not an image
    assert c.image_of({"image_uri": "localhost:5000/knative-lambdas:acme-p1-abc", "backend": "local"}) is None


def test_labels_name_the_service_revision_and_gateway() -> None:
    assert c.labels("/srv/kl", "team-a", "hello", "hello-00002") == {
        "knative-lambda.dev/managed": "true",
        "knative-lambda.dev/data-dir": "/srv/kl",
        "knative-lambda.dev/namespace": "team-a",
        "serving.knative.dev/service": "hello",
        "serving.knative.dev/configuration": "hello",
        "serving.knative.dev/revision": "hello-00002",
    }
    assert c.container_name("hello-00002", "a1b2c3") == "kl-hello-00002-a1b2c3"
    assert c.container_name("we ird/rev", "x") == "kl-we-ird-rev-x"


def test_container_env_drops_host_paths_and_listens_on_the_container_interface() -> None:
    env = c.container_env({"PATH": "/usr/bin", "HOME": "/root", "TMPDIR": "/tmp/x", "LANG": "C.UTF-8",
                           "K_SERVICE": "hello", "KL_EVENT_PREFIX": "network.notifi.lambda"})
    assert env == {"LANG": "C.UTF-8", "K_SERVICE": "hello", "KL_EVENT_PREFIX": "network.notifi.lambda",
                   "PORT": "8080", "KL_LISTEN_HOST": "0.0.0.0"}


def test_run_argv_publishes_on_loopback_and_limits_memory() -> None:
    argv = c.run_argv("img:tag", {"K_SERVICE": "hello", "A": "x=y"}, {"l2": "b", "l1": "a"}, 256, "kl-r-1")
    assert argv == [
        "docker", "run", "-d", "--pull", "never", "--init",
        "-p", "127.0.0.1::8080",
        "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
        "--name", "kl-r-1",
        "--memory", "256m", "--memory-swap", "256m",
        "--label", "l1=a", "--label", "l2=b",
        "-e", "A=x=y", "-e", "K_SERVICE=hello",
        "img:tag",
    ]
    as_user = c.run_argv("img", {}, {}, 0, user=InstanceUser(201234, 201235))
    assert as_user[as_user.index("--user") + 1] == "201234:201235"
    unlimited = c.run_argv("img", {}, {}, 0)
    assert "--user" not in unlimited
    assert "--memory" not in unlimited and "--name" not in unlimited and unlimited[-1] == "img"


def test_parse_inspect_finds_the_published_port() -> None:
    ports = {"8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": "32771"}]}
    assert c.parse_inspect(f"true 4242 0 {json.dumps(ports)}\n") == c.State(True, 4242, 0, 32771)
    # an exited container has no published ports
    assert c.parse_inspect("false 0 2 {}") == c.State(False, 0, 2, None)
    assert c.parse_inspect("false 0 137 null") == c.State(False, 0, 137, None)


def test_parse_event_and_last_line() -> None:
    line = json.dumps({"status": "die", "id": "abc", "Type": "container", "Action": "die",
                       "Actor": {"ID": "abc", "Attributes": {"exitCode": "137", "name": "kl-x"}}})
    assert c.parse_event(line) == ("die", "abc", "137")
    assert c.parse_event(b"not json") is None
    assert c.parse_event("[]") is None
    assert c.last_line("one\ntwo\n\n  \n") == "two"
    assert c.last_line("") == "(no output)"


async def test_an_artifact_without_an_image_runs_as_a_process(tmp_path) -> None:
    # decided from the manifest alone: no Docker engine is asked
    made = c.Containers(tmp_path)
    assert await made.image_for(str(tmp_path), {"backend": "local", "image_uri": "r/x:t"}) is None
    assert made._checked_at is None


def test_container_output_goes_where_process_instances_output_goes(tmp_path) -> None:
    assert c.Containers(tmp_path).log_path == tmp_path.resolve() / "logs" / "instances.log"
    made = c.Containers.from_env(tmp_path, {"KL_INSTANCE_MODE": "container"}, tmp_path / "x.log")
    assert made is not None and made.log_path == tmp_path / "x.log"


async def test_copy_output_keeps_lines_as_written_minus_the_ready_handshake(tmp_path) -> None:
    log = tmp_path / "instances.log"
    log.write_bytes(b"earlier instance\n")
    stream = asyncio.StreamReader()
    # import-time output, the wrapper's handshake, then the function's own lines (one READY-like)
    stream.feed_data(b"loading\nREADY 8080\nhello\n")
    stream.feed_data(b"READY is a word too\nno newline at exit")
    stream.feed_eof()
    await c.copy_output(stream, log)
    assert log.read_bytes() == b"earlier instance\nloading\nhello\nREADY is a word too\nno newline at exit"


async def test_copy_output_keeps_a_line_longer_than_the_readers_limit(tmp_path) -> None:
    log = tmp_path / "instances.log"
    stream = asyncio.StreamReader(limit=16)
    long = b"x" * 100 + b"\n"
    stream.feed_data(b"short\n" + long + b"READY 8080\nafter\n")
    stream.feed_eof()
    await c.copy_output(stream, log)
    # past a line it cannot take whole it copies as it comes: nothing lost (the handshake then stays)
    assert log.read_bytes() == b"short\n" + long + b"READY 8080\nafter\n"


async def test_copy_output_of_a_container_that_never_got_ready(tmp_path) -> None:
    log = tmp_path / "instances.log"
    stream = asyncio.StreamReader()
    stream.feed_data(b"Traceback (most recent call last):\nModuleNotFoundError: x")  # its last, unended line
    stream.feed_eof()
    await c.copy_output(stream, log)
    assert log.read_bytes() == b"Traceback (most recent call last):\nModuleNotFoundError: x"


async def test_end_follower_lets_it_finish_and_stops_one_that_does_not(tmp_path) -> None:
    made = c.Containers(tmp_path)
    handle = c.ContainerHandle(made, "cid", "img", 0.0)
    await made.end_follower(handle, 1.0)  # none (docker logs could not start): nothing to wait for
    copied: list[str] = []

    async def last_lines() -> None:
        await asyncio.sleep(0.05)
        copied.append("last line")

    handle.follower = asyncio.create_task(last_lines())
    await made.end_follower(handle, 60.0)
    assert copied == ["last line"] and handle.follower.done()
    handle.follower = asyncio.create_task(asyncio.sleep(3600))  # a follower that never reaches an end
    await made.end_follower(handle, 0.01)
    assert handle.follower.cancelled()
