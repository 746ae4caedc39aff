"""What every target shares: the platform's public surfaces over the network.

S3 API for sources, the broker ingress and trigger API for events, the
gateway for invocations and its management API for services and scaling.
Targets differ only in how they are found (state file, kubeconfig) and in
their fault hooks.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import boto3
import httpx
from botocore.config import Config

from knative_lambda.contract import bindings, keys, names
from knative_lambda.contract.events import EventKind, event_type
from knative_lambda.contract.factory import correlation_id_of, new_event
from knative_lambda.errors import PlatformError
from knative_lambda.harness.polling import poll
from knative_lambda.harness.tap import EventTap
from knative_lambda.harness.targets.base import BuildOutcome, Function, Invocation
from knative_lambda.settings import Settings

RESULT_KINDS = (EventKind.BUILD_COMPLETE, EventKind.BUILD_FAILED, EventKind.BUILD_TIMEOUT)


class PlatformTarget:
    """A Target over a platform reachable at ``settings``' URLs (fault hooks: subclasses)."""

    name = "platform"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        headers = {"Authorization": f"Bearer {self.settings.token}"} if self.settings.token else {}
        self.http = httpx.Client(timeout=30.0, headers=headers)
        self._tap: EventTap | None = None
        self._s3 = None

    # -- plumbing -------------------------------------------------------------
    def close(self) -> None:
        if self._tap is not None:
            self._tap.stop()
            self._tap = None
        self.http.close()

    @property
    def s3(self) -> Any:
        if self._s3 is None:
            self._s3 = boto3.client(
                "s3", endpoint_url=self.settings.s3_endpoint,
                aws_access_key_id=self.settings.s3_access_key,
                aws_secret_access_key=self.settings.s3_secret_key,
                region_name=self.settings.s3_region,
                config=Config(retries={"max_attempts": 2}, connect_timeout=5, read_timeout=30),
            )
        return self._s3

    def tap(self) -> EventTap:
        """The target's event tap: every build result and function reply."""
        if self._tap is None:
            types = [event_type(kind, self.settings.event_prefix) for kind in (
                *RESULT_KINDS, EventKind.RESULT, EventKind.PROCESSED, EventKind.ERROR)]
            self._tap = EventTap(
                self.settings.broker_url, [{"any": [{"exact": {"type": t}} for t in types]}],
                token=self.settings.token, namespace=self.settings.namespace,
            ).start()
        return self._tap

    # -- health ---------------------------------------------------------------
    def health(self) -> dict[str, tuple[bool, str]]:
        report = {}
        for part, url in (("broker", self.settings.broker_url), ("gateway", self.settings.gateway_url)):
            try:
                response = self.http.get(f"{url}/healthz", timeout=5)
                report[part] = (response.is_success, f"HTTP {response.status_code}")
            except httpx.HTTPError as exc:
                report[part] = (False, type(exc).__name__)
        return report

    # -- functions ------------------------------------------------------------
    def upload_source(self, parser_id: str, source: bytes) -> str:
        self.s3.put_object(Bucket=self.settings.source_bucket, Key=keys.source_key(parser_id),
                           Body=source)
        return keys.content_hash(source)

    def build(self, tp: str, parser: str, source: bytes | None = None, *, rebuild: bool = False,
              kind: str = "build.start", timeout: float = 120.0,
              data: dict[str, Any] | None = None) -> BuildOutcome:
        if source is not None:
            self.upload_source(parser, source)
        tap = self.tap()
        event_kind = EventKind.REBUILD_START if rebuild else EventKind(kind)
        payload = {"third_party_id": tp, "parser_id": parser, **(data or {})}
        if event_kind is EventKind.JOB_START:
            payload.setdefault("priority", 5)
        event = new_event(event_kind, payload, source=f"network.notifi.{tp}", subject=parser,
                          prefix=self.settings.event_prefix)
        correlation = correlation_id_of(event)
        started = time.monotonic()
        status = self.publish(event)
        if status != 202:
            raise PlatformError(f"broker ingress answered {status} to {event_kind.value}")
        result_types = {event_type(k, self.settings.event_prefix): k for k in RESULT_KINDS}

        def matches(ev: Any) -> bool:
            attrs = ev.get_attributes()
            return attrs.get("type") in result_types and attrs.get("correlationid") == correlation

        result = tap.wait_for(matches, timeout)
        attrs = result.get_attributes()
        return BuildOutcome(kind=result_types[attrs["type"]].value, data=result.get_data() or {},
                            event_id=attrs["id"], elapsed_s=time.monotonic() - started)

    def deploy(self, tp: str, parser: str, source: bytes, *, timeout: float = 120.0) -> Function:
        deadline = time.monotonic() + timeout
        outcome = self.build(tp, parser, source, timeout=timeout)
        if outcome.kind != EventKind.BUILD_COMPLETE.value:
            raise PlatformError(f"build of {tp}/{parser} ended in {outcome.kind}: "
                                f"{outcome.data.get('error_message')}")
        content_hash = outcome.data.get("content_hash", "")
        fn = self.function(tp, parser, content_hash)
        # ready = traffic on the new revision and its trigger in place (events reach it)
        if poll(lambda: self.serving_hash(fn.service) == content_hash
                and self.trigger_exists(fn.service),
                max(0.0, deadline - time.monotonic()), interval=0.05):
            return fn
        raise PlatformError(f"{fn.service} not ready with revision {content_hash} after {timeout:.0f}s")

    def serving_hash(self, name: str) -> str | None:
        """Content hash of the revision that takes the service's traffic, if it is ready."""
        service = self.service(name)
        if not service or not service.get("ready"):
            return None
        revision = next((r for r in service.get("revisions", [])
                         if r.get("name") == service.get("traffic_revision")), None)
        return revision.get("content_hash") if revision else None

    def function(self, tp: str, parser: str, content_hash: str = "") -> Function:
        service = names.service_name(tp, parser)
        ns = self.settings.namespace
        return Function(tp, parser, service, ns, f"{self.settings.gateway_url}/{ns}/{service}/",
                        content_hash)

    def invoke(self, fn: Function, data: Any, *, timeout: float = 30.0,
               headers: dict[str, str] | None = None) -> Invocation:
        started = time.monotonic()
        response = self.http.post(fn.url, json=data, timeout=timeout, headers=headers)
        try:
            body: Any = response.json()
        except ValueError:
            body = response.text
        return Invocation(response.status_code, body, dict(response.headers),
                          time.monotonic() - started)

    def invoke_event(self, fn: Function, event: Any, *, timeout: float = 30.0) -> Invocation:
        """POST a CloudEvent (binary mode) straight to the function, as a trigger would."""
        headers, body = bindings.to_http(event)
        started = time.monotonic()
        response = self.http.post(fn.url, headers=headers, content=body, timeout=timeout)
        return Invocation(response.status_code, response.content, dict(response.headers),
                          time.monotonic() - started)

    def delete(self, fn: Function, *, timeout: float = 30.0) -> None:
        event = new_event(EventKind.SERVICE_DELETE,
                          {"third_party_id": fn.third_party_id, "parser_id": fn.parser_id,
                           "service_name": fn.service, "reason": "deleted by harness"},
                          source=f"network.notifi.{fn.third_party_id}", subject=fn.parser_id,
                          prefix=self.settings.event_prefix)
        status = self.publish(event)
        if status != 202:
            raise PlatformError(f"broker ingress answered {status} to service.delete")
        if poll(lambda: self.service(fn.service) is None and not self.trigger_exists(fn.service),
                timeout, interval=0.1):
            return
        raise PlatformError(f"{fn.service} still present {timeout:.0f}s after service.delete")

    def services(self) -> list[dict[str, Any]]:
        response = self.http.get(f"{self.settings.gateway_url}/apis/v1/services")
        response.raise_for_status()
        body = response.json()
        return body.get("services", body) if isinstance(body, dict) else body

    def service(self, name: str) -> dict[str, Any] | None:
        return next((s for s in self.services() if s.get("name") == name), None)

    def triggers(self) -> list[dict[str, Any]]:
        response = self.http.get(f"{self.settings.broker_url}/apis/v1/triggers")
        response.raise_for_status()
        return response.json()["items"]

    def trigger_exists(self, name: str) -> bool:
        return any(t.get("name") == name for t in self.triggers())

    # -- events ---------------------------------------------------------------
    def ingress_url(self) -> str:
        return f"{self.settings.broker_url}/{self.settings.namespace}/default"

    def publish(self, event: Any) -> int:
        headers, body = bindings.to_http(event)
        return self.http.post(self.ingress_url(), headers=headers, content=body).status_code

    def publish_raw(self, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        response = self.http.post(self.ingress_url(), headers=headers, content=body)
        try:
            return response.status_code, response.json()
        except ValueError:
            return response.status_code, response.text

    # -- scaling --------------------------------------------------------------
    def instance_count(self, fn: Function) -> int:
        service = self.service(fn.service)
        if service is None:
            return 0
        return sum(len(r.get("instances", [])) for r in service.get("revisions", []))

    def timeline(self, fn: Function, since: float = 0.0) -> list[dict[str, Any]]:
        """The gateway's events for ``fn`` at or after wall-clock time ``since``."""
        response = self.http.get(f"{self.settings.gateway_url}/apis/v1/timeline",
                                 params={"service": f"{fn.namespace}/{fn.service}"})
        response.raise_for_status()
        return [e for e in response.json().get("events", []) if e.get("wall", 0.0) >= since]

    def trace_spans(self, trace_id: str, names: Sequence[str] = (), *, timeout: float = 5.0
                    ) -> list[dict[str, Any]] | None:
        """The spans of ``trace_id`` (once ``names`` are all there, or at the timeout), or
        None: a remote platform's spans go to its own collector, not to files read here."""
        return None

    def direct_url(self, fn: Function) -> str | None:
        """URL of one ready instance, bypassing the gateway (the throughput baseline)."""
        service = self.service(fn.service) or {}
        for revision in service.get("revisions", []):
            for instance in revision.get("instances", []):
                if instance.get("state") == "ready" and instance.get("port"):
                    return f"http://127.0.0.1:{instance['port']}/"
        return None

    def wait_scaled_to_zero(self, fn: Function, *, timeout: float = 120.0) -> float:
        started = time.monotonic()
        if poll(lambda: self.instance_count(fn) == 0, timeout, interval=0.1):
            return time.monotonic() - started
        raise PlatformError(f"{fn.service} still has instances after {timeout:.0f}s")

