"""The summary of one experiment run, from its Chaos Toolkit journal (pure).

    summarize(name, journal, loads={...}, balances={...}) -> dict

What a person (and ``kl report``) wants from a journal: did the hypothesis
hold before and after, did any method step fail, how many events were lost,
the error rate of the background load, and how long the target took to
recover. ``ok`` is the verdict ``kl chaos run`` exits on: the run completed,
the hypothesis held before and after, and no method step failed (chaoslib
itself records a failed action without failing the run; a fault that could
not be injected, or a build that never ended, must fail it here).
"""

from __future__ import annotations

from typing import Any


def _probes(state: dict[str, Any] | None) -> dict[str, Any] | None:
    if not state:
        return None
    return {
        "met": bool(state.get("steady_state_met")),
        "probes": [
            {"name": p.get("activity", {}).get("name"), "output": p.get("output"),
             "tolerance_met": p.get("tolerance_met"), "status": p.get("status"),
             **({"error": p["exception"][-1].strip()} if p.get("exception") else {})}
            for p in state.get("probes", [])
        ],
    }


def _failed_steps(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"name": r.get("activity", {}).get("name"), "status": r.get("status"),
         "error": (r.get("exception") or [""])[-1].strip()}
        for r in runs if r.get("status") not in ("succeeded", None)
    ]


def _max_or_none(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None


def summarize(name: str, journal: dict[str, Any], loads: dict[str, dict[str, Any]] | None = None,
              balances: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    loads = loads or {}
    balances = balances or {}
    steady = journal.get("steady_states") or {}
    before, after = _probes(steady.get("before")), _probes(steady.get("after"))
    failed = _failed_steps(journal.get("run") or [])
    rollbacks_failed = _failed_steps(journal.get("rollbacks") or [])
    status = journal.get("status")
    deviated = bool(journal.get("deviated"))

    events = None
    if balances:
        events = {key: sum(int(b.get(key, 0)) for b in balances.values())
                  for key in ("sent", "processed_once", "lost", "duplicated", "deliveries", "unexpected")}
        events["ledgers"] = balances
    done = sum(int(load.get("done", 0)) for load in loads.values())
    errors = sum(int(load.get("errors", 0)) for load in loads.values())
    restarts = [r.get("output", {}).get("restart_s") for r in journal.get("run") or []
                if isinstance(r.get("output"), dict) and "restart_s" in r["output"]]

    return {
        "experiment": name,
        "title": (journal.get("experiment") or {}).get("title"),
        "status": status,
        "deviated": deviated,
        "ok": status == "completed" and not deviated and not failed
              and bool(before and before["met"]) and (after is None or after["met"]),
        "duration_s": journal.get("duration"),
        "hypothesis": {"before": before, "after": after},
        "failed_steps": failed,
        "failed_rollbacks": rollbacks_failed,
        "events": events,
        "events_lost": events["lost"] if events else None,
        "requests": done,
        "error_rate": errors / done if done else None,
        "time_to_recover_s": _max_or_none(
            [load.get("time_to_recover_s") for load in loads.values()] + restarts),
        "loads": {k: {f: v.get(f) for f in ("kind", "done", "ok", "errors", "retried", "error_rate",
                                             "throughput_per_s", "time_to_recover_s", "complete",
                                             "error_kinds")}
                  for k, v in loads.items()},
    }


def render(summary: dict[str, Any]) -> str:
    """A few lines for the terminal."""
    verdict = "PASSED" if summary["ok"] else "DEVIATED" if summary["deviated"] else "FAILED"
    lines = [f"{summary['experiment']}: {verdict} ({summary['status']}, "
             f"{summary.get('duration_s') or 0:.1f}s)"]
    for phase in ("before", "after"):
        hyp = summary["hypothesis"][phase]
        if hyp is not None:
            bad = [p["name"] for p in hyp["probes"] if not p.get("tolerance_met")]
            lines.append(f"  hypothesis {phase}: {'met' if hyp['met'] else 'NOT met'}"
                         + (f" ({', '.join(str(b) for b in bad)})" if bad else ""))
    if summary["events"]:
        e = summary["events"]
        lines.append(f"  events: sent {e['sent']}, processed {e['processed_once']}, lost {e['lost']}, "
                     f"duplicated {e['duplicated']}")
    if summary["error_rate"] is not None:
        lines.append(f"  requests: {summary['requests']}, error rate {summary['error_rate']:.4f}")
    if summary["time_to_recover_s"] is not None:
        lines.append(f"  time to recover: {summary['time_to_recover_s']:.2f}s")
    lines.extend(f"  step failed: {s['name']}: {s['error']}" for s in summary["failed_steps"])
    lines.extend(f"  rollback failed: {s['name']}: {s['error']}" for s in summary["failed_rollbacks"])
    return "\n".join(lines)
