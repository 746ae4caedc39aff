"""Carrying out the deployer's actions: the thin I/O shell around :mod:`.decide`.

``LocalExecutor`` drives the local target over HTTP: the gateway's management
API for services and the broker's trigger API for triggers, both idempotent
(PUT to create or replace, DELETE answering 404 counts as done). Any other
answer, or no answer, raises :class:`PlatformError`; the receiver turns that
into a 503 so the broker redelivers the event: nothing is lost. A 400/422 means
the object itself was refused (:class:`DownstreamRejected`): the receiver
answers 400 and the broker dead-letters the event with the reason.
"""

from __future__ import annotations

import json
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
from knative_lambda.platform.deployer.gateway import artifact_ref, revision_body, service_path

log = logging.getLogger("kl.deployer")


class DownstreamRejected(PlatformError):
    """The gateway or broker refused the object itself (400/422): retrying cannot help."""

    def __init__(self, message: str, body: Any) -> None:
        super().__init__(message)
        self.body = body


class Executor(Protocol):
    async def apply_service(self, action: ApplyService) -> None: ...
    async def delete_service(self, action: DeleteService) -> None: ...
    async def apply_trigger(self, action: ApplyTrigger) -> None: ...
    async def delete_trigger(self, action: DeleteTrigger) -> None: ...
    async def close(self) -> None: ...


def trigger_path(namespace: str, name: str) -> str:
    """Where the broker's trigger API keeps a Trigger object (docs/ARCHITECTURE.md)."""
    return f"/apis/v1/namespaces/{namespace}/triggers/{name}"


def _json_or_text(text: str) -> Any:
    try:
        return json.loads(text) if text else None
    except ValueError:
        return text


@dataclass
class LocalExecutor:
    gateway_url: str
    broker_url: str
    token: str = ""
    builder_url: str = ""  # resolves an image URI to an artifact when the event has no key
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

    async def _call(
        self, method: str, url: str, body: Any = None, *, missing_ok: bool = False
    ) -> Any:
        """The JSON answer (None for a tolerated 404); PlatformError otherwise."""
        try:
            async with self._client().request(method, url, json=body) as resp:
                text = await resp.text()
                if resp.status < 300:
                    return _json_or_text(text)
                if missing_ok and resp.status == 404:
                    return None
                message = f"{method} {url} answered {resp.status}: {text[:300]}"
                if resp.status in (400, 403, 422):  # 403: a tenant quota; retrying cannot help
                    raise DownstreamRejected(message, _json_or_text(text))
                raise PlatformError(message)
        except (aiohttp.ClientError, TimeoutError) as e:
            raise PlatformError(f"{method} {url} failed: {type(e).__name__}: {e}") from None

    async def _artifact_of(self, image_uri: str) -> tuple[str, str] | None:
        """(artifact dir, runtime) from the builder's artifact API; None when it has none."""
        if not self.builder_url or not image_uri:
            return None
        url = f"{self.builder_url.rstrip('/')}/apis/v1/artifacts/{artifact_ref(image_uri)}"
        found = await self._call("GET", url, missing_ok=True)
        if not isinstance(found, dict) or not isinstance(found.get("dir"), str):
            return None
        return found["dir"], str(found.get("runtime") or "")

    async def apply_service(self, action: ApplyService) -> None:
        url = self.gateway_url.rstrip("/") + service_path(action.namespace, action.name)
        resolved = None if action.artifact else await self._artifact_of(action.image_uri)
        artifact, runtime = resolved or (None, None)
        await self._call("PUT", url, revision_body(action, artifact=artifact, runtime=runtime))

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
                done.append(
                    f"applied service {action.namespace}/{action.name} ({action.image_uri})"
                )
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
