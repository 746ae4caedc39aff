"""Fault proxies on the platform's links to its backing services (``kl up --faults``).

A *link* is one backing service as the platform processes reach it: "rabbitmq"
(``Settings.amqp_url``) and "s3" (``Settings.s3_endpoint``). With faults on,
``kl up`` starts one proxy process per link after the services and before the
platform processes, and hands the platform the rewritten URLs:

    links = start_link_proxies(settings, data_dir)        # {link: describe}
    settings = proxied_settings(settings, links)          # amqp_url/s3_endpoint via proxies
    state.settings["fault_links"] = links                 # chaos actions find them here
    ...
    stop_link_proxies(links)                              # in kl down

The harness itself (targets, tests, ``kl`` commands) keeps the direct URLs:
only the platform's own traffic goes through the faults, which is what a
network fault between platform parts means. Each describe carries the pid
record (pid, create_time, log) that ``supervisor.terminate`` understands.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from knative_lambda.errors import ConfigError
from knative_lambda.harness import supervisor
from knative_lambda.harness.services.ports import free_ports
from knative_lambda.settings import Settings

# link name -> the Settings field holding the URL that the link carries
LINKS: dict[str, str] = {"rabbitmq": "amqp_url", "s3": "s3_endpoint"}
DEFAULT_PORTS = {"amqp": 5672, "amqps": 5671, "http": 80, "https": 443}


def url_host_port(url: str) -> tuple[str, int]:
    """Host and port a URL points at (scheme default when the port is omitted)."""
    parts = urlsplit(url)
    if not parts.hostname:
        raise ConfigError(f"cannot place a fault proxy in front of {url!r}: no host in the URL")
    port = parts.port or DEFAULT_PORTS.get(parts.scheme)
    if port is None:
        raise ConfigError(f"cannot place a fault proxy in front of {url!r}: no port")
    return parts.hostname, port


def rewrite_url(url: str, host: str, port: int) -> str:
    """``url`` with its host and port replaced, credentials and path kept."""
    parts = urlsplit(url)
    userinfo = ""
    if parts.username is not None:
        userinfo = parts.username + (f":{parts.password}" if parts.password is not None else "") + "@"
    return urlunsplit((parts.scheme, f"{userinfo}{host}:{port}", parts.path, parts.query,
                       parts.fragment))


def plan_links(settings: Settings, links: tuple[str, ...] = tuple(LINKS)) -> dict[str, dict[str, Any]]:
    """Which upstream each link's proxy forwards to (pure; ports not yet chosen)."""
    plan = {}
    for link in links:
        if link not in LINKS:
            raise ConfigError(f"unknown link {link!r}; links: {', '.join(LINKS)}")
        url = getattr(settings, LINKS[link])
        if not url:
            raise ConfigError(f"link {link!r} has no URL ({LINKS[link]} is empty); start the services first")
        host, port = url_host_port(url)
        plan[link] = {"link": link, "setting": LINKS[link], "upstream_url": url,
                      "upstream": f"{host}:{port}"}
    return plan


def proxied_settings(settings: Settings, links: dict[str, dict[str, Any]]) -> Settings:
    """The Settings the platform processes get: each proxied link's URL rewritten."""
    return dataclasses.replace(settings, **{d["setting"]: d["url"] for d in links.values()})


def start_link_proxies(settings: Settings, data_dir: Path,
                       links: tuple[str, ...] = tuple(LINKS), *, timeout: float = 20.0,
                       ) -> dict[str, dict[str, Any]]:
    """Start one proxy process per link; returns {link: describe} (JSON-able).

    describe = {link, setting, upstream_url, upstream, url (what the platform
    must use), listen_port, control_url, pid, create_time, log, argv}.
    On failure the proxies already started are stopped before raising.
    """
    started: dict[str, dict[str, Any]] = {}
    try:
        for link, desc in plan_links(settings, links).items():
            listen_port, control_port = free_ports(2)
            argv = [sys.executable, "-m", "knative_lambda.harness.faults",
                    "--listen", f"127.0.0.1:{listen_port}", "--upstream", desc["upstream"],
                    "--control-port", str(control_port)]
            record = supervisor.spawn(argv, dict(os.environ),
                                      Path(data_dir) / "logs" / f"faults-{link}.log")
            desc.update(record, listen_port=listen_port,
                        control_url=f"http://127.0.0.1:{control_port}",
                        url=rewrite_url(desc["upstream_url"], "127.0.0.1", listen_port))
            started[link] = desc
            supervisor.wait_healthy(desc["control_url"] + "/healthz", record, f"faults-{link}",
                                    timeout)
    except BaseException:
        stop_link_proxies(started)
        raise
    return started


def stop_link_proxies(links: dict[str, dict[str, Any]]) -> list[str]:
    """Stop the proxy processes of ``links``; returns the links that were running."""
    return [link for link, desc in links.items() if supervisor.terminate(desc, timeout=5.0)]


PLATFORM_PARTS = ("broker", "gateway", "builder", "deployer")


def _restart(state_path: Path, parts: tuple[str, ...]) -> None:
    from knative_lambda.harness import local
    from knative_lambda.harness import state as statefile

    components = statefile.load(state_path).components
    for part in parts:
        if part in components:
            local.restart_part(state_path, part, progress=lambda _m: None)


def attach_link_proxies(state_path: Path, data_dir: Path,
                        parts: tuple[str, ...] = PLATFORM_PARTS) -> dict[str, dict[str, Any]]:
    """Put fault proxies on the links of a running local platform (``kl up`` then faults).

    Starts the proxies, records them as ``settings.fault_links`` in the state
    file (where chaos actions look, and from which ``restart_part`` spawns), and
    restarts the platform processes so their traffic goes through them.
    Idempotent: existing links are returned.
    """
    from knative_lambda.harness import state as statefile

    state = statefile.load(state_path)
    if state.settings.get("fault_links"):
        return state.settings["fault_links"]
    links = start_link_proxies(state.platform_settings(), data_dir)
    state.settings["fault_links"] = links
    statefile.save(state, state_path)
    try:
        _restart(state_path, parts)
    except BaseException:
        detach_link_proxies(state_path, parts)
        raise
    return links


def detach_link_proxies(state_path: Path, parts: tuple[str, ...] = PLATFORM_PARTS) -> list[str]:
    """Undo :func:`attach_link_proxies`: direct URLs again, proxies stopped."""
    from knative_lambda.harness import state as statefile

    state = statefile.load(state_path)
    links = state.settings.pop("fault_links", None) or {}
    statefile.save(state, state_path)
    if links:
        _restart(state_path, parts)
    return stop_link_proxies(links)
