"""HTTP ingress: ``POST /{namespace}/{broker}`` with a CloudEvent, binary or structured mode.

202 only after RabbitMQ confirmed the (persistent) message, so an accepted event
survives a RabbitMQ restart. A bad event gets 400 listing every problem and is
not published; a body over the limit gets 413; RabbitMQ away gets 503 (retry).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web
from opentelemetry.trace import Span, Status, StatusCode

from knative_lambda.contract.bindings import from_http
from knative_lambda.contract.errors import ContractError
from knative_lambda.contract.validation import validate
from knative_lambda.platform import tracing
from knative_lambda.platform.broker.metrics import EVENTS, type_label
from knative_lambda.platform.broker.publisher import Publisher, PublishError

log = logging.getLogger("kl.broker.ingress")


class Ingress:
    def __init__(
        self,
        publisher: Callable[[], Publisher | None],
        known_broker: Callable[[str, str], bool],
        prefix: str,
        max_event_bytes: int,
    ) -> None:
        self._publisher = publisher
        self._known = known_broker
        self._prefix = prefix
        self._limit = max_event_bytes
        self._counters: dict[tuple[str, str, str], Any] = {}
        self._new_traces = records_new_traces()

    async def handle(self, request: web.Request) -> web.Response:
        ns, broker = request.match_info["namespace"], request.match_info["broker"]
        if not self._known(ns, broker):
            return _error(404, f"no broker {ns}/{broker}; the default broker is default/default")
        if request.content_length is not None and request.content_length > self._limit:
            return self._too_large(ns, broker, request.content_length)
        try:
            # The application's client_max_size is the limit (chunked bodies too).
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return self._too_large(ns, broker, None)
        if len(body) > self._limit:
            return self._too_large(ns, broker, len(body))
        try:
            event = from_http(request.headers, body)
            validate(event, self._prefix, max_data_bytes=self._limit)
        except ContractError as exc:
            EVENTS.labels(ns, broker, "", "rejected", "").inc()
            return web.json_response(exc.to_dict(), status=400)
        publisher = self._publisher()
        if publisher is None:
            return _error(503, "broker is connecting to RabbitMQ; retry")
        # The span's traceparent goes in the message headers, where the dispatcher
        # continues the trace. No span: nothing would be recorded (see tracing.parent_sampled).
        carrier = trace_parent(request.headers)
        span: Span | None = None
        trace_headers: dict[str, str] = {}
        if self._new_traces or tracing.parent_sampled(carrier.get("traceparent")):
            span = tracing.start_span(carrier, "broker.ingress", str(event.get_extension("correlationid") or ""),
                                      type=str(event.get_type()))
            tracing.inject_span(span, trace_headers)
        try:
            # Binary mode: the body is the data, published as it came (not re-encoded).
            structured = (request.content_type or "").lower().startswith("application/cloudevents")
            await publisher.publish(ns, broker, event, None if structured else body, trace_headers)
        except PublishError as exc:
            _failed(span, exc)
            return _error(503, str(exc))
        except ContractError as exc:  # valid CloudEvent, but more than an AMQP message carries
            _failed(span, exc)
            EVENTS.labels(ns, broker, "", "rejected", "").inc()
            too_big = any(p.where == "attributes" for p in exc.problems)
            return web.json_response(exc.to_dict(), status=413 if too_big else 400)
        except BaseException as exc:
            _failed(span, exc)
            raise
        if span is not None:
            span.end()
        self._published(ns, broker, event.get_type()).inc()
        return web.json_response({"id": event.get_id()}, status=202)

    def _published(self, ns: str, broker: str, event_type: str) -> Any:
        """The "published" counter of a broker and type, resolved once (``.labels()`` costs more than ``.inc()``).

        Keyed by the bounded label, not the raw type: the cache is bounded too.
        """
        key = (ns, broker, type_label(event_type))
        counter = self._counters.get(key)
        if counter is None:
            counter = self._counters[key] = EVENTS.labels(*key[:2], "", "published", key[2])
        return counter

    def _too_large(self, ns: str, broker: str, size: int | None) -> web.Response:
        EVENTS.labels(ns, broker, "", "rejected", "").inc()
        got = f"{size} bytes" if size is not None else "more"
        return web.json_response(
            {
                "error": f"event too large: {got}, limit {self._limit} bytes",
                "problems": [{"where": "body", "reason": f"larger than {self._limit} bytes"}],
            },
            status=413,
        )


def records_new_traces() -> bool:
    """Does ``KL_TRACE_SAMPLE`` record any new traces (ratio above 0)?"""
    return tracing.sample_ratio(os.environ.get("KL_TRACE_SAMPLE", "")) > 0


MAX_TRACESTATE = 512  # W3C: propagate at least 512 characters; more may be dropped


def trace_parent(headers: Mapping[str, Any]) -> dict[str, str]:
    """The W3C trace context among ``headers`` (case-insensitive mapping), alone.

    A ``tracestate`` past :data:`MAX_TRACESTATE` is dropped: it would ride in every
    AMQP header frame, which has a hard size limit.
    """
    found = {k: v for k in ("traceparent", "tracestate") if (v := headers.get(k)) is not None}
    if len(found.get("tracestate", "")) > MAX_TRACESTATE:
        del found["tracestate"]
    return found


def _failed(span: Span | None, exc: BaseException) -> None:
    """End ``span`` as the ``with`` block of ``start_as_current_span`` would on an exception."""
    if span is not None:
        span.record_exception(exc)
        span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        span.end()


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)
