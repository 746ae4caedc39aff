"""Bring the local target up and down: services, then platform processes.

``up`` is idempotent (a healthy platform is left alone) and recovers from a
crashed run (stale state is cleaned up first, and said so). ``down`` stops
everything ``up`` started, in reverse order, and removes the state file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import os
import secrets
import shutil
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from knative_lambda.errors import KLError
from knative_lambda.harness import state as statefile
from knative_lambda.harness import supervisor
from knative_lambda.harness.components import COMPONENTS
from knative_lambda.harness.faults.links import (
    proxied_settings,
    start_link_proxies,
    stop_link_proxies,
)
from knative_lambda.harness.services import (
    attach,
    free_ports,
    resolve_rabbitmq,
    resolve_s3,
    with_services,
)
from knative_lambda.harness.state import State
from knative_lambda.settings import Settings

Progress = Callable[[str], None]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _available(module: str) -> bool:
    return importlib.util.find_spec(f"{module}.__main__") is not None


def _health_of_service(description: dict[str, Any]) -> tuple[bool, str]:
    try:
        return attach(description).health()
    except Exception as exc:  # a service we cannot even describe is unhealthy, not a crash
        return False, str(exc)


def _health_of_component(record: dict[str, Any]) -> tuple[bool, str]:
    if not supervisor.alive(record):
        return False, "not running"
    try:
        response = httpx.get(record["url"] + "/healthz", timeout=2.0)
    except httpx.HTTPError as exc:
        return False, f"no answer ({type(exc).__name__})"
    return response.is_success, f"HTTP {response.status_code}"


def urls_of(ports: dict[str, int]) -> dict[str, str]:
    return {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}


def security_env(component: str, settings: Settings, urls: dict[str, str]) -> dict[str, str]:
    """With a token, the builder and deployer take events only with it, and the broker
    sends it to them, to them only (see platform/broker/auth.py). Pure."""
    if not settings.token:
        return {}
    env = {"KL_RECEIVER_TOKEN": "1"}
    if component == "broker":
        receivers = [urls[name] + "/" for name in ("builder", "deployer") if name in urls]
        env["KL_BROKER_TOKEN_SUBSCRIBERS"] = ",".join(receivers)
    return env


def component_settings(state: State) -> Settings:
    """What platform processes get: the state's settings, through fault proxies if any.

    The state keeps the direct URLs, which the harness itself uses: a network
    fault is between platform parts, not between the harness and the services.
    """
    return proxied_settings(state.platform_settings(), state.settings.get("fault_links") or {})


def health(state: State) -> dict[str, tuple[bool, str]]:
    """Health of every part recorded in ``state``, services first."""
    report = {name: _health_of_service(desc) for name, desc in state.services.items()}
    report.update({name: _health_of_component(rec) for name, rec in state.components.items()})
    return report


def headlines(state: State) -> dict[str, dict[str, float]]:
    """Headline metrics per platform process (``kl status``); a process that does not
    answer is left out."""
    from knative_lambda.harness.headline import summarize

    out: dict[str, dict[str, float]] = {}
    for name, record in state.components.items():
        try:
            response = httpx.get(record["url"] + "/metrics", timeout=2.0)
            if response.is_success:
                out[name] = summarize(name, response.text)
        except (httpx.HTTPError, KeyError, ValueError):
            continue
    return out


def up(
    state_path: Path,
    *,
    base: Settings | None = None,
    open_access: bool = False,
    faults: bool = False,
    progress: Progress = _stderr,
) -> State:
    """Start the local target; returns its state (already saved to ``state_path``).

    The management APIs, the broker ingress and the platform's own event receivers
    require a generated bearer token (kept in the state file, which every client
    reads) unless ``open_access`` or ``base.token`` says otherwise.
    """
    if state_path.exists():
        try:
            previous = statefile.load(state_path)
        except KLError:
            previous = None
        if previous is not None:
            report = health(previous)
            if report and all(ok for ok, _ in report.values()):
                progress(f"already up ({state_path}); nothing to do")
                return previous
            dead = [name for name, (ok, _) in report.items() if not ok]
            progress(f"found stale state in {state_path} ({', '.join(dead) or 'empty'} not healthy); "
                     "cleaning it up first")
        down(state_path, progress=progress, quiet=True)

    started = time.monotonic()
    if base is None:
        base = Settings.from_env()
        if "KL_DATA_DIR" not in os.environ:  # each state file gets its own platform data
            base = dataclasses.replace(base, data_dir=state_path.parent)
    data_dir = base.data_dir.resolve()
    (data_dir / "logs").mkdir(parents=True, exist_ok=True)
    # A fresh platform starts with no triggers or services: those of a previous run
    # point at dead ports (restarts of one part restore them). The build cache stays.
    for runtime_state in ("broker", "gateway"):
        shutil.rmtree(data_dir / runtime_state, ignore_errors=True)
    token = base.token or ("" if open_access else secrets.token_urlsafe(24))
    state = State(target="local", settings={})
    services: list[Any] = []

    try:
        progress("starting RabbitMQ and the S3 API ...")
        rabbit = resolve_rabbitmq(base, data_dir)
        s3 = resolve_s3(base, data_dir)
        services = [rabbit, s3]
        with ThreadPoolExecutor(max_workers=2) as pool:
            futures = [pool.submit(service.start) for service in (rabbit, s3)]
            errors = []
            for future in futures:
                try:
                    future.result()
                except Exception as exc:
                    errors.append(exc)
        for service in (rabbit, s3):
            with contextlib.suppress(Exception):
                state.services[service.name] = service.describe()
        statefile.save(state, state_path)
        if errors:
            raise errors[0]
        progress(f"  rabbitmq ({rabbit.kind}) {rabbit.url()}")
        progress(f"  s3 ({s3.kind}) {s3.url()}")

        # one call: ports picked one by one can repeat (the kernel reuses a port just freed)
        ports = dict(zip((c.name for c in COMPONENTS), free_ports(len(COMPONENTS)), strict=True))
        urls = {c.url_setting: f"http://127.0.0.1:{ports[c.name]}" for c in COMPONENTS if c.url_setting}
        settings = dataclasses.replace(with_services(base, rabbit, s3), token=token,
                                       data_dir=data_dir, **urls)
        state.settings = statefile.settings_to_dict(settings)
        if faults:  # the platform's own traffic to RabbitMQ and S3 goes through fault proxies
            state.settings["fault_links"] = start_link_proxies(settings, data_dir)
            progress("  fault proxies on the rabbitmq and s3 links")
        statefile.save(state, state_path)
        settings = component_settings(state)

        # All at once: the builder and deployer retry registering their triggers until
        # the broker answers, and the builder is ready only once its trigger is in.
        pending = []
        for component in COMPONENTS:
            if not _available(component.module):
                progress(f"  {component.name}: not built in this version, skipped")
                continue
            port = ports[component.name]
            child_env = {**os.environ, **dataclasses.replace(settings, port=port).to_env(),
                         **security_env(component.name, settings, urls_of(ports))}
            record = supervisor.spawn(
                [sys.executable, "-m", component.module], child_env,
                data_dir / "logs" / f"{component.name}.log",
            )
            record.update(port=port, url=f"http://127.0.0.1:{port}")
            state.components[component.name] = record
            statefile.save(state, state_path)
            pending.append((component, record))
        for component, record in pending:
            supervisor.wait_healthy(record["url"] + component.health_path, record, component.name)
            progress(f"  {component.name} {record['url']}")
    except BaseException:
        progress("start-up failed; stopping what was started")
        down(state_path, progress=progress, quiet=True)
        for service in services:  # interrupted before it was recorded in the state file
            if service.name not in state.services:
                with contextlib.suppress(Exception):
                    service.stop()
        raise

    progress(f"local target up in {time.monotonic() - started:.1f}s (state: {state_path})")
    return state


def down(state_path: Path, *, progress: Progress = _stderr, quiet: bool = False) -> list[str]:
    """Stop every part recorded in the state file; returns what was stopped."""
    if not state_path.exists():
        if not quiet:
            progress(f"nothing to stop: no state at {state_path}")
        return []
    try:
        state = statefile.load(state_path)
    except KLError:
        state_path.unlink(missing_ok=True)
        return []
    def stop_service(item: tuple[str, dict[str, Any]]) -> str | None:
        name, description = item
        try:
            attach(description).stop()
            return name
        except Exception as exc:
            progress(f"  could not stop {name}: {exc}")
            return None

    # Platform processes first (they hold connections to the services), each group
    # in parallel: RabbitMQ alone takes seconds to stop cleanly.
    with ThreadPoolExecutor(max_workers=8) as pool:
        components = list(state.components.items())
        done = pool.map(lambda item: supervisor.terminate(item[1]), components)
        stopped = [name for (name, _), ok in zip(components, done, strict=True) if ok]
        stopped += [f"faults-{link}" for link in
                    stop_link_proxies(state.settings.get("fault_links") or {})]
        stopped += [name for name in pool.map(stop_service, state.services.items()) if name]
    if shutil.which("docker") and state.settings.get("data_dir"):  # left by a gateway killed before cleanup
        from knative_lambda.platform.serving.containers import remove_containers

        if removed := remove_containers(state.settings["data_dir"]):
            stopped.append(f"{removed} instance containers")
    state_path.unlink(missing_ok=True)
    if not quiet:
        progress(f"stopped: {', '.join(stopped) or 'nothing was running'}")
    return stopped


def _pid_records(state: State, part: str) -> list[dict[str, Any]]:
    if part in state.components:
        return [state.components[part]]
    if part in state.services:
        # the server process leads its group, so signalling it reaches beam / moto too
        server = state.services[part].get("pids", {}).get("server")
        return [server] if server else []
    known = ", ".join([*state.services, *state.components])
    raise KLError(f"unknown part {part!r}; parts: {known}")


def signal_part(state: State, part: str, sig: int) -> None:
    """Send ``sig`` (SIGKILL, SIGSTOP, SIGCONT) to a part's processes."""
    records = _pid_records(state, part)
    if not records:
        raise KLError(f"{part} runs outside this machine's processes; it cannot be signalled")
    for record in records:
        supervisor.signal_process(record, sig)


def restart_part(state_path: Path, part: str, *, timeout: float = 60.0,
                 progress: Progress = _stderr) -> None:
    """Restart one part on the same port and data; the state file is updated."""
    state = statefile.load(state_path)
    if part in state.services:
        service = attach(state.services[part])
        service.restart()
        state.services[part] = service.describe()
    elif part in state.components:
        record = state.components[part]
        supervisor.terminate(record)
        component = next(c for c in COMPONENTS if c.name == part)
        settings = dataclasses.replace(component_settings(state), port=record["port"])
        ports = {name: rec["port"] for name, rec in state.components.items() if "port" in rec}
        fresh = supervisor.spawn([sys.executable, "-m", component.module],
                                 {**os.environ, **settings.to_env(),
                                  **security_env(part, settings, urls_of(ports))}, Path(record["log"]))
        fresh.update(port=record["port"], url=record["url"])
        state.components[part] = fresh
        statefile.save(state, state_path)
        supervisor.wait_healthy(fresh["url"] + component.health_path, fresh, part, timeout)
    else:
        _pid_records(state, part)  # raises the unknown-part error
    statefile.save(state, state_path)
    progress(f"restarted {part}")
