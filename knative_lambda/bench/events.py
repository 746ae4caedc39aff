"""Events: CloudEvents through the broker ingress to a function and back.

N ``parser.start`` events are published concurrently to the ingress; the
function's trigger delivers them and each reply (``P.processed``) comes back
through the broker to the target's event tap. A sample is the time from the
publish to the reply's arrival (two broker hops and the function); the
ingress acceptance latency and the end-to-end event rate are recorded too.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from knative_lambda.bench.concurrent import post_all, record_outcomes
from knative_lambda.bench.functions import SOURCES, unique_id
from knative_lambda.bench.runner import Recorder, register
from knative_lambda.contract import bindings
from knative_lambda.contract.events import EventKind
from knative_lambda.contract.factory import new_event


@register("events")
def run(target: Any, params: Mapping[str, Any], rec: Recorder) -> None:
    count = int(params.get("events", 1000))
    wait = float(params.get("drain_timeout_s", 60))
    fn = target.deploy("bench", unique_id("events"), SOURCES["python"]())
    tap = target.tap()
    try:
        events = [new_event(EventKind.PARSER_START, {"i": i}, source=f"network.notifi.{fn.third_party_id}",
                            subject=fn.parser_id, prefix=target.settings.event_prefix)
                  for i in range(count)]
        encoded = [bindings.to_http(e) for e in events]
        sent_at: dict[str, float] = {}
        wanted = {e.get_attributes()["correlationid"] for e in events}

        auth = {"Authorization": f"Bearer {target.settings.token}"} if target.settings.token else {}

        def headers(i: int) -> dict[str, str]:
            sent_at[events[i].get_attributes()["correlationid"]] = time.time()
            return {**encoded[i][0], **auth}

        outcomes = post_all(target.ingress_url(), [body for _, body in encoded], headers=headers,
                            concurrency=int(params.get("concurrency", 50)))
        record_outcomes(rec, outcomes, "ingress", ok=lambda s: s == 202)
        deadline = time.monotonic() + wait
        replies: dict[str, float] = {}
        while time.monotonic() < deadline and len(replies) < len(wanted):
            for arrived, event in tap.received():
                corr = event.get_attributes().get("correlationid")
                if corr in wanted and corr not in replies:
                    replies[corr] = arrived
            time.sleep(0.05)
        for corr, arrived in replies.items():
            rec.sample(arrived - sent_at[corr])
        lost = len(wanted) - len(replies)
        if lost:
            rec.error(f"{lost} events got no reply within {wait:.0f}s", count=lost)
        if replies:
            rec.window(max(replies.values()) - min(sent_at.values()))
    finally:
        target.delete(fn)
