"""Function instances as Docker containers: ``KL_INSTANCE_MODE=container``.

With mode ``container``, an artifact built by the docker backend (its manifest
names the ``image``) and a Docker engine that answers, the launcher of
instances.py starts an instance with ``docker run -d`` instead of forking it.
Otherwise (mode ``process``, the default; no image; no engine) instances stay
processes. The container gets:

* its port 8080 (the generated Dockerfile's) published on 127.0.0.1 only, on a
  host port Docker picks; ``KL_LISTEN_HOST=0.0.0.0`` so the wrapper listens on
  the container's interface rather than its loopback;
* the instance user of ``isolation.py`` (``--user``), as process instances;
* ``--memory`` and an equal ``--memory-swap`` (no swap) from the revision's limit;
* the environment process instances get (``Launcher.instance_env``: no platform
  settings, tokens or credentials) minus PATH/HOME/TMPDIR, which describe the host;
* labels naming its namespace, service and revision (Knative's pod labels) and the
  gateway's data dir, so a gateway (at its first container, and on close) or
  ``kl down`` finds and removes leftovers (:func:`remove_containers`).

Ready is ``GET /readyz`` answering 200 on the published port. A container that
exits first or is not ready in time is removed, and the LaunchError carries its
last log line (hence no ``--rm``: the log must outlive the crash). One
``docker events`` stream per gateway reports exits, so a container that dies
is seen gone like an exited process, and is then removed.

Its output goes where process instances' goes, the gateway's ``logs/instances.log``,
as the function wrote it (no prefix, like theirs; the wrapper's ``READY <port>``
line is dropped, as the node launcher drops it): one ``docker logs --follow`` per
container, from its start. It ends by itself when the container is gone; a
container that exits is removed only once its follower has copied its last lines
(or after ``LOG_DRAIN_TIMEOUT``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from knative_lambda.errors import ConfigError
from knative_lambda.platform.runtime.server import die_with_parent
from knative_lambda.platform.serving.instances import LaunchError, _drain
from knative_lambda.platform.serving.isolation import InstanceUser

log = logging.getLogger("kl.gateway")

MODE_ENV = "KL_INSTANCE_MODE"
MODES = ("process", "container")
READY_TIMEOUT_ENV = "KL_CONTAINER_READY_TIMEOUT"
READY_TIMEOUT = 30.0
CONTAINER_PORT = 8080  # EXPOSE/CMD of builder/templates/Dockerfile.*
STOP_GRACE = 10  # seconds `docker stop` waits after SIGTERM before SIGKILL
LOG_DRAIN_TIMEOUT = 5.0  # seconds an exited container waits for its follower before it is removed
HOST_ONLY_ENV = frozenset({"PATH", "HOME", "TMPDIR", "SYSTEMROOT"})
DOCKER = "docker"

LABEL_MANAGED = "knative-lambda.dev/managed"
LABEL_DATA_DIR = "knative-lambda.dev/data-dir"
LABEL_NAMESPACE = "knative-lambda.dev/namespace"
LABEL_SERVICE = "serving.knative.dev/service"
LABEL_CONFIGURATION = "serving.knative.dev/configuration"
LABEL_REVISION = "serving.knative.dev/revision"


# --- pure parts ----------------------------------------------------------------


def instance_mode(env: Mapping[str, str]) -> str:
    """``process`` (default) or ``container``, from ``KL_INSTANCE_MODE``."""
    value = (env.get(MODE_ENV) or "process").strip().lower()
    if value not in MODES:
        raise ConfigError(f"{MODE_ENV}: must be process or container, got {value!r}")
    return value


def ready_timeout(env: Mapping[str, str]) -> float:
    text = env.get(READY_TIMEOUT_ENV) or ""
    if not text:
        return READY_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise ConfigError(f"{READY_TIMEOUT_ENV}: must be a positive number of seconds, got {text!r}")
    return value


def image_of(manifest: Mapping[str, Any]) -> str | None:
    """The image the docker backend built (other backends record only ``image_uri``, a name).

    Its id when the build recorded one: a tag moves when the same code is rebuilt
    (e.g. with a newer wrapper), and a revision must keep running what it was built
    from, as Knative resolves a revision's tag to a digest.
    """
    if not manifest.get("image"):
        return None
    return str(manifest.get("image_id") or manifest["image"])


def labels(data_dir: str, namespace: str, service: str, revision: str) -> dict[str, str]:
    return {
        LABEL_MANAGED: "true",
        LABEL_DATA_DIR: data_dir,
        LABEL_NAMESPACE: namespace,
        LABEL_SERVICE: service,
        LABEL_CONFIGURATION: service,
        LABEL_REVISION: revision,
    }


def container_name(revision: str, suffix: str) -> str:
    """``kl-<revision>-<suffix>``: readable in ``docker ps``; revision names are DNS labels."""
    safe = "".join(c if c.isalnum() or c in "_.-" else "-" for c in revision)
    return f"kl-{safe}-{suffix}"


def container_env(env: Mapping[str, str]) -> dict[str, str]:
    out = {k: v for k, v in env.items() if k not in HOST_ONLY_ENV}
    out["PORT"] = str(CONTAINER_PORT)
    out["KL_LISTEN_HOST"] = "0.0.0.0"  # inside its own network namespace; published on 127.0.0.1 only
    return out


def run_argv(
    image: str,
    env: Mapping[str, str],
    container_labels: Mapping[str, str],
    memory_limit_mb: int,
    name: str | None = None,
    user: InstanceUser | None = None,
) -> list[str]:
    """The ``docker run`` command line of one instance (as ``user`` when given: isolation.py)."""
    argv = [
        DOCKER, "run", "-d", "--pull", "never", "--init",
        "-p", f"127.0.0.1::{CONTAINER_PORT}",
        "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
    ]
    if name:
        argv += ["--name", name]
    if user is not None:
        argv += ["--user", f"{user.uid}:{user.gid}"]
    if memory_limit_mb:
        argv += ["--memory", f"{memory_limit_mb}m", "--memory-swap", f"{memory_limit_mb}m"]
    for key, value in sorted(container_labels.items()):
        argv += ["--label", f"{key}={value}"]
    for key, value in sorted(env.items()):
        argv += ["-e", f"{key}={value}"]
    argv.append(image)
    return argv


INSPECT_FORMAT = "{{.State.Running}} {{.State.Pid}} {{.State.ExitCode}} {{json .NetworkSettings.Ports}}"


@dataclass(frozen=True)
class State:
    running: bool
    pid: int
    exit_code: int
    port: int | None  # the host port of CONTAINER_PORT, None when not published (not running)


def parse_inspect(text: str) -> State:
    """``docker inspect --format INSPECT_FORMAT`` output -> State."""
    running, pid, code, ports_json = text.strip().split(" ", 3)
    ports = json.loads(ports_json) or {}
    port = None
    for binding in ports.get(f"{CONTAINER_PORT}/tcp") or []:
        if binding.get("HostPort"):
            port = int(binding["HostPort"])
            break
    return State(running == "true", int(pid), int(code), port)


def parse_event(line: str | bytes) -> tuple[str, str, str] | None:
    """A ``docker events --format '{{json .}}'`` line -> (action, container id, exit code)."""
    try:
        event = json.loads(line)
        actor = event.get("Actor") or {}
        return str(event.get("Action") or event.get("status")), str(actor.get("ID") or event.get("id")), str(
            (actor.get("Attributes") or {}).get("exitCode", ""))
    except (ValueError, AttributeError, TypeError):
        return None


async def copy_output(stream: asyncio.StreamReader, log_path: Path) -> None:
    """Append a container's stdout to ``log_path`` as written, until EOF, minus the wrapper's first
    ``READY <port>`` line: a handshake, not the function's output (node's is not logged either)."""
    with open(log_path, "ab") as log:
        while True:
            try:
                line = await stream.readuntil(b"\n")
            except asyncio.IncompleteReadError as exc:  # ended without a newline
                log.write(exc.partial)
                return
            except asyncio.LimitOverrunError:  # a line over the reader's limit: still buffered, copied below
                break
            if line.startswith(b"READY "):
                break
            log.write(line)  # the function's import-time output
            log.flush()
    await _drain(stream, log_path)


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:500] if lines else "(no output)"


# --- docker CLI ----------------------------------------------------------------


async def docker(*args: str, timeout: float = 60.0) -> tuple[int, str, str]:
    """``(returncode, stdout, stderr)`` of one docker CLI command; the CLI never outlives the call."""
    proc = await asyncio.create_subprocess_exec(
        DOCKER, *args, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        raise
    return proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace")


def remove_containers(data_dir: str | Path | None = None, timeout: float = 60.0) -> int:
    """Remove (force) the platform's containers, of one data dir or all; how many. 0 without docker."""
    argv = [DOCKER, "ps", "-aq", "--filter", f"label={LABEL_MANAGED}=true"]
    if data_dir is not None:
        argv += ["--filter", f"label={LABEL_DATA_DIR}={Path(data_dir).resolve()}"]
    try:
        ids = subprocess.run(argv, capture_output=True, text=True, timeout=timeout).stdout.split()
        if ids:
            subprocess.run([DOCKER, "rm", "-f", *ids], capture_output=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return 0
    return len(ids)


# --- instances -----------------------------------------------------------------


class ContainerHandle:
    """A running container instance (an ``instances.InstanceHandle``, like a process)."""

    unix: str | None = None

    def __init__(self, owner: Containers, cid: str, image: str, started: float) -> None:
        self.owner = owner
        self.id = cid
        self.image = image
        self.started = started
        self.pid = 0  # the container's init process, as the host sees it
        self.port = 0
        self.reason = ""
        self.oom = False
        self.stopping = False
        self.ready = False  # until then an exit is the launch's to report, not the watcher's
        self.exited: str | None = None  # exit code, once the events stream said it died
        self.follower: asyncio.Task | None = None  # copies its output to instances.log
        self._finishing = False
        self._gone = asyncio.Event()

    async def wait(self) -> str:
        """Return when the container has exited (and is removed), with a short reason."""
        await self._gone.wait()
        return self.reason

    def kill(self, sig: int = signal.SIGTERM) -> None:
        if not self._gone.is_set():
            self.stopping = True
            self.owner.spawn(self.owner.stop(self, force=sig == signal.SIGKILL))

    def alive(self) -> bool:
        return self.exited is None and not self._gone.is_set()

    async def finish(self, exit_code: str) -> None:
        """The container exited: say why (its last log line if unasked), remove it, report it gone."""
        if self._finishing:
            return
        self._finishing = True
        try:
            reason = f"exit {exit_code or '?'}" + (" (out of memory)" if self.oom else "")
            if not self.stopping:
                reason += f": {await self.owner.last_log_line(self.id)}"
            self.reason = reason
            await self.owner.end_follower(self, LOG_DRAIN_TIMEOUT)  # its last lines, before they are removed
            await self.owner.remove(self.id)
        finally:
            self.owner.handles.pop(self.id, None)
            self._gone.set()


class Containers:
    """Starts, watches and removes the container instances of one gateway."""

    def __init__(self, data_dir: str | Path, ready_timeout: float = READY_TIMEOUT,
                 log_path: str | Path | None = None) -> None:
        self.data_dir = str(Path(data_dir).resolve())
        self.ready_timeout = ready_timeout
        # where process instances' output goes (instances.Launcher.log_path)
        self.log_path = Path(log_path) if log_path else Path(self.data_dir) / "logs" / "instances.log"
        self.handles: dict[str, ContainerHandle] = {}
        self._lock = asyncio.Lock()
        self._engine: str | None = None  # why Docker cannot be used; None when it can
        self._checked_at: float | None = None
        self._events: asyncio.Task | None = None
        self._tasks: set[asyncio.Task] = set()
        self._followers: set[asyncio.Task] = set()  # one per container not yet removed
        self._told: set[str] = set()

    @classmethod
    def from_env(cls, data_dir: str | Path, env: Mapping[str, str],
                 log_path: str | Path | None = None) -> Containers | None:
        """A Containers when ``KL_INSTANCE_MODE=container``; None in process mode."""
        if instance_mode(env) != "container":
            return None
        return cls(data_dir, ready_timeout(env), log_path)

    def spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _tell_once(self, key: str, message: str, *args: Any) -> None:
        if key not in self._told:
            self._told.add(key)
            log.warning(message, *args)

    async def image_for(self, artifact_dir: str, manifest: Mapping[str, Any]) -> str | None:
        """The image to run this artifact from, or None to run it as a process (said once why)."""
        image = image_of(manifest)
        if image is None:
            self._tell_once(artifact_dir, "%s has no image (built by the %s backend): it runs as processes",
                            artifact_dir, manifest.get("backend", "local"))
            return None
        reason = await self._check_engine()
        if reason is not None:
            self._tell_once("engine", "KL_INSTANCE_MODE=container, but %s: instances run as processes", reason)
            return None
        return image

    async def _check_engine(self) -> str | None:
        async with self._lock:
            now = time.monotonic()
            if self._checked_at is not None and (self._engine is None or now - self._checked_at < 30):
                return self._engine
            from knative_lambda.platform.builder.backends.docker import engine_reason

            self._engine, self._checked_at = await engine_reason(), now
            if self._engine is None and self._events is None:
                since = time.time()
                # leftovers of an earlier gateway on this data dir (killed before it could clean up)
                if removed := await asyncio.to_thread(remove_containers, self.data_dir):
                    log.warning("removed %d leftover instance containers of %s", removed, self.data_dir)
                self._events = asyncio.get_running_loop().create_task(self._watch(since))
            return self._engine

    async def launch(
        self, image: str, env: Mapping[str, str], memory_limit_mb: int, namespace: str, service: str,
        revision: str, on_pid: Any = None, user: InstanceUser | None = None,
    ) -> ContainerHandle:
        """Start one instance; returns once it answers /readyz (LaunchError with its last log line otherwise)."""
        if reason := await self._check_engine():
            raise LaunchError(f"cannot start a container of {image}: {reason}")
        argv = run_argv(image, container_env(env), labels(self.data_dir, namespace, service, revision),
                        memory_limit_mb, container_name(revision, secrets.token_hex(3)), user)
        rc, out, err = await docker(*argv[1:])
        started = time.monotonic()  # the container's process exists: `docker run -d` returns once it started
        cid = out.strip().splitlines()[-1] if out.strip() else ""
        if rc != 0 or not cid:
            if cid:  # created but not started (e.g. a bad --memory): never leave it behind
                await self.remove(cid)
            raise LaunchError(f"docker run of {image} failed: {last_line(err)}")
        handle = self.handles[cid] = ContainerHandle(self, cid, image, started)
        handle.follower = follower = asyncio.get_running_loop().create_task(self.follow_logs(cid))
        self._followers.add(follower)
        follower.add_done_callback(self._followers.discard)
        try:
            await self._started(handle, on_pid)
        except BaseException:
            self.handles.pop(cid, None)
            await asyncio.shield(self._discard(handle))
            raise
        return handle

    async def _discard(self, handle: ContainerHandle) -> None:
        """Remove a container that did not become ready, keeping its output (why it failed) in the log."""
        if handle.exited is not None:  # exited: its follower ends once it has every line
            await self.end_follower(handle, LOG_DRAIN_TIMEOUT)
            await self.remove(handle.id)
        else:  # still running (not ready in time, launch cancelled): removing it ends the follower
            await self.remove(handle.id)
            await self.end_follower(handle, LOG_DRAIN_TIMEOUT)

    async def follow_logs(self, cid: str) -> None:
        """Copy a container's stdout and stderr, from its start until it is gone, to ``log_path``."""
        try:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.log_path, "ab") as log:
                # stderr straight to the file, as the zygote's instances write theirs
                proc = await asyncio.create_subprocess_exec(
                    DOCKER, "logs", "--follow", cid, stdin=asyncio.subprocess.DEVNULL,
                    stdout=asyncio.subprocess.PIPE, stderr=log, preexec_fn=die_with_parent,
                )
        except OSError as exc:
            self._tell_once("follow", "cannot copy container output to %s: %s", self.log_path, exc)
            return
        assert proc.stdout is not None
        try:
            await copy_output(proc.stdout, self.log_path)
        finally:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()

    async def end_follower(self, handle: ContainerHandle, timeout: float) -> None:
        """Wait (up to ``timeout``) for the follower to reach the end of the container's output, then stop it."""
        task = handle.follower
        if task is None:
            return
        await asyncio.wait({task}, timeout=timeout)
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _started(self, handle: ContainerHandle, on_pid: Any) -> None:
        short = f"container {handle.id[:12]} of {handle.image}"
        rc, out, err = await docker("inspect", "--format", INSPECT_FORMAT, handle.id)
        if rc != 0:
            raise LaunchError(f"{short} vanished: {last_line(err)}")
        state = parse_inspect(out)
        if not state.running or state.port is None:
            handle.exited = str(state.exit_code)
            raise LaunchError(f"{short} exited with code {state.exit_code} before it was ready: "
                              f"{await self.last_log_line(handle.id)}")
        handle.pid, handle.port = state.pid, state.port
        if on_pid is not None:
            on_pid(state.pid, handle.started)
        url = f"http://127.0.0.1:{state.port}/readyz"
        deadline = time.monotonic() + self.ready_timeout
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
            while True:
                if handle.exited is not None:
                    raise LaunchError(f"{short} exited with code {handle.exited} before it was ready: "
                                      f"{await self.last_log_line(handle.id)}")
                # docker-proxy accepts and drops connections until the wrapper listens
                with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
                    async with http.get(url) as resp:
                        if resp.status == 200:
                            handle.ready = True
                            if handle.exited is not None:  # died between the answer and now
                                self.spawn(handle.finish(handle.exited))
                            return
                if time.monotonic() > deadline:
                    raise LaunchError(f"{short} not ready in {self.ready_timeout:g} s: "
                                      f"{await self.last_log_line(handle.id)}")
                await asyncio.sleep(0.01)

    async def last_log_line(self, cid: str) -> str:
        with contextlib.suppress(OSError, TimeoutError):
            rc, out, err = await docker("logs", "--tail", "20", cid, timeout=10)
            if rc == 0:
                return last_line(out + "\n" + err if err.strip() else out)  # the wrapper logs to stderr
            return f"(no log: {last_line(err)})"
        return "(no log)"

    async def stop(self, handle: ContainerHandle, force: bool = False) -> None:
        """SIGTERM (in-flight requests finish), SIGKILL after STOP_GRACE; then finish the handle."""
        args = ("kill", handle.id) if force else ("stop", "-t", str(STOP_GRACE), handle.id)
        with contextlib.suppress(OSError, TimeoutError):
            await docker(*args, timeout=STOP_GRACE + 30)
        # the events stream says so too; this covers a stream that broke
        code = ""
        with contextlib.suppress(OSError, TimeoutError, ValueError):
            rc, out, _ = await docker("inspect", "--format", INSPECT_FORMAT, handle.id)
            if rc == 0:
                code = str(parse_inspect(out).exit_code)
        await handle.finish(code)

    async def remove(self, cid: str) -> None:
        with contextlib.suppress(OSError, TimeoutError):
            await docker("rm", "-f", cid, timeout=30)

    async def _watch(self, since: float) -> None:
        """Follow die/oom events of this gateway's containers; restart the stream if it breaks."""
        while True:
            proc = await asyncio.create_subprocess_exec(
                DOCKER, "events", "--since", f"{since:.3f}", "--format", "{{json .}}",
                "--filter", "type=container", "--filter", "event=die", "--filter", "event=oom",
                "--filter", f"label={LABEL_DATA_DIR}={self.data_dir}",
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
            )
            assert proc.stdout is not None
            try:
                async for line in proc.stdout:
                    event = parse_event(line)
                    handle = self.handles.get(event[1]) if event else None
                    if event is None or handle is None:
                        continue
                    if event[0] == "oom":
                        handle.oom = True
                    elif event[0] == "die":
                        handle.exited = event[2]
                        if handle.ready:
                            self.spawn(handle.finish(event[2]))
                since = time.time() - 1  # replay from the break: finish() ignores repeats
            finally:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
            await asyncio.sleep(1)

    async def close(self) -> None:
        """Stop following events and remove every container of this gateway."""
        if self._events is not None:
            self._events.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._events
        for task in list(self._tasks):
            task.cancel()
        if self._checked_at is not None and self._engine is None:
            await asyncio.to_thread(remove_containers, self.data_dir)
        if self._followers:  # their containers are removed: the followers are at the end of their output
            followers = set(self._followers)
            await asyncio.wait(followers, timeout=1.0)
            for task in followers:
                task.cancel()
            await asyncio.gather(*followers, return_exceptions=True)
        for handle in list(self.handles.values()):
            handle._gone.set()
        self.handles.clear()
