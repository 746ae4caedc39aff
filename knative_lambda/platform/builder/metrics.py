"""Prometheus metrics of the builder, under the original platform's names.

    cloudevents_total{type, outcome}        events received (accepted, duplicate, rejected,
                                            rate_limited, quota) and emitted (emitted, emit_failed)
    build_requests_total{kind}              build requests accepted
    build_request_duration_seconds{status}  request received -> result
    build_success_total / build_failure_total{status}   results (failure: failed | timeout)
    build_queue_size                        builds waiting for a slot
    k8s_job_*                               kaniko Jobs (kind/cluster targets only)
"""

from __future__ import annotations

from prometheus_client import REGISTRY, Counter, Gauge, Histogram

BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800)

# The broker's cloudevents_total has other labels; one Python process holding both
# (tests, in-process use) cannot register both, so this one is registered by the
# builder process itself (register_process_metrics), not at import.
CLOUDEVENTS = Counter("cloudevents_total", "CloudEvents through the builder", ["type", "outcome"],
                      registry=None)
BUILD_REQUESTS = Counter("build_requests_total", "Build requests accepted", ["kind"])
BUILD_DURATION = Histogram("build_request_duration_seconds", "Build request to result", ["status"],
                           buckets=BUCKETS)
BUILD_SUCCESS = Counter("build_success_total", "Builds that succeeded (cache hits included)", ["cached"])
BUILD_FAILURE = Counter("build_failure_total", "Builds that failed or timed out", ["status"])
BUILD_QUEUE = Gauge("build_queue_size", "Builds waiting for a concurrency slot")
BUILDS_RUNNING = Gauge("build_running", "Builds holding a concurrency slot")

K8S_JOBS_CREATED = Counter("k8s_job_created_total", "Kaniko Jobs submitted")
K8S_JOBS_SUCCEEDED = Counter("k8s_job_succeeded_total", "Kaniko Jobs that completed")
K8S_JOBS_FAILED = Counter("k8s_job_failed_total", "Kaniko Jobs that failed or timed out", ["reason"])
K8S_JOB_DURATION = Histogram("k8s_job_duration_seconds", "Kaniko Job submitted -> finished",
                             buckets=BUCKETS)


def register_process_metrics() -> None:
    """Export ``cloudevents_total`` from the builder process (see above)."""
    REGISTRY.register(CLOUDEVENTS)
