"""Python client of the broker process: publish events, manage triggers.

    client = BrokerClient(settings.broker_url, settings.token)
    await client.publish(event)            # returns the event id once RabbitMQ confirmed it
    client.publish_sync(event)             # the same, blocking
    client.put_trigger(trigger_object(...))

A 400 becomes a ContractError listing the broker's reasons; an unreachable or
failing broker becomes a PlatformError (after ``retries`` tries on 503/connection
errors, since an event is only accepted once RabbitMQ confirmed it).
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

import httpx

from knative_lambda.contract.bindings import to_http
from knative_lambda.contract.errors import ContractError, Problem
from knative_lambda.errors import ConfigError, PlatformError


class BrokerClient:
    def __init__(
        self,
        broker_url: str,
        token: str = "",
        *,
        namespace: str = "default",
        broker: str = "default",
        timeout: float = 10.0,
        retries: int = 3,
    ) -> None:
        if not broker_url:
            raise ConfigError("no broker URL: run 'kl up' or set KL_BROKER_URL")
        self.base = broker_url.rstrip("/")
        self.namespace = namespace
        self.broker = broker
        self.retries = max(1, retries)
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._timeout = timeout
        self._async: httpx.AsyncClient | None = None
        self._sync: httpx.Client | None = None

    @property
    def ingress_url(self) -> str:
        return f"{self.base}/{self.namespace}/{self.broker}"

    def _trigger_url(self, namespace: str, name: str) -> str:
        return f"{self.base}/apis/v1/namespaces/{namespace}/triggers/{name}"

    # --- publishing ------------------------------------------------------------------

    async def publish(self, event: Any, mode: str = "binary") -> str:
        """Send ``event`` to the ingress; returns its id once accepted (202)."""
        if self._async is None:
            self._async = httpx.AsyncClient(timeout=self._timeout, headers=self._headers)
        headers, body = to_http(event, mode)  # type: ignore[arg-type]
        _inject_trace(headers)
        last = ""
        for attempt in range(self.retries):
            try:
                resp = await self._async.post(self.ingress_url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                if resp.status_code != 503:
                    return _accepted(resp, event)
                last = resp.text
            if attempt + 1 < self.retries:
                await asyncio.sleep(0.2 * (attempt + 1))
        raise PlatformError(f"broker at {self.ingress_url} did not accept the event: {last}")

    def publish_sync(self, event: Any, mode: str = "binary") -> str:
        headers, body = to_http(event, mode)  # type: ignore[arg-type]
        last = ""
        for attempt in range(self.retries):
            try:
                resp = self._client().post(self.ingress_url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                if resp.status_code != 503:
                    return _accepted(resp, event)
                last = resp.text
            if attempt + 1 < self.retries:
                time.sleep(0.2 * (attempt + 1))
        raise PlatformError(f"broker at {self.ingress_url} did not accept the event: {last}")

    # --- triggers (synchronous: management is not a hot path) --------------------------

    def put_trigger(self, spec: dict[str, Any]) -> dict[str, Any]:
        """Create or update a trigger from a Knative Trigger object; idempotent."""
        meta = spec.get("metadata") or {}
        name, ns = meta.get("name"), meta.get("namespace", self.namespace)
        if not name:
            raise ConfigError("trigger object needs metadata.name")
        resp = self._request("PUT", self._trigger_url(ns, name), json=spec)
        if resp.status_code == 400:
            body = _json(resp)
            raise ConfigError(body.get("error") or resp.text)
        return _ok(resp)

    def delete_trigger(self, name: str, namespace: str | None = None) -> bool:
        resp = self._request("DELETE", self._trigger_url(namespace or self.namespace, name))
        if resp.status_code == 404:
            return False
        _ok(resp)
        return True

    def get_trigger(self, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        resp = self._request("GET", self._trigger_url(namespace or self.namespace, name))
        return None if resp.status_code == 404 else _ok(resp)

    def list_triggers(self) -> list[dict[str, Any]]:
        return _ok(self._request("GET", f"{self.base}/apis/v1/triggers"))["items"]

    def _client(self) -> httpx.Client:
        if self._sync is None:
            self._sync = httpx.Client(timeout=self._timeout, headers=self._headers)
        return self._sync

    def _request(self, method: str, url: str, **kw: Any) -> httpx.Response:
        try:
            return self._client().request(method, url, **kw)
        except httpx.HTTPError as exc:
            raise PlatformError(f"broker at {self.base} unreachable ({exc}); is the platform up? (kl status)") from None

    async def aclose(self) -> None:
        if self._async is not None:
            await self._async.aclose()
            self._async = None
        self.close()

    def close(self) -> None:
        if self._sync is not None:
            self._sync.close()
            self._sync = None


def _inject_trace(headers: dict[str, str]) -> None:
    """Within a span (a build), let the ingress continue its trace. Only where tracing is
    already loaded (platform processes): importing OpenTelemetry costs a CLI ~0.15 s."""
    tracing = sys.modules.get("knative_lambda.platform.tracing")
    if tracing is not None:
        tracing.inject(headers)


def _json(resp: httpx.Response) -> dict[str, Any]:
    try:
        body = resp.json()
        return body if isinstance(body, dict) else {}
    except ValueError:
        return {}


def _accepted(resp: httpx.Response, event: Any) -> str:
    if resp.status_code == 202:
        return str(_json(resp).get("id") or event.get_id())
    body = _json(resp)
    if resp.status_code in (400, 413) and body.get("problems"):
        raise ContractError(Problem(p.get("where", "?"), p.get("reason", "?")) for p in body["problems"])
    if resp.status_code == 401:
        raise ConfigError("broker refused the token (401): check KL_TOKEN / the state file")
    raise PlatformError(f"broker answered {resp.status_code}: {body.get('error') or resp.text[:200]}")


def _ok(resp: httpx.Response) -> dict[str, Any]:
    if resp.status_code == 401:
        raise ConfigError("broker refused the token (401): check KL_TOKEN / the state file")
    if resp.status_code >= 400:
        body = _json(resp)
        raise PlatformError(f"broker answered {resp.status_code}: {body.get('error') or resp.text[:200]}")
    return _json(resp)
