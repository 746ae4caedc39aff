"""RabbitMQ providers: an external URL, a private node of the installed server, a container.

Preference (see :func:`choose_rabbitmq`): ``KL_AMQP_URL`` if set; else a private
node of ``rabbitmq-server`` on free ports with all its state under one
directory; else a container when Docker and the image are present.

A private node is isolated from any system RabbitMQ: its own node name
(``kl-<amqp port>@localhost``), ports (AMQP, management, distribution), Mnesia
and log dirs, config files, pid file, and Erlang cookie (``HOME`` points into
its directory). ``rabbitmq-server -detached`` + ``await_startup`` is unreliable,
so the server runs in the foreground of its own session and
``rabbitmqctl wait <pidfile>`` tells when it has booted.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from knative_lambda.errors import ServiceUnavailable
from knative_lambda.harness.polling import poll
from knative_lambda.harness.services import procs
from knative_lambda.harness.services.containers import Container, docker_problem
from knative_lambda.harness.services.ports import HOST, free_ports, port_open
from knative_lambda.machine import usable_cpus

IMAGE = os.environ.get("KL_RABBITMQ_IMAGE", "rabbitmq:3-management")
USER = PASSWORD = "guest"  # guest may only log in from localhost, which is all we use
INSTALL_HINT = (
    "install it with 'apt-get install -y rabbitmq-server' "
    "(macOS: 'brew install rabbitmq') or set KL_AMQP_URL"
)
# Where distributions put the server when sbin is not on a user's PATH.
SBIN_DIRS = ("/usr/sbin", "/usr/local/sbin", "/opt/homebrew/sbin", "/usr/lib/rabbitmq/bin")


# --- decisions (pure) ---------------------------------------------------------


def choose_rabbitmq(amqp_url: str, server: str | None, docker_problem: str | None) -> str:
    """Which provider kind to use: "external", "process" or "container".

    Raises ServiceUnavailable (one line: why, and what to install) when none fits.
    """
    if amqp_url:
        return "external"
    if server:
        return "process"
    if docker_problem is None:
        return "container"
    raise ServiceUnavailable(
        f"RabbitMQ unavailable: rabbitmq-server is not installed and {docker_problem}; {INSTALL_HINT}"
    )


def erl_scheduler_args(cpus: int) -> str:
    """Erlang VM flags for a node that shares a small machine with the platform. Pure.

    Schedulers do not busy-wait: spinning steals the CPU the broker needs (p99 at
    300 events/s went from 200-700 ms to 69 ms). And one scheduler per two CPUs:
    on two, a single scheduler cut RabbitMQ's CPU per event by a quarter in the
    broker benchmark (0.28-0.32 -> 0.21-0.22 ms; fewer wakeups across cores).
    """
    schedulers = max(1, cpus // 2)
    return f"+sbwt none +sbwtdcpu none +sbwtdio none +S {schedulers}:{schedulers}"


def node_name(amqp_port: int) -> str:
    return f"kl-{amqp_port}@localhost"


def node_env(
    base: Path, amqp_port: int, management_port: int, dist_port: int, erl_args: str | None = None
) -> dict[str, str]:
    """The RABBITMQ_* environment that keeps a node entirely inside ``base``.

    ``erl_args``: the caller's RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS, which replace ours.
    """
    return {
        "HOME": str(base / "home"),  # .erlang.cookie lives here, private to this node
        "RABBITMQ_NODENAME": node_name(amqp_port),
        "RABBITMQ_NODE_IP_ADDRESS": HOST,
        "RABBITMQ_NODE_PORT": str(amqp_port),
        "RABBITMQ_DIST_PORT": str(dist_port),
        "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
        "RABBITMQ_LOG_BASE": str(base / "log"),
        "RABBITMQ_PID_FILE": str(base / "rabbitmq.pid"),
        "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq.conf"),
        "RABBITMQ_ADVANCED_CONFIG_FILE": str(base / "advanced.config"),
        "RABBITMQ_CONF_ENV_FILE": str(base / "rabbitmq-env.conf"),  # not /etc/rabbitmq's
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
        "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": erl_scheduler_args(usable_cpus()) if erl_args is None else erl_args,
    }


def node_config(management_port: int) -> str:
    return (
        f"management.tcp.ip = {HOST}\n"
        f"management.tcp.port = {management_port}\n"
        # A test box's disk may be nearly full; the default 50MB limit is fine, a
        # relative one would block publishers for no reason.
        "disk_free_limit.absolute = 50MB\n"
    )


def find_server(env: Mapping[str, str]) -> str | None:
    """Path of ``rabbitmq-server``: ``KL_RABBITMQ_SERVER``, else PATH, else the usual sbin dirs."""
    explicit = env.get("KL_RABBITMQ_SERVER")
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    path = os.pathsep.join([env.get("PATH", ""), *SBIN_DIRS])
    return shutil.which("rabbitmq-server", path=path)


def script_dir(server: str) -> Path:
    """Directory of the real scripts (Debian's /usr/sbin wrapper would ``su rabbitmq``)."""
    real = Path(os.path.realpath(server))
    if real.name == "rabbitmq-script-wrapper":
        return real.parent  # /usr/lib/rabbitmq/bin: the real scripts sit beside it
    return real.parent


# --- providers ----------------------------------------------------------------


def _amqp_health(host: str, port: int) -> tuple[bool, str]:
    if port_open(port, host):
        return True, f"AMQP port {host}:{port} accepts connections"
    return False, f"nothing listens on {host}:{port}"


class ExternalRabbitMQ:
    """A broker someone else runs; start/stop only check that it is reachable."""

    name = "rabbitmq"
    kind = "external"

    def __init__(self, amqp_url: str) -> None:
        self._url = amqp_url
        parts = urlsplit(amqp_url)
        self._host = parts.hostname or HOST
        self._port = parts.port or (5671 if parts.scheme == "amqps" else 5672)

    def start(self) -> None:
        ok, detail = self.health()
        if not ok:
            raise ServiceUnavailable(f"RabbitMQ unavailable: KL_AMQP_URL is set but {detail}")

    def stop(self) -> None:
        """Not ours to stop."""

    def restart(self) -> None:
        self.start()

    def url(self) -> str:
        return self._url

    def health(self) -> tuple[bool, str]:
        return _amqp_health(self._host, self._port)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "url": self._url,
            "credentials": {},
            "pids": {},
            "ports": {"amqp": self._port},
            "dirs": {},
        }

    @classmethod
    def from_description(cls, d: dict[str, Any]) -> ExternalRabbitMQ:
        return cls(d["url"])


class RabbitMQNode:
    """A private node of the installed ``rabbitmq-server``, all state under ``base``."""

    name = "rabbitmq"
    kind = "process"

    def __init__(
        self,
        base: Path,
        server: str,
        *,
        ports: dict[str, int] | None = None,
        start_timeout: float = 60.0,
        pids: dict[str, Any] | None = None,
        epmd_started: bool = False,
    ) -> None:
        self.base = Path(base).absolute()
        self.server = server
        self.scripts = script_dir(server)
        amqp, mgmt, dist = (
            free_ports(3) if not ports else (ports["amqp"], ports["management"], ports["dist"])
        )
        self.ports = {"amqp": amqp, "management": mgmt, "dist": dist}
        self.node = node_name(amqp)
        self.start_timeout = start_timeout
        self.pids: dict[str, Any] = pids or {}  # "server" (session leader), "beam": procs.identity
        self.epmd_started = epmd_started  # epmd was not running before our first start
        self._popen: subprocess.Popen[bytes] | None = None

    # paths and environment
    @property
    def pid_file(self) -> Path:
        return self.base / "rabbitmq.pid"

    @property
    def log_file(self) -> Path:
        return self.base / "log" / "console.log"

    def _env(self) -> dict[str, str]:
        p = self.ports
        erl_args = os.environ.get("RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS")
        return {**os.environ, **node_env(self.base, p["amqp"], p["management"], p["dist"], erl_args)}

    def _prepare(self) -> None:
        home = self.base / "home"
        home.mkdir(parents=True, exist_ok=True)
        (self.base / "log").mkdir(exist_ok=True)
        cookie = home / ".erlang.cookie"
        if not cookie.exists():
            cookie.write_text(secrets.token_hex(16))
            cookie.chmod(0o400)  # Erlang refuses a cookie others can read
        (self.base / "rabbitmq.conf").write_text(node_config(self.ports["management"]))
        (self.base / "enabled_plugins").write_text("[rabbitmq_management].\n")
        (self.base / "rabbitmq-env.conf").touch()

    def _ctl(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.scripts / "rabbitmqctl"), "-n", self.node, *args],
            env=self._env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    # lifecycle
    def start(self) -> None:
        if self._beam() is not None:
            return
        self._prepare()
        if not self.pids:  # first start: remember whether epmd was ours to stop
            self.epmd_started = not _epmd_running()
        self.pid_file.unlink(missing_ok=True)
        self._popen = procs.spawn(
            [str(self.scripts / "rabbitmq-server")],
            env=self._env(),
            log_path=self.log_file,
            cwd=self.base,
        )
        self.pids = {"server": procs.identity(self._popen.pid)}
        self._wait_booted()
        self.pids["beam"] = procs.identity(int(self.pid_file.read_text().strip()))

    def _wait_booted(self) -> None:
        waiter = subprocess.Popen(
            [
                str(self.scripts / "rabbitmqctl"),
                "-n",
                self.node,
                "wait",
                str(self.pid_file),
                "--timeout",
                str(int(self.start_timeout)),
            ],
            env=self._env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + self.start_timeout + 5
        try:
            while waiter.poll() is None:
                if self._popen is not None and self._popen.poll() is not None:
                    raise self._failed("the server exited during startup")
                if time.monotonic() > deadline:
                    raise self._failed(f"not booted after {self.start_timeout:.0f}s")
                time.sleep(0.1)
            if waiter.returncode != 0:
                raise self._failed(f"'rabbitmqctl wait' failed ({waiter.returncode})")
        finally:
            if waiter.poll() is None:
                waiter.kill()
                waiter.wait()

    def _failed(self, why: str) -> ServiceUnavailable:
        self._kill()
        tail = procs.log_tail(self.log_file)
        return ServiceUnavailable(
            f"RabbitMQ node {self.node} did not start: {why}; "
            f"see {self.log_file}" + (f" (last line: {tail})" if tail else "")
        )

    def _kill(self) -> None:
        procs.terminate(self.pids.get("server"), grace=5.0, popen=self._popen)
        procs.terminate(self.pids.get("beam"), grace=2.0)
        self._popen = None

    def _beam(self) -> dict[str, Any] | None:
        """The running beam: as recorded, or from the pid file if another process restarted it."""
        if procs.alive(self.pids.get("beam")):
            return self.pids["beam"]
        try:
            ident = procs.identity(int(self.pid_file.read_text().strip()))
        except (OSError, ValueError):
            return None
        proc = procs.same_process(ident)
        with contextlib.suppress(Exception):
            if proc is not None and str(self.base) in " ".join(proc.cmdline()):
                return ident
        return None

    def _stop_node(self) -> None:
        beam = self._beam()
        if beam is not None:
            self.pids["beam"] = beam
            try:  # a clean stop flushes durable state
                self._ctl("stop", str(self.pid_file), timeout=30)
            except subprocess.TimeoutExpired:
                pass
        self._kill()

    def stop(self) -> None:
        self._stop_node()
        self.pids = {}
        if self.epmd_started:
            # `epmd -kill` refuses while any other node is still registered.
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                subprocess.run(["epmd", "-kill"], capture_output=True, timeout=10, check=False)

    def restart(self) -> None:
        """Stop and start on the same ports and data: durable queues survive."""
        self._stop_node()
        self.start()

    def url(self) -> str:
        return f"amqp://{USER}:{PASSWORD}@{HOST}:{self.ports['amqp']}/"

    def management_url(self) -> str:
        return f"http://{HOST}:{self.ports['management']}"

    def health(self) -> tuple[bool, str]:
        try:
            r = httpx.get(f"{self.management_url()}/api/overview", auth=(USER, PASSWORD), timeout=3)
        except httpx.HTTPError as exc:
            return False, f"management API unreachable: {type(exc).__name__}"
        if r.status_code != 200:
            return False, f"management API answered {r.status_code}"
        return True, f"RabbitMQ {r.json().get('rabbitmq_version', '?')} node {self.node}"

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "url": self.url(),
            "management_url": self.management_url(),
            "credentials": {"username": USER, "password": PASSWORD},
            "pids": dict(self.pids),
            "ports": self.ports,
            "dirs": {"base": str(self.base)},
            "node": self.node,
            "server": self.server,
            "epmd_started": self.epmd_started,
        }

    @classmethod
    def from_description(cls, d: dict[str, Any]) -> RabbitMQNode:
        return cls(
            Path(d["dirs"]["base"]),
            d["server"],
            ports=d["ports"],
            pids=d["pids"],
            epmd_started=d.get("epmd_started", False),
        )


def _epmd_running() -> bool:
    try:
        return subprocess.run(["epmd", "-names"], capture_output=True, timeout=5).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


class RabbitMQContainer:
    """RabbitMQ (with management) in a container; the image must be present locally."""

    name = "rabbitmq"
    kind = "container"

    def __init__(
        self,
        image: str = IMAGE,
        ports: dict[str, int] | None = None,
        container_id: str = "",
        start_timeout: float = 60.0,
    ) -> None:
        amqp, mgmt = free_ports(2) if not ports else (ports["amqp"], ports["management"])
        self.ports = {"amqp": amqp, "management": mgmt}
        self.start_timeout = start_timeout
        self.container = Container(image, {5672: amqp, 15672: mgmt}, {}, container_id=container_id)

    def start(self) -> None:
        if not self.container.container_id:
            self.container.run()
        self._wait()

    def _wait(self) -> None:
        if not poll(lambda: self.health()[0], self.start_timeout, interval=0.5):
            raise ServiceUnavailable(
                f"RabbitMQ container {self.container.container_id[:12]} "
                f"not healthy after {self.start_timeout:.0f}s"
            )

    def stop(self) -> None:
        self.container.remove()

    def restart(self) -> None:
        self.container.restart()
        self._wait()

    def url(self) -> str:
        return f"amqp://{USER}:{PASSWORD}@{HOST}:{self.ports['amqp']}/"

    def health(self) -> tuple[bool, str]:
        try:
            r = httpx.get(
                f"http://{HOST}:{self.ports['management']}/api/overview",
                auth=(USER, PASSWORD),
                timeout=3,
            )
        except httpx.HTTPError as exc:
            return False, f"management API unreachable: {type(exc).__name__}"
        return r.status_code == 200, f"management API answered {r.status_code}"

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "url": self.url(),
            "credentials": {"username": USER, "password": PASSWORD},
            "pids": {},
            "ports": self.ports,
            "dirs": {},
            "image": self.container.image,
            "container_id": self.container.container_id,
        }

    @classmethod
    def from_description(cls, d: dict[str, Any]) -> RabbitMQContainer:
        return cls(d["image"], d["ports"], d["container_id"])


def pick_rabbitmq(
    amqp_url: str,
    data_dir: Path,
    env: Mapping[str, str] | None = None,
) -> ExternalRabbitMQ | RabbitMQNode | RabbitMQContainer:
    """Pick and build (not start) the preferred RabbitMQ provider."""
    env = os.environ if env is None else env
    server = None if amqp_url else find_server(env)
    problem = None if amqp_url or server else docker_problem(IMAGE)
    kind = choose_rabbitmq(amqp_url, server, problem)
    if kind == "external":
        return ExternalRabbitMQ(amqp_url)
    if kind == "process":
        assert server is not None
        return RabbitMQNode(Path(data_dir) / "rabbitmq", server)
    return RabbitMQContainer()
