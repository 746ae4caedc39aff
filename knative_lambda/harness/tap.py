"""An event tap: a local CloudEvent receiver subscribed to the broker by a trigger.

Scenarios use it to observe what the platform emits (build results, function
replies) without knowing which part emitted it. It works on any target whose
broker can reach this machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
from aiohttp import web

from knative_lambda.contract import bindings
from knative_lambda.errors import KLError, PlatformError
from knative_lambda.harness.services.ports import free_port

Predicate = Callable[[Any], bool]


class EventTap:
    """Receives every event matching ``filters`` (Knative Trigger ``filters`` dialect)."""

    def __init__(self, broker_url: str, filters: list[dict[str, Any]], *, token: str = "",
                 namespace: str = "default", broker: str = "default") -> None:
        self.broker_url = broker_url.rstrip("/")
        self.filters = filters
        self.namespace = namespace
        self.broker = broker
        self.name = f"kl-tap-{uuid.uuid4().hex[:8]}"
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._events: list[Any] = []
        self._arrivals: list[float] = []  # wall-clock arrival of each event, same order
        self._cond = threading.Condition()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self.port = free_port()

    # -- receiver -------------------------------------------------------------
    async def _receive(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            event = bindings.from_http(dict(request.headers), body)
        except KLError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        with self._cond:
            self._events.append(event)
            self._arrivals.append(time.time())
            self._cond.notify_all()
        return web.Response(status=202)

    def _serve(self, ready: threading.Event) -> None:
        self._loop = asyncio.new_event_loop()
        app = web.Application()
        app.router.add_post("/", self._receive)
        self._runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(self._runner.setup())
        self._loop.run_until_complete(web.TCPSite(self._runner, "127.0.0.1", self.port).start())
        ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self._runner.cleanup())
        self._loop.close()

    # -- lifecycle ------------------------------------------------------------
    def trigger_spec(self) -> dict[str, Any]:
        return {
            "apiVersion": "eventing.knative.dev/v1",
            "kind": "Trigger",
            # replies may come in bursts: drain them with the platform's default parallelism
            "metadata": {"name": self.name, "namespace": self.namespace,
                         "annotations": {"rabbitmq.eventing.knative.dev/parallelism": "50"}},
            "spec": {
                "broker": self.broker,
                "filters": self.filters,
                "subscriber": {"uri": f"http://127.0.0.1:{self.port}/"},
                "delivery": {"retry": 2, "backoffPolicy": "linear", "backoffDelay": "PT0.1S"},
            },
        }

    def _trigger_url(self) -> str:
        return f"{self.broker_url}/apis/v1/namespaces/{self.namespace}/triggers/{self.name}"

    def start(self) -> EventTap:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(ready,), daemon=True)
        self._thread.start()
        ready.wait(10)
        response = httpx.put(self._trigger_url(), json=self.trigger_spec(), headers=self._headers,
                             timeout=10)
        if not response.is_success:
            self.stop()
            raise PlatformError(f"broker refused the tap trigger: HTTP {response.status_code} "
                                f"{response.text[:200]}")
        return self

    def stop(self) -> None:
        with contextlib.suppress(httpx.HTTPError):
            httpx.delete(self._trigger_url(), headers=self._headers, timeout=5)
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> EventTap:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # -- observation ----------------------------------------------------------
    @property
    def events(self) -> list[Any]:
        with self._cond:
            return list(self._events)

    def received(self) -> list[tuple[float, Any]]:
        """(arrival wall-clock time, event) of everything received so far."""
        with self._cond:
            return list(zip(self._arrivals, self._events, strict=True))

    def wait_for(self, predicate: Predicate, timeout: float) -> Any:
        """The first received event matching ``predicate``; PlatformError after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for event in self._events:
                    if predicate(event):
                        return event
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise PlatformError(f"no matching event within {timeout:.0f}s "
                                        f"({len(self._events)} other events seen)")
                self._cond.wait(remaining)
