"""The CI gate: result files + a budget file -> table, JUnit XML, JSON, exit code.

Several result files of the same suite are pooled (samples concatenated, errors
and windows summed): re-running a noisy benchmark narrows its interval instead
of replacing it. Formatting is apart from printing; the decision is in budgets.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from knative_lambda.bench import budgets as bd
from knative_lambda.bench.results import Measurement, RunRecord, load
from knative_lambda.bench.stats import Estimate


@dataclass(frozen=True)
class GateResult:
    budgets: bd.Budgets
    checks: list[bd.Check]
    passed: bool
    results: list[str]  # result files it read
    warnings: tuple[str, ...] = ()

    def counts(self) -> dict[str, int]:
        out = {v.value: 0 for v in bd.Verdict}
        for c in self.checks:
            out[c.verdict.value] += 1
        return out


def pool(records: Iterable[RunRecord]) -> tuple[dict[str, Measurement], dict[str, str]]:
    """Measurements by id across runs, and the failed benchmarks (name or id -> why)."""
    pooled: dict[str, Measurement] = {}
    failed: dict[str, str] = {}
    for rec in records:
        for bench in rec.benchmarks:
            if bench.status != "ok":
                failed[bench.name] = f"benchmark {bench.status}: {bench.error or 'no error recorded'}"
            for m in bench.measurements.values():
                have = pooled.get(m.id)
                if have is None:
                    pooled[m.id] = Measurement(
                        id=m.id, samples=list(m.samples), errors=m.errors, duration=m.duration,
                        unit=m.unit, error_messages=list(m.error_messages),
                        summary=None if m.samples else m.summary,
                    )
                    continue
                have.samples.extend(m.samples)
                have.errors += m.errors
                have.duration = (
                    None if have.duration is None or m.duration is None
                    else have.duration + m.duration
                )
                have.error_messages.extend(m.error_messages[: max(0, 5 - len(have.error_messages))])
    return pooled, failed


def run_gate(result_paths: Sequence[Path], budgets_path: Path) -> GateResult:
    budgets = bd.load_budgets(budgets_path)
    records = [load(p) for p in result_paths]
    measurements, failed = pool(records)
    checks = bd.evaluate(budgets, measurements, failed)
    return GateResult(budgets, checks, bd.gate_passes(checks, budgets.on_missing),
                      [str(p) for p in result_paths], target_warnings(budgets, records))


def target_warnings(budgets: bd.Budgets, records: Sequence[RunRecord]) -> tuple[str, ...]:
    """Budgets of one target applied to results of another: allowed, but said out loud."""
    targets = sorted({str(r.metadata.get("target")) for r in records if r.metadata.get("target")})
    if budgets.target and targets and targets != [budgets.target]:
        return (f"warning: budgets are for target {budgets.target!r}, results come from "
                f"{', '.join(targets)}",)
    return ()


# -- formatting ---------------------------------------------------------------


def fmt_value(value: float, unit_kind: str) -> str:
    if unit_kind == "time":
        if abs(value) < 1e-3:
            return f"{value * 1e6:.0f} us"
        if abs(value) < 1.0:
            return f"{value * 1e3:.3g} ms"
        return f"{value:.3g} s"
    if unit_kind == "percent":
        return f"{value * 100:.3g} %"
    return f"{value:.4g}"


def measured_kind(check: bd.Check) -> str:
    """How to show the measured value: as a time, a percentage or a plain number."""
    th = check.threshold
    stat = th.refs[0].stat
    if th.func == "ratio":
        return "percent" if th.unit_kind == "percent" else "plain"
    if stat in bd.TIME_STATS:
        return th.unit_kind if th.unit_kind == "time" else "plain"
    if stat in bd.RATE_STATS:
        return "percent"
    return "plain"


def fmt_estimate(est: Estimate | None, unit_kind: str) -> str:
    if est is None:
        return "-"
    if est.low == est.high:
        return fmt_value(est.value, unit_kind)
    return (f"{fmt_value(est.value, unit_kind)} "
            f"[{fmt_value(est.low, unit_kind)} .. {fmt_value(est.high, unit_kind)}]")


def table_rows(result: GateResult) -> list[tuple[str, str, str, str, str]]:
    return [
        (c.threshold.key, c.threshold.expr, fmt_estimate(c.measured, measured_kind(c)),
         c.verdict.value.upper(), c.detail)
        for c in result.checks
    ]


def format_table(result: GateResult) -> str:
    header = ("measurement", "budget", "measured [95% interval]", "verdict", "")
    rows = [header, *table_rows(result)]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = []
    for r in rows:
        cells = [r[i].ljust(widths[i]) for i in range(4)]
        lines.append("  ".join(cells) + (f"  {r[4]}" if r[4] else ""))
    lines.insert(1, "  ".join("-" * w for w in widths))
    counts = result.counts()
    verdict = "PASS" if result.passed else "FAIL"
    lines.append("")
    lines.append(
        f"gate {verdict}: {counts['pass']} pass, {counts['fail']} fail, "
        f"{counts['noisy']} noisy (too noisy to decide, not failing), {counts['missing']} missing"
        f" [budgets {result.budgets.source}]"
    )
    lines.extend(result.warnings)
    return "\n".join(lines)


def format_measurements(measurements: dict[str, Measurement]) -> str:
    """A compact table of what a run measured (printed at the end of ``kl bench``)."""
    rows = [("measurement", "n", "errors", "p50", "p95", "p99", "rps")]
    for mid, m in measurements.items():
        s = m.summarize()
        kind = "time" if m.unit == "s" else "plain"
        rows.append((mid, str(s.count), str(s.errors),
                     *(fmt_estimate(s.get(q), kind).split(" [")[0] for q in ("p50", "p95", "p99")),
                     fmt_value(s.rps.value, "plain") if s.rps else "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                     for r in rows)


def to_json(result: GateResult) -> dict[str, Any]:
    return {
        "budgets": result.budgets.source,
        "target": result.budgets.target,
        "results": result.results,
        "passed": result.passed,
        "counts": result.counts(),
        "warnings": list(result.warnings),
        "checks": [
            {
                "measurement": c.threshold.key,
                "budget": c.threshold.expr,
                "source": c.threshold.source,
                "verdict": c.verdict.value,
                "measured": c.measured.to_dict() if c.measured else None,
                "measured_text": fmt_estimate(c.measured, measured_kind(c)),
                "detail": c.detail,
            }
            for c in result.checks
        ],
    }


def to_junit(result: GateResult) -> bytes:
    """One testcase per threshold. FAIL -> <failure>; MISSING -> <failure> or <skipped>
    (per on_missing); NOISY passes but says so in a property and in system-out."""
    suite = ET.Element("testsuite", name="kl gate", tests=str(len(result.checks)))
    failures = skipped = 0
    for c in result.checks:
        th = c.threshold
        case = ET.SubElement(suite, "testcase", classname=f"budget.{th.key}", name=th.expr,
                             file=th.source.rsplit(":", 1)[0])
        props = ET.SubElement(case, "properties")
        ET.SubElement(props, "property", name="verdict", value=c.verdict.value)
        measured = fmt_estimate(c.measured, measured_kind(c))
        ET.SubElement(props, "property", name="measured", value=measured)
        text = f"{th.key}: {th.expr}: measured {measured}" + (f" ({c.detail})" if c.detail else "")
        if c.verdict is bd.Verdict.FAIL or (
            c.verdict is bd.Verdict.MISSING and result.budgets.on_missing == "fail"
        ):
            failures += 1
            ET.SubElement(case, "failure", message=text, type=c.verdict.value).text = text
        elif c.verdict is bd.Verdict.MISSING:
            skipped += 1
            ET.SubElement(case, "skipped", message=text)
        elif c.verdict is bd.Verdict.NOISY:
            ET.SubElement(case, "system-out").text = (
                f"NOISY: the 95% interval straddles the budget; not counted as a breach. {text}"
            )
    suite.set("failures", str(failures))
    suite.set("skipped", str(skipped))
    suite.set("errors", "0")
    ET.indent(suite)
    return ET.tostring(suite, encoding="utf-8", xml_declaration=True)


def write_outputs(result: GateResult, junit: Path | None, json_path: Path | None) -> None:
    for path, data in ((junit, to_junit(result) if junit else b""),
                       (json_path, json.dumps(to_json(result), indent=1).encode() if json_path else b"")):
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
