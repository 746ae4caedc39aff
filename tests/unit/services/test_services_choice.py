"""Pure decisions of the service providers: preference order, node layout, attach, ports."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from knative_lambda.errors import ConfigError, ServiceUnavailable
from knative_lambda.harness.services import PROVIDERS, attach
from knative_lambda.harness.services.base import Service
from knative_lambda.harness.services.ports import free_ports
from knative_lambda.harness.services.rabbitmq import (
    choose_rabbitmq,
    erl_scheduler_args,
    find_server,
    node_config,
    node_env,
    node_name,
    script_dir,
)
from knative_lambda.harness.services.s3 import choose_s3
from knative_lambda.machine import usable_cpus

NO_DOCKER = "no Docker engine reachable (DockerException)"


@pytest.mark.parametrize(
    ("url", "server", "docker", "expected"),
    [
        ("amqp://h/", "/usr/sbin/rabbitmq-server", None, "external"),
        ("amqp://h/", None, NO_DOCKER, "external"),
        ("", "/usr/sbin/rabbitmq-server", None, "process"),
        ("", "/usr/sbin/rabbitmq-server", NO_DOCKER, "process"),
        ("", None, None, "container"),
    ],
)
def test_choose_rabbitmq(url: str, server: str | None, docker: str | None, expected: str) -> None:
    assert choose_rabbitmq(url, server, docker) == expected


@pytest.mark.parametrize(
    "docker", [NO_DOCKER, "Docker image rabbitmq:3-management is not present locally"]
)
def test_choose_rabbitmq_nothing_is_one_actionable_line(docker: str) -> None:
    with pytest.raises(ServiceUnavailable) as err:
        choose_rabbitmq("", None, docker)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("RabbitMQ unavailable: rabbitmq-server is not installed")
    assert docker in message
    for hint in ("apt-get install -y rabbitmq-server", "brew install rabbitmq", "KL_AMQP_URL"):
        assert hint in message


@pytest.mark.parametrize(
    ("endpoint", "minio", "docker", "expected"),
    [
        ("http://s3", "/bin/minio", None, "external"),
        ("http://s3", None, NO_DOCKER, "external"),
        ("", "/bin/minio", None, "process"),
        ("", "/bin/minio", NO_DOCKER, "process"),
        ("", None, None, "container"),
        ("", None, NO_DOCKER, "embedded"),
    ],
)
def test_choose_s3(endpoint: str, minio: str | None, docker: str | None, expected: str) -> None:
    assert choose_s3(endpoint, minio, docker) == expected


def test_node_env_keeps_everything_under_base(tmp_path: Path) -> None:
    env = node_env(tmp_path, 5001, 5002, 5003)
    assert env["RABBITMQ_NODENAME"] == node_name(5001) == "kl-5001@localhost"
    assert (env["RABBITMQ_NODE_PORT"], env["RABBITMQ_DIST_PORT"]) == ("5001", "5003")
    assert env["RABBITMQ_NODE_IP_ADDRESS"] == "127.0.0.1"
    paths = {k: v for k, v in env.items() if k == "HOME" or k.endswith(("_BASE", "_FILE"))}
    assert set(paths) == {
        "HOME",
        "RABBITMQ_MNESIA_BASE",
        "RABBITMQ_LOG_BASE",
        "RABBITMQ_PID_FILE",
        "RABBITMQ_CONFIG_FILE",
        "RABBITMQ_ADVANCED_CONFIG_FILE",
        "RABBITMQ_CONF_ENV_FILE",
        "RABBITMQ_ENABLED_PLUGINS_FILE",
    }
    assert all(Path(v).is_relative_to(tmp_path) for v in paths.values())


def test_node_config_sets_management_port_on_loopback() -> None:
    conf = node_config(15999)
    assert "management.tcp.port = 15999" in conf and "management.tcp.ip = 127.0.0.1" in conf


def test_debian_wrapper_resolves_to_the_real_scripts(tmp_path: Path) -> None:
    # /usr/sbin/rabbitmq-server -> /usr/lib/rabbitmq/bin/rabbitmq-script-wrapper (which would `su`).
    bin_dir = tmp_path / "lib" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "rabbitmq-script-wrapper").write_text("#!/bin/sh\n")
    (tmp_path / "sbin").mkdir()
    (tmp_path / "sbin" / "rabbitmq-server").symlink_to(bin_dir / "rabbitmq-script-wrapper")
    assert script_dir(str(tmp_path / "sbin" / "rabbitmq-server")) == bin_dir.resolve()


def test_find_server_honours_explicit_path(tmp_path: Path) -> None:
    assert find_server({"KL_RABBITMQ_SERVER": str(tmp_path / "missing")}) is None
    exe = tmp_path / "rabbitmq-server"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    assert find_server({"KL_RABBITMQ_SERVER": str(exe)}) == str(exe)
    assert find_server({"PATH": str(tmp_path)}) == str(exe)


@pytest.mark.parametrize(
    "desc", [{}, {"name": "rabbitmq", "kind": "vm"}, {"name": "redis", "kind": "process"}]
)
def test_attach_unknown_is_a_config_error(desc: dict) -> None:
    with pytest.raises(ConfigError, match="unknown service"):
        attach(desc)


@pytest.mark.parametrize(
    "desc",
    [
        {"name": "rabbitmq", "kind": "external", "url": "amqp://guest:guest@127.0.0.1:5999/"},
        {
            "name": "s3",
            "kind": "external",
            "url": "http://127.0.0.1:9",
            "buckets": ["a", "b"],
            "credentials": {"access_key": "k", "secret_key": "s", "region": "eu-west-1"},
        },
        {
            "name": "s3",
            "kind": "embedded",
            "url": "http://127.0.0.1:9",
            "buckets": ["a", "b"],
            "ports": {"s3": 9},
            "pids": {},
            "dirs": {"base": "/tmp/x"},
            "credentials": {
                "access_key": "kl-access",
                "secret_key": "kl-secret",
                "region": "us-east-1",
            },
        },
    ],
)
def test_attach_round_trips_describe(desc: dict) -> None:
    service = attach(desc)
    assert isinstance(service, Service)
    again = service.describe()
    assert {k: again[k] for k in desc} == desc


def test_every_provider_satisfies_the_protocol() -> None:
    for (name, kind), cls in PROVIDERS.items():
        assert cls.name == name and cls.kind == kind
        for method in ("start", "stop", "restart", "url", "health", "describe", "from_description"):
            assert callable(getattr(cls, method)), (cls, method)


def test_free_ports_are_distinct_and_bindable() -> None:
    ports = free_ports(5)
    assert len(set(ports)) == 5 and all(1024 < p < 65536 for p in ports)


@pytest.mark.parametrize(("cpus", "schedulers"), [(1, "1:1"), (2, "1:1"), (3, "1:1"), (4, "2:2"), (16, "8:8")])
def test_erl_scheduler_args_one_scheduler_per_two_cpus_none_spinning(cpus: int, schedulers: str) -> None:
    args = erl_scheduler_args(cpus).split()
    assert args[args.index("+S") + 1] == schedulers
    for flag in ("+sbwt", "+sbwtdcpu", "+sbwtdio"):
        assert args[args.index(flag) + 1] == "none"


def test_node_env_erlang_arguments_default_and_caller_override(tmp_path: Path) -> None:
    default = node_env(tmp_path, 1, 2, 3)["RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS"]
    assert default == erl_scheduler_args(usable_cpus())
    assert node_env(tmp_path, 1, 2, 3, "+S 1:1")["RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS"] == "+S 1:1"
