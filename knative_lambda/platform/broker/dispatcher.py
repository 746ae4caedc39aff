"""One consumer per trigger: filter, deliver over HTTP, retry, dead-letter, re-publish replies.

At-least-once: a message is acked only once its outcome is decided (delivered,
filtered out, or safely dead-lettered with a publisher confirm). If RabbitMQ
goes away mid-delivery the ack cannot happen, the message is redelivered after
the reconnect, and receivers dedupe on (source, id). Concurrency is the
trigger's parallelism, enforced by the channel's prefetch. Acks of deliveries
that finish together go out as one multiple ack (acks.py).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aio_pika
import aiohttp
from aio_pika.abc import AbstractChannel, AbstractConnection
from aio_pika.exceptions import ChannelInvalidStateError
from aiormq.abc import AbstractChannel as AmqpChannel
from aiormq.abc import DeliveredMessage
from cloudevents.core.v1.event import CloudEvent
from multidict import CIMultiDict, CIMultiDictProxy

from knative_lambda.contract.bindings import from_amqp, from_http, to_http
from knative_lambda.contract.errors import ContractError
from knative_lambda.platform import logs, tracing
from knative_lambda.platform.broker import topology
from knative_lambda.platform.broker.acks import AckBatcher
from knative_lambda.platform.broker.filters import required_type, string_attributes
from knative_lambda.platform.broker.metrics import (
    DELIVERY_SECONDS,
    EVENTS,
    TriggerCounts,
    type_label,
)
from knative_lambda.platform.broker.publisher import Publisher, PublishError, amqp_message
from knative_lambda.platform.broker.triggers import TriggerSpec, backoff_delays, should_retry
from knative_lambda.platform.upstream import Pool, http_target

log = logging.getLogger("kl.broker.dispatcher")
ERROR_DATA_LIMIT = 1024  # bytes of the failing response kept in knativeerrordata (as Knative)


@dataclass(frozen=True)
class Attempt:
    """The outcome of one HTTP delivery: ``status`` None means no response at all."""

    status: int | None
    body: bytes = b""
    headers: Mapping[str, str] | None = None  # case-insensitive (a CIMultiDictProxy)
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class Delivery:
    """A message from a trigger's queue: the parts of aiormq's DeliveredMessage the
    dispatcher reads (``channel`` raises on a closed channel, as aio-pika's does)."""

    __slots__ = ("body", "headers", "content_type", "delivery_tag", "_channel")

    def __init__(self, message: DeliveredMessage) -> None:
        props = message.header.properties
        self.body: bytes = message.body
        self.headers: dict[str, Any] = props.headers or {}
        self.content_type: str | None = props.content_type
        self.delivery_tag: int = message.delivery.delivery_tag  # type: ignore[union-attr]  # a Deliver
        self._channel = message.channel

    @property
    def channel(self) -> AmqpChannel:
        if self._channel.is_closed:
            raise ChannelInvalidStateError("channel closed")
        return self._channel


def dead_letter_event(event: Any, attempt: Attempt, destination: str) -> CloudEvent:
    """The event as it goes to the dead-letter sink/queue: Knative's error extensions added."""
    attrs = dict(event.get_attributes())
    detail = attempt.body[:ERROR_DATA_LIMIT] if attempt.body else attempt.error.encode()[:ERROR_DATA_LIMIT]
    attrs["knativeerrorcode"] = str(attempt.status if attempt.status is not None else 0)
    attrs["knativeerrordest"] = destination
    if detail:
        attrs["knativeerrordata"] = base64.b64encode(detail).decode()
    return CloudEvent(attrs, event.get_data())


_REQUIRED = ("ce-id", "ce-source", "ce-type", "ce-specversion")
_HEADER_SAFE = "".join(c for c in map(chr, range(0x21, 0x7F)) if c not in ' "%')
_NEEDS_QUOTE = re.compile(r'[^\x21-\x7e]|[ "%]').search


def binary_parts(
    amqp_headers: Mapping[str, Any], content_type: str | None
) -> tuple[dict[str, str], dict[str, str]] | None:
    """(attributes as strings, HTTP binary-mode headers) of a binary-mode AMQP message.

    None when the message is not binary mode or lacks a required attribute: the
    caller then decodes it with the contract binding (and dead-letters it if
    that fails). HTTP header values are percent-encoded as the HTTP binding says.
    """
    attrs: dict[str, str] = {}
    http: dict[str, str] = {}
    for key, value in amqp_headers.items():
        name = key.lower()
        if not name.startswith("ce-"):
            continue
        text = value.decode("utf-8", "replace") if isinstance(value, bytes | bytearray) else str(value)
        attrs[name[3:]] = text
        # Most values need no percent-encoding: checking is cheaper than quote().
        http[name] = quote(text, safe=_HEADER_SAFE) if _NEEDS_QUOTE(text) else text
    if any(h not in http for h in _REQUIRED) or (content_type or "").startswith("application/cloudevents"):
        return None
    if content_type:
        attrs["datacontenttype"] = content_type
        http["content-type"] = content_type
    return attrs, http


RECONSUME_DELAY = 1.0  # seconds before consuming again after RabbitMQ cancelled the consumer
OUTCOMES = ("delivered", "retried", "dead_lettered", "filtered", "replied")
TTL_EXTENSION = "knativebrokerttl"
DEFAULT_TTL = 255


def reply_ttl(incoming: str | None) -> int | None:
    """The hop budget a reply carries (Knative's ``knativebrokerttl``); None = drop it.

    Each reply to a reply spends one hop, so a subscriber that answers every
    event with an event it also matches cannot loop forever.
    """
    try:
        ttl = int(incoming) if incoming is not None else DEFAULT_TTL
    except ValueError:
        ttl = DEFAULT_TTL
    return ttl - 1 if ttl > 1 else None


def is_cloudevent_reply(headers: Mapping[str, str], body: bytes) -> bool:
    """Does a subscriber's response carry a CloudEvent (binary or structured)? Headers case-insensitive."""
    ctype = headers.get("content-type") or headers.get("Content-Type") or ""
    has_id = "ce-id" in headers or "Ce-Id" in headers
    return has_id or (ctype.startswith("application/cloudevents") and bool(body))


class TriggerConsumer:
    def __init__(
        self,
        spec: TriggerSpec,
        connection: AbstractConnection,
        publisher: Publisher,
        session: aiohttp.ClientSession,
        counts: TriggerCounts,
        queue_arguments: dict[str, Any],
        attempt_timeout: float,
        auth: dict[str, str] | None = None,  # the token for the platform's own receivers (auth.py)
        pool: Pool | None = None,
    ) -> None:
        self.spec = spec
        self._auth = auth or {}
        self._connection = connection
        self._publisher = publisher
        self._session = session  # https:// subscribers and sinks (see _post)
        self._pool = pool if pool is not None else Pool()
        self.counts = counts
        self._queue_args = queue_arguments
        self._timeout_s = spec.delivery.timeout or attempt_timeout
        self._timeout = aiohttp.ClientTimeout(total=self._timeout_s)
        self._delays = backoff_delays(spec.delivery)
        self._channel: AbstractChannel | None = None
        self._consumer_tag: str | None = None
        self._stopping = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self._acks = AckBatcher()
        # Labelled children resolved once per (outcome, type): .labels() costs more than .inc().
        self._counters: dict[tuple[str, str], Any] = {}
        pinned = required_type(spec.attributes, spec.filters)
        if pinned:  # the trigger's own series exist from its creation (at 0)
            for outcome in OUTCOMES:
                self._count(outcome, pinned, 0)
        self._latency = DELIVERY_SECONDS.labels(spec.namespace, spec.name)
        self.queue = topology.queue_name(spec.namespace, spec.broker, spec.name)
        self.dlq = topology.dlq_name(spec.namespace, spec.broker, spec.name)

    async def start(self) -> None:
        self._channel = await self._connection.channel(publisher_confirms=False)
        await self._channel.set_qos(prefetch_count=self.spec.parallelism)
        await self._channel.declare_queue(self.queue, durable=True, arguments=self._queue_args)
        # After a reconnect aio-pika restores the channel's QoS and queue; the consumer,
        # registered below aio-pika, is restored here.
        self._channel.reopen_callbacks.add(self._reconsume)
        await self._consume()

    async def _consume(self) -> None:
        """Consume on the aiormq channel: aio-pika's consumer adds an IncomingMessage (a
        dozen guarded attribute writes) and a second task per message."""
        assert self._channel is not None
        underlay = await self._channel.get_underlay_channel()
        underlay.on_consumer_cancel_callbacks.add(self._on_cancelled)
        ok = await underlay.basic_consume(self.queue, self._on_delivered, no_ack=False)
        self._consumer_tag = ok.consumer_tag

    def _on_cancelled(self, frame: Any) -> None:
        """RabbitMQ cancelled the consumer (its queue deleted or moved): consume again, in a
        task of its own (this runs in the channel's frame reader). If the queue is gone the
        channel closes, and its reopen declares the queue again."""
        if frame.consumer_tag == self._consumer_tag and not self._stopping:
            log.warning("trigger %s: consumer cancelled by RabbitMQ; consuming again", self.spec.key)
            task = asyncio.ensure_future(self._reconsume(None, delay=RECONSUME_DELAY))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _reconsume(self, _channel: Any, delay: float = 0.0) -> None:
        try:
            await asyncio.sleep(delay)  # after a cancel: not a tight loop if it keeps happening
            await self._consume()
        except Exception as exc:  # the channel failed again: its next reopen retries
            log.warning("trigger %s: consumer not restored yet (%s: %s)", self.spec.key, type(exc).__name__, exc)

    async def _on_delivered(self, message: DeliveredMessage) -> None:
        await self._on_message(Delivery(message))

    async def stop(self) -> None:
        """Stop consuming; unacked messages go back to the queue (nothing is lost)."""
        self._stopping = True
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._channel is not None and not self._channel.is_closed:
            try:
                await self._channel.close()
            except Exception:  # already closing with the connection
                log.debug("trigger %s: channel close failed", self.spec.key, exc_info=True)

    def _count(self, outcome: str, event_type: str, amount: int = 1) -> None:
        key = (outcome, type_label(event_type))
        counter = self._counters.get(key)
        if counter is None:
            spec = self.spec
            counter = self._counters[key] = EVENTS.labels(spec.namespace, spec.broker, spec.name, *key)
        counter.inc(amount)

    async def _on_message(self, message: Delivery) -> None:
        self._acks.received(message)  # first, before any await: tags are registered in delivery order
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            await self._handle(message)
        except asyncio.CancelledError:
            raise
        except PublishError as exc:
            # RabbitMQ is away: leave the message unacked, it is redelivered later.
            log.warning("trigger %s: outcome not recorded (%s); will be redelivered", self.spec.key, exc)
            await asyncio.sleep(1.0)  # RabbitMQ is reconnecting: do not spin on redeliveries
            await _settle(message, requeue=True)
            self._acks.forget(message)  # after the nack: until then it bounds a multiple ack
        except Exception:
            log.exception("trigger %s: unexpected failure; requeued", self.spec.key)
            await asyncio.sleep(0.5)  # a poison bug must not spin
            await _settle(message, requeue=True)
            self._acks.forget(message)  # after the nack: until then it bounds a multiple ack
        finally:
            if task is not None:
                self._tasks.discard(task)

    async def _handle(self, message: Delivery) -> None:
        event: Any = None
        parts = binary_parts(message.headers or {}, message.content_type)
        if parts is not None:
            # Fast path: our ingress wrote binary mode, so headers and body go out as they are.
            attrs, headers = parts
            body = message.body
        else:
            event, problem = self._decode(message)
            if event is None:
                await self._dead_letter_raw(message, problem)
                await self._acks.ack(message)
                return
            headers, body = to_http(event, "binary")
            attrs = string_attributes(event.get_attributes())
        if not self.spec.matches(attrs):
            self.counts.filtered += 1
            self._count("filtered", attrs.get("type", ""))
            await self._acks.ack(message)
            return

        cid = attrs.get("correlationid", "")
        span = None
        amqp_headers = message.headers or {}
        # Event traces start at the ingress: one it did not record costs no span here.
        if tracing.parent_sampled(amqp_headers.get("traceparent")):
            span = tracing.start_span(amqp_headers, "broker.dispatch", cid, trigger=self.spec.key)
            tracing.inject_span(span, headers)  # the subscriber continues the trace
        if self._auth:
            headers = {**headers, **self._auth}
        attempt = await self._post(self.spec.subscriber, headers, body)
        for delay in self._delays:
            if attempt.ok or not should_retry(attempt.status):
                break
            self.counts.retried += 1
            self._count("retried", attrs.get("type", ""))
            await asyncio.sleep(delay)
            attempt = await self._post(self.spec.subscriber, headers, body)

        if attempt.ok:
            await self._publish_reply(attempt, attrs.get(TTL_EXTENSION))
            self.counts.delivered += 1
            self._count("delivered", attrs.get("type", ""))
        else:
            problem = ""
            if event is None:
                event, problem = self._decode(message)
            if event is None:
                await self._dead_letter_raw(message, problem)
            else:
                await self._dead_letter(event, attempt)
            self.counts.dead_lettered += 1
            self._count("dead_lettered", attrs.get("type", ""))
        outcome = "delivered" if attempt.ok else "dead_lettered"
        if span is not None:
            span.set_attribute("kl.outcome", outcome)
            span.end()
        logs.decision("delivery", outcome=outcome, trigger=self.spec.key, type=attrs.get("type", ""),
                      id=attrs.get("id", ""), status=attempt.status, error=attempt.error or None,
                      correlation_id=cid)
        await self._acks.ack(message)

    @staticmethod
    def _decode(message: Delivery) -> tuple[Any, str]:
        """(event, "") or (None, why it is not a CloudEvent)."""
        try:
            return from_amqp(dict(message.headers or {}), message.body, message.content_type), ""
        except ContractError as exc:
            return None, str(exc)

    async def _deliver(self, url: str, event: Any) -> Attempt:
        headers, body = to_http(event, "binary")
        return await self._post(url, headers, body)

    async def _post(self, url: str, headers: dict[str, str], body: bytes) -> Attempt:
        """One delivery attempt. Plain http:// goes through the lean keep-alive pool (a
        fraction of aiohttp's CPU per request); https:// (and URLs with credentials)
        through aiohttp, which does TLS. Either way: status and body, or the error."""
        start = time.perf_counter()
        target = _target(url)
        try:
            if target is None:
                return await self._post_aiohttp(url, headers, body, self._timeout)
            address, path, host = target
            status, rheaders, data = await self._pool.request(
                address, "POST", path, headers.items(), body, self._timeout_s, host
            )
            if status in _REDIRECTS and any(k.lower() in ("location", "uri") for k, _ in rheaders):
                # aiohttp follows redirects (its method, body and auth rules): let it, as before.
                left = max(0.001, self._timeout_s - (time.perf_counter() - start))
                return await self._post_aiohttp(url, headers, body, aiohttp.ClientTimeout(total=left))
            return Attempt(status, data, CIMultiDictProxy(CIMultiDict(rheaders)))
        except (TimeoutError, aiohttp.ClientError, OSError, ValueError) as exc:
            # ValueError: a header the pool refuses to write (a line break in it)
            return Attempt(None, error=f"{type(exc).__name__}: {exc}".strip())
        finally:
            self._latency.observe(time.perf_counter() - start)

    async def _post_aiohttp(
        self, url: str, headers: dict[str, str], body: bytes, timeout: aiohttp.ClientTimeout
    ) -> Attempt:
        async with self._session.post(url, data=body, headers=headers, timeout=timeout) as resp:
            data = await resp.read()
            return Attempt(resp.status, data, resp.headers)

    async def _publish_reply(self, attempt: Attempt, incoming_ttl: str | None) -> None:
        headers = attempt.headers or {}
        if not is_cloudevent_reply(headers, attempt.body):
            return
        ttl = reply_ttl(incoming_ttl)
        if ttl is None:
            log.warning("trigger %s: reply dropped, %s exhausted (a reply loop?)", self.spec.key, TTL_EXTENSION)
            return
        try:
            reply = from_http(headers, attempt.body)
            reply = CloudEvent({**reply.get_attributes(), TTL_EXTENSION: str(ttl)}, reply.get_data())
        except ContractError as exc:
            log.warning("trigger %s: reply is not a valid CloudEvent, ignored: %s", self.spec.key, exc)
            return
        try:
            await self._publisher.publish(self.spec.namespace, self.spec.broker, reply)
        except ContractError as exc:  # attributes too large for AMQP: nothing was sent
            log.warning("trigger %s: reply cannot be published, ignored: %s", self.spec.key, exc)
            return
        self.counts.replied += 1
        self._count("replied", str(reply.get_type()))

    async def _dead_letter(self, event: Any, attempt: Attempt) -> None:
        dead = dead_letter_event(event, attempt, self.spec.subscriber)
        sink = self.spec.delivery.dead_letter_sink
        if sink:
            result = await self._deliver(sink, dead)
            if result.ok:
                return
            log.warning(
                "trigger %s: dead-letter sink %s failed (%s); using the dead-letter queue",
                self.spec.key, sink, result.status or result.error,
            )
        try:
            message = amqp_message(dead, self._publisher.frame_max())
        except ContractError:  # the error extensions pushed it past a frame: keep the original
            message = amqp_message(event, self._publisher.frame_max())
        await self._publisher.publish_message("", self.dlq, message)

    async def _dead_letter_raw(self, message: Delivery, reason: str) -> None:
        headers = dict(message.headers or {})
        headers["knativeerrorcode"] = "0"
        headers["knativeerrordata"] = base64.b64encode(reason.encode()[:ERROR_DATA_LIMIT]).decode()
        raw = aio_pika.Message(
            message.body,
            headers=headers,
            content_type=message.content_type,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        await self._publisher.publish_message("", self.dlq, raw)


_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_TARGETS: dict[str, Any] = {}  # url -> http_target(url): a handful of subscribers, parsed once


def _target(url: str) -> Any:
    try:
        return _TARGETS[url]
    except KeyError:
        if len(_TARGETS) > 1024:  # triggers come and go: keep it bounded
            _TARGETS.clear()
        target = _TARGETS[url] = http_target(url)
        return target


async def _settle(message: Delivery, requeue: bool = False) -> None:
    """Ack (or nack to requeue); on a dead channel do nothing: RabbitMQ redelivers."""
    try:
        if requeue:
            await message.channel.basic_nack(message.delivery_tag, requeue=True)
        else:
            await message.channel.basic_ack(message.delivery_tag)
    except Exception as exc:
        log.info("could not settle message (%s); RabbitMQ will redeliver it", type(exc).__name__)
