"""HTTP ingress: ``POST /{namespace}/{broker}`` with a CloudEvent, binary or structured mode.

202 only after RabbitMQ confirmed the (persistent) message, so an accepted event
survives a RabbitMQ restart. A bad event gets 400 listing every problem and is
not published; a body over the limit gets 413; RabbitMQ away gets 503 (retry).

Served by the front server (platform/front.py, issue #3: aiohttp's server was ~13%
of the broker's CPU per event): :meth:`Ingress.handle_raw`. The aiohttp route
(:meth:`Ingress.handle`) stays for what the front passes on: targets it does not
match as plainly (percent-escapes, dot segments, namespace ``apis``) and bodies
with a Content-Encoding (aiohttp decodes them). Both answer through :meth:`Ingress.accept`.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web
from multidict import CIMultiDict
from opentelemetry.trace import Span, Status, StatusCode

from knative_lambda.contract.bindings import from_http
from knative_lambda.contract.errors import ContractError
from knative_lambda.contract.validation import validate
from knative_lambda.platform import tracing
from knative_lambda.platform.broker.metrics import EVENTS, type_label
from knative_lambda.platform.broker.publisher import Publisher, PublishError
from knative_lambda.platform.front import Front, Handler, HandlerFor, Reply, TooLarge
from knative_lambda.platform.http import OPEN_PATHS, token_ok

log = logging.getLogger("kl.broker.ingress")
Answer = tuple[int, dict[str, Any]]  # status, JSON body
# what the aiohttp route /{namespace}/{broker} matches, in a target that needs no decoding
_ROUTE = re.compile(r"/([^/%.{}#][^/%{}#]*)/([^/%.{}#][^/%{}#]*)")
_JSON_HEADERS = [("Content-Type", "application/json; charset=utf-8")]  # as aiohttp's json_response


def ingress_route(method: str, path: str) -> tuple[str, str] | None:
    """(namespace, broker) when the front answers ``method path`` itself; None: the aiohttp app
    (which also rate-limits ``/apis``: namespace ``apis`` goes there)."""
    if method != "POST":
        return None
    m = _ROUTE.fullmatch(path)
    if m is None or m[1] == "apis":
        return None
    return m[1], m[2]


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
        self._ratio = tracing.sample_ratio(os.environ.get("KL_TRACE_SAMPLE", ""))
        self.token = ""  # the bearer token ingress requires (KL_TOKEN), as auth_middleware
        self.forward: Handler | None = None  # the front's way to the aiohttp app (handle_raw)

    async def handle(self, request: web.Request) -> web.Response:
        """The aiohttp route (auth is the app's middleware)."""
        ns, broker = request.match_info["namespace"], request.match_info["broker"]
        if not self._known(ns, broker):
            return _json(*_error(404, f"no broker {ns}/{broker}; the default broker is default/default"))
        if request.content_length is not None and request.content_length > self._limit:
            return _json(*self._too_large(ns, broker, request.content_length))
        try:
            # The application's client_max_size is the limit (chunked bodies too).
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _json(*self._too_large(ns, broker, None))
        if len(body) > self._limit:
            return _json(*self._too_large(ns, broker, len(body)))
        return _json(*await self.accept(ns, broker, request.headers, body, request.content_type))

    async def handle_raw(self, method: str, host: str, target: str, headers: list[tuple[str, str]],
                         body: bytes) -> Reply:
        """The front server's handler (a :data:`front.Handler`); the body is within the limit
        (the front answered :meth:`too_large` otherwise)."""
        q = target.find("?")
        path = target if q < 0 else target[:q]
        route = ingress_route(method, path)
        hmap = CIMultiDict(headers)
        encoding = hmap.get("Content-Encoding")
        if route is None or encoding is not None and encoding.strip().lower() != "identity":
            assert self.forward is not None
            return await self.forward(method, host, target, headers, body)
        refused = self._refused(path, hmap, *route)
        if refused is not None:
            return _reply(*refused)
        ns, broker = route
        content_type = hmap.get("Content-Type", "").strip().lower()
        return _reply(*await self.accept(ns, broker, hmap, body, content_type))

    def _refused(self, path: str, headers: Mapping[str, str], ns: str, broker: str) -> Answer | None:
        """As the aiohttp app: no token (auth_middleware), then an unknown broker."""
        token = self.token
        if token and not path.startswith(OPEN_PATHS) and not token_ok(headers.get("Authorization"), token):
            return 401, {"error": "unauthorized: send 'Authorization: Bearer <token>' (see kl status)"}
        if not self._known(ns, broker):
            return _error(404, f"no broker {ns}/{broker}; the default broker is default/default")
        return None

    def too_large(self, default: TooLarge) -> TooLarge:
        """The front's answer to a body over the limit, before reading it: for the ingress route
        the ingress's (after the token and broker checks, counted as rejected), else ``default``."""

        def reply(method: str, target: str, headers: list[tuple[str, str]], size: int | None) -> Reply:
            q = target.find("?")
            path = target if q < 0 else target[:q]
            route = ingress_route(method, path)
            if route is None:
                return default(method, target, headers, size)
            return _reply(*(self._refused(path, CIMultiDict(headers), *route) or self._too_large(*route, size)))

        return reply

    async def accept(self, ns: str, broker: str, headers: Mapping[str, Any], body: bytes,
                     content_type: str) -> Answer:
        """Validate and publish one event of a known broker; ``headers`` case-insensitive."""
        try:
            event = from_http(headers, body)
            validate(event, self._prefix, max_data_bytes=self._limit, checked=True)
        except ContractError as exc:
            EVENTS.labels(ns, broker, "", "rejected", "").inc()
            return 400, exc.to_dict()
        publisher = self._publisher()
        if publisher is None:
            return _error(503, "broker is connecting to RabbitMQ; retry")
        # A recorded span's traceparent goes in the message headers, where the dispatcher
        # continues the trace. Events not recorded (most, at the default ratio) cost no span.
        carrier = trace_parent(headers)
        span: Span | None = None
        trace_headers: dict[str, str] = {}
        if tracing.draw(carrier.get("traceparent"), self._ratio):
            span = tracing.start_span(carrier, "broker.ingress", str(event.get_extension("correlationid") or ""),
                                      drawn=True, type=str(event.get_type()))
            tracing.inject_span(span, trace_headers)
        try:
            # Binary mode: the body is the data, published as it came (not re-encoded).
            structured = (content_type or "").lower().startswith("application/cloudevents")
            await publisher.publish(ns, broker, event, None if structured else body, trace_headers)
        except PublishError as exc:
            _failed(span, exc)
            return _error(503, str(exc))
        except ContractError as exc:  # valid CloudEvent, but more than an AMQP message carries
            _failed(span, exc)
            EVENTS.labels(ns, broker, "", "rejected", "").inc()
            too_big = any(p.where == "attributes" for p in exc.problems)
            return 413 if too_big else 400, exc.to_dict()
        except BaseException as exc:
            _failed(span, exc)
            raise
        if span is not None:
            span.end()
        self._published(ns, broker, event.get_type()).inc()
        return 202, {"id": event.get_id()}

    def _published(self, ns: str, broker: str, event_type: str) -> Any:
        """The "published" counter of a broker and type, resolved once (``.labels()`` costs more than ``.inc()``).

        Keyed by the bounded label, not the raw type: the cache is bounded too.
        """
        key = (ns, broker, type_label(event_type))
        counter = self._counters.get(key)
        if counter is None:
            counter = self._counters[key] = EVENTS.labels(*key[:2], "", "published", key[2])
        return counter

    def _too_large(self, ns: str, broker: str, size: int | None) -> Answer:
        EVENTS.labels(ns, broker, "", "rejected", "").inc()
        got = f"{size} bytes" if size is not None else "more"
        return 413, {
            "error": f"event too large: {got}, limit {self._limit} bytes",
            "problems": [{"where": "body", "reason": f"larger than {self._limit} bytes"}],
        }


def routes(ingress: Ingress) -> Callable[[Front], HandlerFor]:
    """The front's routing: ingress there, the rest to the aiohttp app."""
    handle = ingress.handle_raw

    def make(front: Front) -> HandlerFor:
        ingress.forward = front.forward  # what handle_raw leaves to the aiohttp route

        def handler_for(method: str, path: str) -> Handler | None:
            return handle if ingress_route(method, path) is not None else None

        return handler_for

    return make


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


def _error(status: int, message: str) -> Answer:
    return status, {"error": message}


def _json(status: int, payload: dict[str, Any]) -> web.Response:
    return web.json_response(payload, status=status)


def _reply(status: int, payload: dict[str, Any]) -> Reply:
    return status, _JSON_HEADERS, json.dumps(payload).encode()
