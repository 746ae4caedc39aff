"""Publishing build results through the broker ingress (``{broker_url}/{namespace}/default``)."""

from __future__ import annotations

import logging
from typing import Any

from knative_lambda.contract.events import (
    BUILDER_SOURCE,
    EXT_JOB_NAME,
    EXT_PARSER_ID,
    EXT_THIRD_PARTY_ID,
    STATUS_SUCCEEDED,
    STATUS_TIMEOUT,
    EventKind,
    build_subject,
)
from knative_lambda.contract.factory import new_event
from knative_lambda.platform.broker.client import BrokerClient
from knative_lambda.settings import Settings

log = logging.getLogger("kl.builder")


def result_kind(status: str) -> EventKind:
    if status == STATUS_SUCCEEDED:
        return EventKind.BUILD_COMPLETE
    if status == STATUS_TIMEOUT:
        return EventKind.BUILD_TIMEOUT
    return EventKind.BUILD_FAILED


def result_event(settings: Settings, data: dict[str, Any]) -> Any:
    """The CloudEvent for a build result (``data`` is ``Built.to_dict()``)."""
    tp, parser = data["third_party_id"], data["parser_id"]
    return new_event(
        result_kind(data["status"]),
        data,
        source=BUILDER_SOURCE,
        subject=build_subject(tp, parser),
        prefix=settings.event_prefix,
        correlation_id=data.get("correlation_id") or None,
        extensions={EXT_THIRD_PARTY_ID: tp, EXT_PARSER_ID: parser, EXT_JOB_NAME: data.get("job_name") or None},
    )


class Emitter:
    """Sends result events; without a broker URL it only logs (a builder used in-process)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.client = (
            BrokerClient(settings.broker_url, settings.token, namespace=settings.namespace)
            if settings.broker_url
            else None
        )

    async def emit(self, data: dict[str, Any]) -> str:
        """The event type sent; raises PlatformError/ContractError when the broker refuses it."""
        event = result_event(self.settings, data)
        if self.client is not None:
            await self.client.publish(event)
        return event.get_type()

    async def aclose(self) -> None:
        if self.client is not None:
            await self.client.aclose()
