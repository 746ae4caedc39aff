"""What one item of background load does: publish one ledgered event, or one HTTP call.

A producer that cares about its events retries them: a publish that fails with
a connection error, a timeout or a 5xx is retried *with the same event id*
(so receivers dedupe it) until the broker accepts it or the item's retry
budget runs out. Only an accepted event (202) enters the ledger as sent; 4xx
answers are not retried (the event itself is wrong).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx

from knative_lambda.chaos.ledger import Ledger
from knative_lambda.chaos.load import Outcome
from knative_lambda.settings import Settings

RETRYABLE = frozenset({404, 409, 429}) | frozenset(range(500, 600))


def backoff(attempt: int, base: float = 0.1, cap: float = 1.0) -> float:
    """Seconds to wait before retry ``attempt`` (1-based): 0.1, 0.2, 0.4 ... capped."""
    return min(cap, base * 2 ** (attempt - 1))


def retry_call(call: Callable[[], int], *, retry_s: float, is_ok: Callable[[int], bool],
               sleep: Callable[[float], Any] = time.sleep) -> Outcome:
    """Call until ``is_ok(status)``, a non-retryable status, or ``retry_s`` elapsed."""
    deadline = time.monotonic() + retry_s
    attempt = 0
    while True:
        attempt += 1
        try:
            status = call()
            detail = f"HTTP {status}"
            if is_ok(status):
                return Outcome(True, attempt, detail)
            if status not in RETRYABLE:
                return Outcome(False, attempt, detail)
        except httpx.HTTPError as exc:
            detail = type(exc).__name__
        if time.monotonic() + backoff(attempt) >= deadline:
            return Outcome(False, attempt, detail)
        sleep(backoff(attempt))


class _Clients(threading.local):
    """One HTTP client per worker thread; all closed together when the run ends."""

    client: httpx.Client | None = None


def _client(local: _Clients, every: list[httpx.Client], settings: Settings,
            timeout: float) -> httpx.Client:
    if local.client is None:
        local.client = httpx.Client(timeout=timeout, headers=_headers(settings))
        every.append(local.client)
    return local.client


def _closer(every: list[httpx.Client]) -> Callable[[], None]:
    def close() -> None:
        for client in every:
            client.close()
    return close


def _headers(settings: Settings) -> dict[str, str]:
    return {"Authorization": f"Bearer {settings.token}"} if settings.token else {}


def event_sender(settings: Settings, tp: str, parser: str, ledger: Ledger, *, retry_s: float = 30.0,
                 timeout: float = 5.0, work_s: float = 0.0) -> Callable[[int], Outcome]:
    """Publishes parser.start events for ``tp``/``parser`` that the counting function ledgers."""
    from knative_lambda.contract import bindings
    from knative_lambda.contract.events import EventKind
    from knative_lambda.contract.factory import new_event

    ingress = f"{settings.broker_url}/{settings.namespace}/default"
    source = f"network.notifi.{tp}"
    local, every = _Clients(), []

    def send(index: int) -> Outcome:
        client = _client(local, every, settings, timeout)
        event_id = str(uuid.uuid4())
        data = {"ledger": str(ledger.directory), "source": source, "id": event_id, "seq": index}
        if work_s:
            data["work_s"] = work_s
        event = new_event(EventKind.PARSER_START, data, source=source, subject=parser,
                          prefix=settings.event_prefix)
        event = _with_id(event, event_id, data)
        headers, body = bindings.to_http(event)

        outcome = retry_call(lambda: client.post(ingress, headers=headers, content=body).status_code,
                             retry_s=retry_s, is_ok=lambda s: s == 202)
        if outcome.ok:
            ledger.record_sent(source, event_id)
        return outcome

    send.close = _closer(every)  # type: ignore[attr-defined]
    return send


def _with_id(event: Any, event_id: str, data: Any) -> Any:
    """The same event with ``id`` set: the ledger key and the CloudEvent id are one."""
    from knative_lambda.contract.validation import build_event

    attrs = dict(event.get_attributes())
    attrs["id"] = event_id
    return build_event(attrs, data)


def http_sender(url: str, settings: Settings, data: Any = None, *, timeout: float = 10.0,
                ) -> Callable[[int], Outcome]:
    """One POST per item to a function URL; any non-2xx or transport error is an error."""
    local, every = _Clients(), []

    def send(index: int) -> Outcome:
        try:
            status = _client(local, every, settings, timeout).post(url, json=data if data is not None else {"seq": index}).status_code
        except httpx.HTTPError as exc:
            return Outcome(False, 1, type(exc).__name__)
        return Outcome(200 <= status < 300, 1, f"HTTP {status}")

    send.close = _closer(every)  # type: ignore[attr-defined]
    return send
