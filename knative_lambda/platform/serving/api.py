"""The gateway's management API, under ``/apis/v1`` (bearer token: ``Authorization: Bearer $KL_TOKEN``).

Errors are ``{"error": "<one line>", "problems": [{"where", "reason"}]}`` (problems
only for 400); 401 without the token; 404 for an unknown service.

``PUT /apis/v1/namespaces/{ns}/services/{name}`` -- create or update::

    {"revision": {
        "name": "lambda-tp-parser-abcd1234",     # optional; default <service>-<content_hash[:8]>
        "content_hash": "abcd1234ef56",          # optional but recommended
        "artifact": "/abs/artifact/dir",         # or a builder artifact key (<data_dir>/artifacts/<key>)
        "runtime": "python",                     # optional: python | node (default: the manifest's)
        "annotations": {"autoscaling.knative.dev/target": "10", ...},   # optional
        "container_concurrency": 10,             # optional, 0 = unlimited (default 10)
        "timeout": 300,                          # optional, seconds per request
        "memory_limit_mb": 1024                  # optional, 0 = no limit
    }}

  -> 201 ``{"changed": true, "service": <Service>}`` when a new revision was
  created (traffic moves to it when its first instance is ready; the old one is
  drained by the autoscaler without failing requests), 200 ``{"changed": false,
  "service": ...}`` when the latest revision already has this name or the same
  spec (idempotent), 400 with every problem (annotation errors name the key,
  e.g. ``revision.annotations[autoscaling.knative.dev/min-scale]``).

``GET /apis/v1/namespaces/{ns}/services/{name}`` -> 200 ``<Service>`` | 404.

``DELETE /apis/v1/namespaces/{ns}/services/{name}`` -> 200 ``{"deleted": true}``
(service, revisions and instances removed; buffered requests get 503) | 404.

``GET /apis/v1/services`` -> 200::

    {"services": [<Service>...], "runtimes": {"python": {"zygote_pid": 123}}}

``<Service>``::

    {"namespace", "name", "url", "generation", "latest_revision", "traffic_revision",
     "ready": bool,           # traffic is on the latest revision
     "latest_ready": bool,    # the latest revision has had a ready instance
     "requests", "inflight",
     "revisions": [{"name", "content_hash", "runtime", "artifact", "annotations",
                    "container_concurrency", "timeout", "routable", "ready", "desired",
                    "inflight", "buffered", "requests", "errors", "cold_starts",
                    "instances": [{"id", "state": "starting|ready|draining", "pid", "port",
                                   "inflight", "requests", "max_inflight", "age", "error"}]}]}

``GET /apis/v1/timeline?service=<name or ns/name>&since=<seq>`` -> 200::

    {"events": [{"seq", "event", "service", "namespace", "revision", "mono", "wall",
                 "request_id"?, "instance"?, "pid"?, ...}], "next": <last seq>}

  ``event`` is one of request_buffered, scale_decision (desired, previous, ready,
  reason, stable, panic, panicking), process_started (the instance has a process:
  a pre-forked zygote spare took the job, or node was spawned; ``pid``),
  instance_ready (function imported and listening; ``startup`` seconds),
  first_byte, instance_stopped (reason, expected), instance_failed,
  revision_created, traffic_switched. ``mono`` is the gateway's
  ``time.monotonic()``, ``wall`` is ``time.time()``.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from aiohttp import web

from knative_lambda.platform.http import unreadable_body
from knative_lambda.platform.limits import rate_limited
from knative_lambda.platform.serving.gateway import Gateway
from knative_lambda.platform.serving.model import SpecError, check_name, parse_revision
from knative_lambda.platform.serving.tenancy import tenant_of

JSON = "application/json"
log = logging.getLogger("kl.gateway")


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=json.dumps(data), status=status, content_type=JSON)


def _bad(problems: list[tuple[str, str]]) -> web.Response:
    return _json(
        {
            "error": "; ".join(f"{w}: {r}" for w, r in problems),
            "problems": [{"where": w, "reason": r} for w, r in problems],
        },
        400,
    )


def restore(gateway: Gateway) -> int:
    """Re-apply every stored service, so a restarted gateway keeps its services."""
    restored = 0
    for ns, name, doc in gateway.store.load():
        try:
            spec, config = parse_revision(name, doc, gateway.base_config, gateway.resolve_artifact)
        except SpecError as exc:  # e.g. its artifact is gone: say so, serve the rest
            log.warning("not restoring service %s/%s: %s", ns, name, exc)
            continue
        if tenant := tenant_of(doc):
            gateway.tenants[(ns, name)] = tenant
        gateway.apply(ns, name, spec, config)
        restored += 1
    return restored


def add_routes(app: web.Application, gateway: Gateway) -> None:
    def service_view(ns: str, name: str) -> dict[str, Any] | None:
        svc = gateway.find(ns, name)
        if svc is None:
            return None
        return {**svc.view(), "url": f"http://{name}.{ns}.{gateway.options.domain}"}

    def names(request: web.Request) -> tuple[str, str, list[tuple[str, str]]]:
        ns, name = request.match_info["ns"], request.match_info["name"]
        return ns, name, check_name(ns, "namespace") + check_name(name, "service name")

    async def put_service(request: web.Request) -> web.Response:
        ns, name, problems = names(request)
        if problems:
            return _bad(problems)
        try:
            doc = await request.json()
        except (ValueError, UnicodeDecodeError) as exc:
            return _bad([("body", f"not JSON: {exc}")])
        except web.RequestPayloadError:
            bad = _bad([("body", "not JSON: it does not decode with its Content-Encoding")])
            return unreadable_body(request, bad)
        except RecursionError:
            return _bad([("body", "not JSON we accept: nested too deeply")])
        try:
            spec, config = parse_revision(name, doc, gateway.base_config, gateway.resolve_artifact)
        except SpecError as exc:
            return _bad(exc.problems)
        tenant = tenant_of(doc)
        status, problem, wait = gateway.admit(ns, name, tenant)
        if status == 429:
            return rate_limited("deploy", wait, tenant)
        if status:
            return _json({"error": problem, "problems": [{"where": "tenant", "reason": problem}]}, status)
        _, changed = gateway.apply(ns, name, spec, config)
        gateway.store.save(ns, name, doc)
        return _json({"changed": changed, "service": service_view(ns, name)}, 201 if changed else 200)

    async def get_service(request: web.Request) -> web.Response:
        ns, name, _ = names(request)
        view = service_view(ns, name)
        if view is None:
            return _json({"error": f"no service {ns}/{name}"}, 404)
        return _json(view)

    async def delete_service(request: web.Request) -> web.Response:
        ns, name, _ = names(request)
        if not gateway.delete(ns, name):
            return _json({"error": f"no service {ns}/{name}"}, 404)
        gateway.store.delete(ns, name)
        return _json({"deleted": True})

    async def list_services(_: web.Request) -> web.Response:
        return _json(gateway.view())

    async def timeline(request: web.Request) -> web.Response:
        try:
            since = int(request.query.get("since", "0"))
        except ValueError:
            return _bad([("since", "must be an integer sequence number")])
        events = gateway.timeline.since(since, request.query.get("service") or None)
        return _json({"events": events, "next": events[-1]["seq"] if events else since})

    base = "/apis/v1/namespaces/{ns}/services/{name}"
    app.router.add_put(base, put_service)
    app.router.add_get(base, get_service)
    app.router.add_delete(base, delete_service)
    app.router.add_get("/apis/v1/services", list_services)
    app.router.add_get("/apis/v1/timeline", timeline)
