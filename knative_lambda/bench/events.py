"""Events: CloudEvents through the broker ingress to a function.

N ``parser.start`` events are published to the ingress (at ``rate`` per second
when given, else as fast as ``concurrency`` allows); the
function's trigger delivers them to a function that stamps the time each one
reached it, and its reply (``P.processed``) carries the stamp back through the
broker to the target's event tap. A sample is publish -> function (ingress,
broker, dispatcher, gateway, instance), so the way back, which runs through
this process, does not count. The ingress acceptance latency and the rate at
which events reach the function are recorded too.
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


def received_at(reply: Any) -> float:
    """The function's stamp in its reply (FunctionResult.eventEntries)."""
    entries = reply.get("eventEntries") if isinstance(reply, dict) else None
    entry = entries[0] if isinstance(entries, list) and entries else entries
    return float(entry["received_at"])


@register("events")
def run(target: Any, params: Mapping[str, Any], rec: Recorder) -> None:
    count = int(params.get("events", 1000))
    wait = float(params.get("drain_timeout_s", 60))
    fn = target.deploy("bench", unique_id("events"), SOURCES["python-stamp"]())
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
                            concurrency=int(params.get("concurrency", 50)),
                            rate=float(params["rate"]) if params.get("rate") else None)
        record_outcomes(rec, outcomes, "ingress", ok=lambda s: s == 202)
        deadline = time.monotonic() + wait
        reached: dict[str, float] = {}
        while time.monotonic() < deadline and len(reached) < len(wanted):
            for _arrived, event in tap.received():
                corr = event.get_attributes().get("correlationid")
                if corr in wanted and corr not in reached:
                    reached[corr] = received_at(event.get_data())
            time.sleep(0.05)
        for corr, at in reached.items():
            rec.sample(max(0.0, at - sent_at[corr]))
        lost = len(wanted) - len(reached)
        if lost:
            rec.error(f"{lost} events got no reply within {wait:.0f}s", count=lost)
        if reached:
            rec.window(max(reached.values()) - min(sent_at.values()))
    finally:
        target.delete(fn)
