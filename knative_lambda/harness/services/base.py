"""The interface every backing-service provider satisfies.

A provider is one way to get a service (an external URL, a private process, a
container, an embedded server). ``start`` either returns with the service
healthy or raises :class:`ServiceUnavailable` whose one-line message says why
and what to install. ``restart`` keeps the same URL and data: chaos relies on it.
A provider's ``describe`` is what the state file records, so that a later
process (``kl status``, ``kl down``) can rebuild the provider with ``attach``.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Service(Protocol):
    name: str  # "rabbitmq" | "s3"
    kind: str  # "external" | "process" | "container" | "embedded"

    def start(self) -> None: ...
    def stop(self) -> None: ...
    def restart(self) -> None: ...
    def url(self) -> str: ...
    def health(self) -> tuple[bool, str]: ...  # (healthy, detail)
    def describe(self) -> dict[str, Any]: ...  # JSON-able; includes pids/ports/credentials
