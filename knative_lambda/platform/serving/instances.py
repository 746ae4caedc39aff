"""Function instances as OS processes.

Python instances are forked by a zygote (``runtime/zygote.py``): one
pre-initialized interpreter per gateway that has aiohttp and the wrapper
imported, so a cold start is a fork plus the function's import, and a function
at zero holds no process. Node instances are spawned (``node wrapper.js``).

Every instance gets a scrubbed environment (no ``KL_*`` settings or tokens, no
cloud credentials: only PATH/HOME/locale plus ``K_SERVICE``, ``K_REVISION``,
``KL_EVENT_PREFIX``, ``KL_PARSER_ID``) and a memory limit: ``RLIMIT_AS`` for
Python; ``--max-old-space-size`` for Node, whose V8 reserves more address space
than any sane RLIMIT_AS. Instances die with the zygote or gateway (PDEATHSIG).
When the gateway runs as root, instances give up root before the function's
code runs (``serving/isolation.py`` picks the user).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import knative_lambda
from knative_lambda.errors import ConfigError, PlatformError
from knative_lambda.platform.runtime import loader, privileges
from knative_lambda.platform.serving import isolation

KEEP_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "SYSTEMROOT")
WRAPPER_JS = Path(__file__).resolve().parent.parent / "runtime" / "wrapper.js"
PROJECT_ROOT = Path(knative_lambda.__file__).resolve().parent.parent


class LaunchError(PlatformError):
    """An instance could not start (bad artifact, import error, crash before ready)."""


def scrubbed_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """What an instance may see: basics from our environment plus ``extra``."""
    env = {k: os.environ[k] for k in KEEP_ENV if k in os.environ}
    env.update(extra or {})
    return env


class InstanceHandle(Protocol):
    """What the gateway needs of a running instance: a process or a container."""

    pid: int
    port: int
    started: float  # monotonic time the instance's process existed
    unix: str | None  # unix socket it also listens on, if any

    async def wait(self) -> str: ...
    def kill(self, sig: int = signal.SIGTERM) -> None: ...
    def alive(self) -> bool: ...


@dataclass(eq=False)
class ProcessHandle:
    """A running instance process: its pid, port, and how to learn it died."""

    pid: int
    port: int
    started: float  # monotonic time the process existed
    unix: str | None = None  # unix socket the instance also listens on (zygote instances)
    _reader: asyncio.StreamReader | None = None
    _writer: asyncio.StreamWriter | None = None
    _proc: asyncio.subprocess.Process | None = None

    async def wait(self) -> str:
        """Return when the process is gone, with a short reason."""
        if self._proc is not None:
            code = await self._proc.wait()
            return f"exit {code}"
        assert self._reader is not None
        with contextlib.suppress(ConnectionError, OSError):
            while await self._reader.read(4096):
                pass
        if self._writer is not None:
            self._writer.close()
        if self.unix:  # a killed instance cannot remove its own socket file
            with contextlib.suppress(OSError):
                os.unlink(self.unix)
        return "exited"

    def kill(self, sig: int = signal.SIGTERM) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(self.pid, sig)

    def alive(self) -> bool:
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        if self._proc is not None:
            return self._proc.returncode is None
        return True


class Zygote:
    """The forking Python runtime: started once, restarted if it dies."""

    def __init__(self, socket_path: Path, log_path: Path, python: str = sys.executable, spares: int = 2,
                 extra_env: dict[str, str] | None = None) -> None:
        self.spares = spares
        # the zygote's own settings (where spans go); a spare clears them before the function loads
        self.extra_env = dict(extra_env or {})
        self.socket_path = socket_path
        self.log_path = log_path
        self.python = python
        self.proc: asyncio.subprocess.Process | None = None
        self._lock = asyncio.Lock()

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc and self.proc.returncode is None else None

    async def ensure(self) -> None:
        async with self._lock:
            if self.proc is not None and self.proc.returncode is None:
                return
            await self._start()

    async def _start(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()
        for stale in self.socket_path.parent.glob("i-*.sock"):  # left by instances of a dead zygote
            with contextlib.suppress(OSError):
                stale.unlink()
        self.socket_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = scrubbed_env({"PYTHONPATH": str(PROJECT_ROOT), "PYTHONUNBUFFERED": "1",
                            "PYTHONDONTWRITEBYTECODE": "1", **self.extra_env})
        with open(self.log_path, "ab") as log:
            self.proc = await asyncio.create_subprocess_exec(
                self.python, "-m", "knative_lambda.platform.runtime.zygote", str(self.socket_path), str(self.spares),
                stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log, env=env,
                cwd=str(self.socket_path.parent),
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.returncode is not None:
                raise LaunchError(f"python runtime exited with {self.proc.returncode}; see {self.log_path}")
            try:
                _, w = await asyncio.open_unix_connection(str(self.socket_path))
                w.close()
                return
            except (FileNotFoundError, ConnectionRefusedError):
                await asyncio.sleep(0.01)
        raise LaunchError(f"python runtime did not start in 30 s; see {self.log_path}")

    async def fork(self, request: dict[str, Any], on_pid: Any = None) -> ProcessHandle:
        """Fork one instance; returns once it listens (LaunchError with its message otherwise)."""
        await self.ensure()
        reader, writer = await asyncio.open_unix_connection(str(self.socket_path), limit=1 << 20)
        writer.write(json.dumps(request).encode() + b"\n")
        pid: int | None = None
        started = time.monotonic()
        while True:
            line = await reader.readline()
            if not line:
                writer.close()
                raise LaunchError("instance exited before it was ready (see the gateway's instances.log)")
            msg = json.loads(line)
            if "error" in msg:
                writer.close()
                raise LaunchError(msg["error"])
            if "pid" in msg:
                pid = int(msg["pid"])
                started = float(msg.get("taken") or time.monotonic())
                if on_pid is not None:
                    on_pid(pid, started)
            if "port" in msg and pid is not None:
                return ProcessHandle(pid, int(msg["port"]), started, msg.get("unix"), reader, writer)

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 5)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()


def _node_preexec(user: isolation.InstanceUser | None = None) -> None:  # pragma: no cover - in the child
    from knative_lambda.platform.runtime.server import die_with_parent

    die_with_parent()
    os.setsid()
    if user is not None:  # here, not Popen(user=...): uvloop's subprocess does not take those
        privileges.drop_to(user.uid, user.gid)


class Launcher:
    """Starts instances of a revision: fork from the zygote (Python) or spawn (Node)."""

    def __init__(self, data_dir: Path, event_prefix: str, spares: int | None = None) -> None:
        run_dir = Path(data_dir).resolve() / "run"
        self.log_path = Path(data_dir).resolve() / "logs" / "instances.log"
        # unix socket paths are limited to ~100 bytes: fall back to /tmp when long
        sock = run_dir / f"zygote-{os.getpid()}.sock"
        if len(str(sock)) > 100:
            sock = Path("/tmp") / f"kl-zygote-{os.getpid()}.sock"
        if spares is None:
            spares = int(os.environ.get("KL_ZYGOTE_SPARES", "2") or 2)
        trace_env = {"KL_TRACE_DIR": str(Path(data_dir).resolve() / "traces")}
        if endpoint := os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
            trace_env["KL_OTLP_ENDPOINT"] = endpoint
        self.zygote = Zygote(sock, self.log_path, spares=spares, extra_env=trace_env)
        self.event_prefix = event_prefix
        from knative_lambda.platform.serving.containers import Containers  # it imports this module

        # None unless KL_INSTANCE_MODE=container; container output goes to instances.log too
        self.containers = Containers.from_env(data_dir, os.environ, self.log_path)
        self.users = isolation.InstanceUsers(
            isolation.parse_policy(os.environ.get(isolation.ENV, ""), os.geteuid() == 0))
        self._artifacts: dict[str, loader.Artifact] = {}

    def instance_env(self, namespace: str, service: str, revision: str, artifact: loader.Artifact) -> dict[str, str]:
        return scrubbed_env(
            {
                "K_SERVICE": service,
                "K_REVISION": revision,
                "K_CONFIGURATION": service,
                "K_NAMESPACE": namespace,
                "KL_EVENT_PREFIX": self.event_prefix,
                "KL_PARSER_ID": str(artifact.manifest.get("parser_id", "")),
                "PYTHONUNBUFFERED": "1",
                "PYTHONDONTWRITEBYTECODE": "1",
            }
        )

    async def launch(
        self,
        namespace: str,
        service: str,
        revision: str,
        artifact_dir: str,
        memory_limit_mb: int,
        workers: int,
        on_pid: Any = None,
    ) -> InstanceHandle:
        artifact = self._artifacts.get(artifact_dir)
        if artifact is None:  # a revision's artifact never changes: read its manifest once
            try:
                artifact = self._artifacts[artifact_dir] = loader.read_artifact(artifact_dir)
            except loader.FunctionLoadError as exc:
                raise LaunchError(str(exc)) from None
        env = self.instance_env(namespace, service, revision, artifact)
        try:
            user = self.users.user_for(namespace, service)
        except ConfigError as exc:
            raise LaunchError(str(exc)) from None
        if user is not None:  # the platform user's home is not the instance user's to write
            env["HOME"] = env.get("TMPDIR") or "/tmp"
        if self.containers and (image := await self.containers.image_for(artifact_dir, artifact.manifest)):
            return await self.containers.launch(image, env, memory_limit_mb, namespace, service, revision, on_pid,
                                                user)
        if artifact.runtime == "python":
            request = {
                "artifact": str(artifact.dir),
                "env": env,
                "memory_limit": memory_limit_mb * 1024 * 1024,
                "workers": workers,
            }
            if user is not None:
                request.update(uid=user.uid, gid=user.gid)
            return await self.zygote.fork(request, on_pid)
        return await self._spawn_node(artifact, env, memory_limit_mb, on_pid, user)

    async def _spawn_node(
        self, artifact: loader.Artifact, env: dict[str, str], memory_limit_mb: int, on_pid: Any,
        user: isolation.InstanceUser | None = None,
    ) -> ProcessHandle:
        env = {**env, "PORT": "0"}
        cwd, wrapper = str(artifact.code_dir), str(WRAPPER_JS)
        as_user: dict[str, Any] = {}
        anchors = privileges.Anchors()
        if user is not None:  # reach the code through held directories (runtime/privileges.py)
            anchors = privileges.anchor([artifact.dir, WRAPPER_JS.parent])
            artifact, wrapper = anchors.artifact(artifact), anchors.path(WRAPPER_JS)
            cwd = str(artifact.code_dir)  # uvloop's child changes directory after preexec_fn
            as_user = {"pass_fds": anchors.fds}
        if artifact.node_path:
            env["NODE_PATH"] = os.pathsep.join(artifact.node_path)
        argv = [artifact.node]
        if memory_limit_mb:
            argv.append(f"--max-old-space-size={memory_limit_mb}")
        if user is not None:  # else node resolves the held paths back to ones it cannot enter
            argv += ["--preserve-symlinks", "--preserve-symlinks-main"]
        argv += [wrapper, str(artifact.entry_path), artifact.export]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with open(self.log_path, "ab") as log:
                proc = await asyncio.create_subprocess_exec(
                    *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=log,
                    env=env, cwd=cwd, preexec_fn=functools.partial(_node_preexec, user), **as_user,
                )
        finally:
            for fd in anchors.fds:
                os.close(fd)
        started = time.monotonic()
        if on_pid is not None:
            on_pid(proc.pid, started)
        assert proc.stdout is not None
        line = await proc.stdout.readline()
        if not line.startswith(b"READY "):
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise LaunchError(f"node instance exited before it was ready (see {self.log_path})")
        port = int(line.split()[1])
        asyncio.get_running_loop().create_task(_drain(proc.stdout, self.log_path))
        return ProcessHandle(proc.pid, port, started, _proc=proc)

    async def close(self) -> None:
        if self.containers is not None:
            await self.containers.close()
        await self.zygote.stop()


async def _drain(stream: asyncio.StreamReader, log_path: Path) -> None:
    """Copy a node instance's stdout to the log so a chatty function never blocks on a full pipe."""
    with open(log_path, "ab") as log, contextlib.suppress(Exception):
        while chunk := await stream.read(65536):
            log.write(chunk)
            log.flush()
