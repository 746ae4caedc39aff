"""Prometheus metrics of the gateway.

Per-request counts are not incremented on the hot path: a collector reads the
gateway's own counters at scrape time. Only rare events (cold starts, scale
decisions) touch prometheus objects directly.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from typing import Any

from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

COLD_START = Histogram(
    "kl_gateway_cold_start_seconds",
    "Time from process start request to instance ready",
    ["namespace", "service"],
    buckets=(0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
SCALE_DECISIONS = Counter(
    "kl_gateway_scale_decisions_total", "Autoscaler decisions that changed the desired scale",
    ["namespace", "service"],
)

_gateways: weakref.WeakSet[Any] = weakref.WeakSet()


class _GatewayCollector(Collector):
    def collect(self) -> Iterator[Any]:
        requests = CounterMetricFamily("kl_gateway_requests", "Requests routed to a revision",
                                       labels=["namespace", "service", "revision"])
        errors = CounterMetricFamily("kl_gateway_request_errors", "Requests answered with 5xx",
                                     labels=["namespace", "service", "revision"])
        cold = CounterMetricFamily("kl_gateway_cold_starts", "Instances that became ready",
                                   labels=["namespace", "service", "revision"])
        # the original platform's name for the same count
        cold_total = CounterMetricFamily("cold_starts", "Function instances started (cold starts)",
                                         labels=["namespace", "service", "revision"])
        inflight = GaugeMetricFamily("kl_gateway_inflight", "Requests in flight or buffered",
                                     labels=["namespace", "service", "revision"])
        instances = GaugeMetricFamily("kl_gateway_instances", "Instances by state",
                                      labels=["namespace", "service", "revision", "state"])
        desired = GaugeMetricFamily("kl_gateway_desired_instances", "Autoscaler's desired scale",
                                    labels=["namespace", "service", "revision"])
        for gw in list(_gateways):
            for svc in list(gw.services.values()):
                for rev in list(svc.revisions.values()):
                    labels = [rev.namespace, rev.service, rev.name]
                    requests.add_metric(labels, rev.requests)
                    errors.add_metric(labels, rev.errors)
                    cold.add_metric(labels, rev.cold_starts)
                    cold_total.add_metric(labels, rev.cold_starts)
                    inflight.add_metric(labels, rev.concurrency)
                    desired.add_metric(labels, rev.desired)
                    counts: dict[str, int] = {}
                    for inst in rev.instances.values():
                        counts[inst.state] = counts.get(inst.state, 0) + 1
                    for state, n in counts.items():
                        instances.add_metric([*labels, state], n)
        yield from (requests, errors, cold, cold_total, inflight, instances, desired)

    def describe(self) -> list[Any]:
        return []


REGISTRY.register(_GatewayCollector())


def register(gateway: Any) -> None:
    _gateways.add(gateway)
