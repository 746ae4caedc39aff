"""Carrying out the deployer's actions: the thin I/O shell around :mod:`.decide`.

``LocalExecutor`` drives the local target over HTTP: the gateway's management
API for services and the broker's trigger API for triggers, both idempotent
(PUT to create or replace, DELETE answering 404 counts as done). Any other
answer, or no answer, raises :class:`PlatformError`; the receiver turns that
into a 503 so the broker redelivers the event: nothing is lost.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp

from knative_lambda.errors import PlatformError
from knative_lambda.platform.deployer.decide import (
    Action,
    ApplyService,
    ApplyTrigger,
    DeleteService,
    DeleteTrigger,
    Reject,
    Skip,
)

log = logging.getLogger("kl.deployer")


class Executor(Protocol):
    async def apply_service(self, action: ApplyService) -> None: ...
    async def delete_service(self, action: DeleteService) -> None: ...
    async def apply_trigger(self, action: ApplyTrigger) -> None: ...
    async def delete_trigger(self, action: DeleteTrigger) -> None: ...


def service_path(namespace: str, name: str) -> str:
    """Where the gateway's management API keeps a Knative Service object."""
    return f"/apis/v1/namespaces/{namespace}/services/{name}"


def trigger_path(namespace: str, name: str) -> str:
    """Where the broker's trigger API keeps a Trigger object (docs/ARCHITECTURE.md)."""
    return f"/apis/v1/namespaces/{namespace}/triggers/{name}"


@dataclass
class LocalExecutor:
    gateway_url: str
    broker_url: str
    token: str = ""
    timeout: float = 10.0
    _session: aiohttp.ClientSession | None = field(default=None, repr=False)

    async def __aenter__(self) -> LocalExecutor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
            self._session = aiohttp.ClientSession(
                headers=headers, timeout=aiohttp.ClientTimeout(total=self.timeout)
            )
        return self._session

    async def _call(self, method: str, url: str, body: Any = None, *, missing_ok: bool = False) -> None:
        try:
            async with self._client().request(method, url, json=body) as resp:
                text = await resp.text()
                if resp.status < 300 or (missing_ok and resp.status == 404):
                    return
                raise PlatformError(f"{method} {url} answered {resp.status}: {text[:300]}")
        except (aiohttp.ClientError, TimeoutError) as e:
            raise PlatformError(f"{method} {url} failed: {type(e).__name__}: {e}") from None

    async def apply_service(self, action: ApplyService) -> None:
        url = self.gateway_url.rstrip("/") + service_path(action.namespace, action.name)
        await self._call("PUT", url, action.manifest)

    async def delete_service(self, action: DeleteService) -> None:
        url = self.gateway_url.rstrip("/") + service_path(action.namespace, action.name)
        await self._call("DELETE", url, missing_ok=True)

    async def apply_trigger(self, action: ApplyTrigger) -> None:
        url = self.broker_url.rstrip("/") + trigger_path(action.namespace, action.name)
        await self._call("PUT", url, action.manifest)

    async def delete_trigger(self, action: DeleteTrigger) -> None:
        url = self.broker_url.rstrip("/") + trigger_path(action.namespace, action.name)
        await self._call("DELETE", url, missing_ok=True)

    async def put_trigger(self, manifest: dict[str, Any]) -> None:
        meta = manifest["metadata"]
        url = self.broker_url.rstrip("/") + trigger_path(meta["namespace"], meta["name"])
        await self._call("PUT", url, manifest)


async def execute(actions: list[Action], executor: Executor) -> list[str]:
    """Run the actions in order; returns one line per action for the reply and the log.

    Stops at the first failure (raising it): later actions depend on earlier
    ones, and the redelivered event replays them all (each is idempotent).
    """
    done: list[str] = []
    for action in actions:
        match action:
            case ApplyService():
                await executor.apply_service(action)
                done.append(f"applied service {action.namespace}/{action.name} ({action.image_uri})")
            case ApplyTrigger():
                await executor.apply_trigger(action)
                done.append(f"applied trigger {action.namespace}/{action.name}")
            case DeleteTrigger():
                await executor.delete_trigger(action)
                done.append(f"deleted trigger {action.namespace}/{action.name}")
            case DeleteService():
                await executor.delete_service(action)
                done.append(f"deleted service {action.namespace}/{action.name}")
            case Skip():
                done.append(f"skipped: {action.reason}")
            case Reject():
                done.append(f"rejected: {action.reason}")
    for line in done:
        log.info("deployer: %s", line)
    return done
