"""The few numbers ``kl status`` shows per platform process, from its /metrics text.

Pure: :func:`summarize` takes the Prometheus exposition text and returns named
totals (label sets summed); fetching is the caller's job.
"""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

# component -> [(headline name, metric sample name, {label: value} that must match)]
HEADLINES: dict[str, list[tuple[str, str, dict[str, str]]]] = {
    "broker": [
        ("published", "cloudevents_total", {"outcome": "published"}),
        ("delivered", "cloudevents_total", {"outcome": "delivered"}),
        ("retried", "cloudevents_total", {"outcome": "retried"}),
        ("dead-lettered", "cloudevents_total", {"outcome": "dead_lettered"}),
    ],
    "builder": [
        ("builds ok", "build_success_total", {}),
        ("builds failed", "build_failure_total", {}),
        ("queued", "build_queue_size", {}),
    ],
    "gateway": [
        ("requests", "kl_gateway_requests_total", {}),
        ("instances", "kl_gateway_instances", {}),
        ("cold starts", "cold_starts_total", {}),
    ],
    "deployer": [
        ("applied", "kl_deployer_events_total", {"outcome": "applied"}),
        ("rejected", "kl_deployer_events_total", {"outcome": "rejected"}),
    ],
}


def summarize(component: str, text: str) -> dict[str, float]:
    """Headline totals of ``component`` from its metrics text (unknown component: {})."""
    wanted = HEADLINES.get(component, [])
    totals = {name: 0.0 for name, _, _ in wanted}
    if not wanted:
        return totals
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            for name, metric, labels in wanted:
                if sample.name == metric and all(sample.labels.get(k) == v for k, v in labels.items()):
                    totals[name] += sample.value
    return totals


def render(totals: dict[str, float]) -> str:
    """``delivered 12, dead-lettered 0`` (integers shown without a decimal point)."""
    return ", ".join(f"{name} {int(v) if float(v).is_integer() else round(v, 3)}" for name, v in totals.items())
