"""A synthetic but realistic result record, for tests and for trying gate/report offline.

Shaped like a run of the default suite: cold start (with a breakdown), build,
throughput through the gateway and direct, events, burst (with instances over
time) and scale to zero, plus one chaos summary. Deterministic for a seed.
"""

from __future__ import annotations

import numpy as np

from knative_lambda.bench.results import (
    BenchmarkRecord,
    Measurement,
    RunRecord,
    Series,
    collect_metadata,
)


def _lognormal(rng: np.random.Generator, median: float, sigma: float, n: int) -> list[float]:
    return [float(v) for v in rng.lognormal(np.log(median), sigma, n)]


def synthetic_run(seed: int = 1, slowdown: float = 1.0, with_chaos: bool = True) -> RunRecord:
    """``slowdown`` multiplies every latency (2.0 = a run twice as slow)."""
    rng = np.random.default_rng(seed)
    meta = collect_metadata("local", ["kl", "bench", "default"], suite="default")
    meta["ended"] = meta["started"]
    benches: list[BenchmarkRecord] = []

    cold = BenchmarkRecord("cold_start", "cold_start", {"iterations": 20}, "ok", duration=21.0)
    phases = []
    for _ in range(20):
        p = {"schedule": rng.uniform(0.5e-3, 1e-3) * slowdown,
             "process_start": rng.uniform(6e-3, 10e-3) * slowdown,
             "runtime_ready": rng.uniform(3e-3, 6e-3) * slowdown,
             "first_request": rng.uniform(0.5e-3, 2e-3) * slowdown}
        phases.append(p)
    cold.breakdown = phases
    cold.measurements["cold_start"] = Measurement("cold_start", [sum(p.values()) for p in phases])
    benches.append(cold)

    build = BenchmarkRecord("build", "build", {"runtimes": ["python", "python-dep", "node"]},
                            "ok", duration=14.0)
    for name, median in (("uncached_python", 0.8), ("uncached_python_dep", 2.5),
                         ("uncached_node", 0.9), ("cached", 0.05)):
        mid = f"build.{name}"
        build.measurements[mid] = Measurement(mid, _lognormal(rng, median * slowdown, 0.15, 8))
    benches.append(build)

    thr = BenchmarkRecord("throughput", "throughput", {"duration_s": 10}, "ok", duration=22.0)
    for name, median, n in (("gateway", 1.6e-3, 4000), ("direct", 1.1e-3, 4600)):
        mid = f"throughput.{name}"
        thr.measurements[mid] = Measurement(
            mid, _lognormal(rng, median * slowdown, 0.35, n), errors=int(rng.integers(0, 3)),
            duration=10.0,
        )
        thr.series[f"rps.{name}"] = Series(
            f"rps.{name}", "1/s", [float(t) for t in range(10)],
            [float(v) for v in rng.normal(n / 10, n / 200, 10)],
        )
    thr.series["users"] = Series("users", "users", [0.0, 1.0, 9.0], [4.0, 8.0, 8.0])
    benches.append(thr)

    ev = BenchmarkRecord("events", "events", {"rate": 2000}, "ok", duration=12.0)
    ev.measurements["events"] = Measurement(
        "events", _lognormal(rng, 8e-3 * slowdown, 0.4, 3000), duration=1.4
    )
    ev.measurements["events.ingress"] = Measurement(
        "events.ingress", _lognormal(rng, 2e-3 * slowdown, 0.3, 3000), duration=1.2
    )
    benches.append(ev)
    ev_burst = BenchmarkRecord("events_burst", "events", {"events": 2000}, "ok", duration=9.0)
    ev_burst.measurements["events_burst"] = Measurement(
        "events_burst", _lognormal(rng, 1.0 * slowdown, 0.3, 2000), duration=4.0 * slowdown
    )
    benches.append(ev_burst)

    burst = BenchmarkRecord("burst", "burst", {"requests": 50}, "ok", duration=5.0)
    burst.measurements["burst"] = Measurement("burst", _lognormal(rng, 0.12 * slowdown, 0.3, 50))
    burst.measurements["burst.time_to_peak"] = Measurement("burst.time_to_peak", [1.5 * slowdown])
    t = [i * 0.25 for i in range(40)]
    burst.series["instances"] = Series(
        "instances", "instances", t, [float(min(10, int(x * 6))) if x < 6 else 10.0 for x in t]
    )
    benches.append(burst)

    s2z = BenchmarkRecord("scale_to_zero", "scale_to_zero", {"grace_s": 2}, "ok", duration=8.0)
    s2z.measurements["scale_to_zero"] = Measurement(
        "scale_to_zero", _lognormal(rng, 2.4, 0.05, 3)
    )
    benches.append(s2z)

    chaos = []
    if with_chaos:
        chaos.append({
            "experiment": "broker-restart", "status": "completed", "deviated": False,
            "hypothesis_before": "ok", "hypothesis_after": "ok", "events_sent": 1200,
            "events_lost": 0, "error_rate": 0.004, "time_to_recover": 3.2,
        })
    return RunRecord(metadata=meta, status="ok", benchmarks=benches, chaos=chaos)
