"""The HTML report: one self-contained file (inline CSS and SVG, no external URL).

Reads result records (and optionally a gate result, a baseline run and chaos
summaries) and writes ``<out>/index.html`` plus ``<out>/summary.json``. Plots are
matplotlib figures (Agg backend) inlined as SVG:

- latency CDFs per benchmark (the baseline run dashed when given),
- the cold-start breakdown (stacked bars of the phases of each sample),
- instances (and load users) over time,
- throughput over time,

then the comparison against the baseline (ratio of medians with its bootstrap
interval) and a section for every chaos summary (experiment, hypothesis before
and after, events lost, error rate, time to recover, and whatever else it holds).
"""

from __future__ import annotations

import html
import io
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from knative_lambda.bench import stats as st
from knative_lambda.bench.gate import fmt_estimate, fmt_value, pool
from knative_lambda.bench.results import BenchmarkRecord, Measurement, RunRecord, Series, load
from knative_lambda.errors import ConfigError

CHAOS_FIELDS = (
    ("experiment", "experiment"),
    ("status", "status"),
    ("hypothesis_before", "hypothesis before"),
    ("hypothesis_after", "hypothesis after"),
    ("events_sent", "events sent"),
    ("events_lost", "events lost"),
    ("error_rate", "error rate"),
    ("time_to_recover", "time to recover (s)"),
    ("deviated", "deviated"),
)
# Series shown on the "instances" and "throughput" plots, by name prefix.
INSTANCE_PREFIXES = ("instances", "users", "replicas", "pods")
THROUGHPUT_PREFIXES = ("rps", "throughput", "events_per_s")

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;
max-width:1100px;color:#1d2330;padding:0 1rem}
h1{margin-bottom:.2rem}h2{border-bottom:2px solid #e3e7ee;padding-bottom:.3rem;margin-top:2.2rem}
table{border-collapse:collapse;margin:.6rem 0;font-size:.9rem}
th,td{border:1px solid #d5dae3;padding:.3rem .6rem;text-align:left;vertical-align:top}
th{background:#f3f5f9}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.pass,.ok{background:#e3f6e8}.fail,.failed{background:#fde3e3}.noisy,.interrupted{background:#fff4d6}
.missing{background:#eceff4}.badge{font-weight:600;padding:.1rem .5rem;border-radius:.3rem}
figure.plot{margin:1rem 0;border:1px solid #e3e7ee;border-radius:.4rem;padding:.5rem}
figure.plot svg{width:100%;height:auto}figcaption{font-size:.85rem;color:#555}
.muted{color:#667}pre{background:#f6f8fa;padding:.6rem;overflow:auto;font-size:.8rem}
.verdict{font-size:1.3rem;margin:.8rem 0}.ci{font-size:.75rem;color:#667;white-space:nowrap}
.plots{display:grid;grid-template-columns:repeat(auto-fill,minmax(480px,1fr));gap:.8rem}
.plots figure.plot{margin:0}.scroll{overflow-x:auto;max-width:100%}
"""


class Raw(str):
    """A table cell that is already HTML (not escaped again)."""


def _e(value: Any) -> str:
    return value if isinstance(value, Raw) else html.escape(str(value))


def _est_cell(est: st.Estimate | None, kind: str) -> Raw:
    """Value on one line, its interval small and muted below: tables stay narrow."""
    if est is None:
        return Raw("-")
    value = html.escape(fmt_value(est.value, kind))
    if est.low == est.high:
        return Raw(value)
    return Raw(f'{value}<br><span class="ci">{html.escape(fmt_value(est.low, kind))} .. '
               f"{html.escape(fmt_value(est.high, kind))}</span>")


# -- plots ------------------------------------------------------------------


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.fonttype": "none", "font.size": 9, "axes.grid": True,
                         "grid.alpha": 0.3})
    return plt


_SVG_CLEAN = [
    (re.compile(r"<\?xml[^>]*\?>\s*"), ""),
    (re.compile(r"<!DOCTYPE[^>]*>\s*", re.S), ""),
    (re.compile(r'\s+xmlns(:\w+)?="[^"]*"'), ""),
    (re.compile(r"<metadata>.*?</metadata>\s*", re.S), ""),
]


def _svg(fig: Any, salt: str) -> str:
    """A figure as inline SVG, with the XML prolog, DOCTYPE and namespace URLs removed
    (inline SVG in HTML needs none of them, and the report must hold no external URL)."""
    plt = _plt()
    buf = io.StringIO()
    with plt.rc_context({"svg.hashsalt": salt}):  # unique ids per figure in one document
        fig.savefig(buf, format="svg", bbox_inches="tight",
                    metadata={"Creator": None, "Date": None, "Format": None, "Type": None})
    plt.close(fig)
    text = buf.getvalue()
    for pattern, repl in _SVG_CLEAN:
        text = pattern.sub(repl, text)
    text = text.replace("xlink:href", "href")
    return text


def _figure(svg: str, ident: str, caption: str) -> str:
    return (f'<figure class="plot" id="plot-{_e(ident)}">{svg}'
            f"<figcaption>{_e(caption)}</figcaption></figure>")


CDF_POINTS = 500  # larger samples are drawn through their quantiles: same curve, small SVG


MIN_CDF_SAMPLES = 3  # fewer is a dot, not a distribution (e.g. one time-to-peak)


def _cdf_xy(samples: Sequence[float], scale: float) -> tuple[Any, Any]:
    import numpy as np

    x = np.sort(np.asarray(samples, dtype=float)) * scale
    y = np.arange(1, len(x) + 1) / len(x)
    if len(x) > CDF_POINTS:
        y = np.linspace(1 / len(x), 1.0, CDF_POINTS)
        x = np.quantile(x, y, method="inverted_cdf")
    # start the staircase at 0 so the first step is drawn
    return np.concatenate(([x[0]], x)), np.concatenate(([0.0], y))


def plot_cdf(name: str, current: dict[str, list[float]],
             baseline: dict[str, list[float]] | None = None) -> str:
    """Empirical CDFs of the latency measurements of one benchmark (ms or s on the x axis)."""
    import numpy as np

    plt = _plt()
    all_x = [v for s in current.values() for v in s]
    scale, unit = (1.0, "s") if float(np.median(all_x)) >= 1.0 else (1e3, "ms")
    fig, ax = plt.subplots(figsize=(6, 3.2))
    for label, samples in current.items():
        x, y = _cdf_xy(samples, scale)
        line = ax.step(x, y, where="post", label=f"{label} (n={len(samples)})")[0]
        if baseline and baseline.get(label):
            bx, by = _cdf_xy(baseline[label], scale)
            ax.step(bx, by, where="post", linestyle="--", color=line.get_color(), alpha=0.6,
                    label=f"{label} baseline (n={len(baseline[label])})")
    positive = [v for v in all_x if v > 0]
    if positive and max(positive) / min(positive) > 50:
        ax.set_xscale("log")
    ax.set_xlabel(f"latency ({unit})")
    ax.set_ylabel("fraction of samples")
    ax.set_ylim(0, 1.02)
    ax.set_title(f"{name}: latency CDF")
    entries = len(ax.get_lines())
    if entries > 2:  # many curves: the legend goes below, off the data
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncols=2, fontsize=7)
    else:
        ax.legend(loc="lower right", fontsize=8)
    return _figure(_svg(fig, f"cdf-{name}"), f"cdf-{name}",
                   f"{name}: share of samples at or below each latency")


def plot_breakdown(name: str, breakdown: list[dict[str, float]]) -> str:
    """Stacked bars: one per sample, one colour per phase (seconds shown as ms)."""
    import numpy as np

    plt = _plt()
    phases = list(dict.fromkeys(k for b in breakdown for k in b))
    fig, ax = plt.subplots(figsize=(6, 3.2))
    x = np.arange(1, len(breakdown) + 1)
    bottom = np.zeros(len(breakdown))
    for phase in phases:
        vals = np.array([b.get(phase, 0.0) for b in breakdown]) * 1e3
        ax.bar(x, vals, bottom=bottom, label=phase)
        bottom += vals
    ax.set_xlabel("sample")
    ax.set_ylabel("ms")
    ax.set_ylim(0, float(bottom.max()) * 1.3 if len(bottom) else 1)  # room for the legend
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_title(f"{name}: cold-start breakdown")
    ax.legend(fontsize=7, ncols=min(len(phases), 4), loc="upper left")
    return _figure(_svg(fig, f"breakdown-{name}"), f"breakdown-{name}",
                   f"{name}: where each cold start spent its time")


def plot_series(name: str, what: str, series: Sequence[Series], ylabel: str) -> str:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.0))
    for s in series:
        ax.step(s.t, s.v, where="post", label=s.name)
    ax.set_xlabel("seconds since start")
    ax.set_ylabel(ylabel)
    ax.set_title(f"{name}: {what}")
    ax.legend(fontsize=8)
    ident = f"{what.split()[0]}-{name}"
    return _figure(_svg(fig, ident), ident, f"{name}: {what}")


# -- tables -----------------------------------------------------------------


def _kind(m: Measurement) -> str:
    return "time" if m.unit == "s" else "plain"


def summary_rows(measurements: dict[str, Measurement]) -> list[dict[str, Any]]:
    rows = []
    for mid, m in measurements.items():
        s = m.summarize()
        k = _kind(m)
        rows.append({
            "id": mid, "count": s.count, "errors": s.errors,
            **{q: fmt_estimate(s.get(q), k) for q in ("p50", "p90", "p95", "p99", "max")},
            "error_rate": fmt_estimate(s.error_rate, "percent"),
            "rps": fmt_estimate(s.rps, "plain"),
            "cells": [_est_cell(s.get(q), k) for q in ("p50", "p95", "p99", "max")]
            + [_est_cell(s.error_rate, "percent"), _est_cell(s.rps, "plain")],
        })
    return rows


def span_rows(benches: Sequence[BenchmarkRecord]) -> list[dict[str, Any]]:
    """Per benchmark with a span breakdown (cold start: ``extra["span_breakdown"]``), the
    median of each span part and how many samples had their spans (pure)."""
    rows = []
    for bench in benches:
        spans = bench.extra.get("span_breakdown")
        if not isinstance(spans, dict) or not isinstance(spans.get("summary"), dict):
            continue
        summary, parts = spans["summary"], spans.get("parts") or {}
        common = {"benchmark": bench.name, "note": str(summary.get("note", "")),
                  "samples": f"{summary.get('complete', '?')} of {summary.get('samples', '?')}"}
        medians = {k: float(v) for k, v in (summary.get("median_s") or {}).items()
                   if isinstance(v, int | float)}
        for key, median in medians.items():
            rows.append({**common, "part": key, "median_s": median, "what": str(parts.get(key, ""))})
        if not medians:  # every sample's spans were missing: say so rather than show nothing
            rows.append({**common, "part": "-", "median_s": None, "what": "no spans found"})
    return rows


def comparison_rows(current: dict[str, Measurement],
                    baseline: dict[str, Measurement]) -> list[dict[str, Any]]:
    """Per measurement in both runs: medians, ratio of medians with CI, and a verdict word."""
    rows = []
    for mid, m in current.items():
        b = baseline.get(mid)
        if b is None:
            continue
        s_now, s_base = m.summarize(), b.summarize()
        if m.samples and b.samples:
            ratio = st.ratio_of_medians(m.samples, b.samples)
        elif s_now.p50 is not None and s_base.p50 is not None:
            # a slim baseline (summaries only): combine the two intervals instead
            ratio = st.ratio_of_estimates(s_now.p50, s_base.p50)
        else:
            continue
        k = _kind(m)
        if ratio is None:
            change = "-"
        elif ratio.low > 1:
            change = "slower" if k == "time" else "higher"
        elif ratio.high < 1:
            change = "faster" if k == "time" else "lower"
        else:
            change = "no clear change"
        rows.append({
            "id": mid,
            "baseline": fmt_estimate(s_base.p50, k),
            "current": fmt_estimate(s_now.p50, k),
            "ratio": fmt_estimate(ratio, "plain") if ratio else "-",
            "cells": [_est_cell(s_base.p50, k), _est_cell(s_now.p50, k),
                      _est_cell(ratio, "plain")],
            "delta": f"{(ratio.value - 1) * 100:+.1f} %" if ratio else "-",
            "change": change,
            "ratio_value": ratio.to_dict() if ratio else None,
        })
    return rows


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]],
           row_classes: Sequence[str] | None = None, num_from: int = 99) -> str:
    out = ['<div class="scroll"><table><thead><tr>', *(f"<th>{_e(h)}</th>" for h in headers),
           "</tr></thead><tbody>"]
    for i, row in enumerate(rows):
        cls = f' class="{_e(row_classes[i])}"' if row_classes else ""
        out.append(f"<tr{cls}>")
        for j, cell in enumerate(row):
            td = '<td class="num">' if j >= num_from else "<td>"
            out.append(f"{td}{_e(cell)}</td>")
        out.append("</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


def _chaos_section(entries: list[dict[str, Any]]) -> str:
    parts = []
    for i, entry in enumerate(entries, 1):
        title = entry.get("experiment") or entry.get("title") or f"experiment {i}"
        rows = []
        for key, label in CHAOS_FIELDS:
            if key in entry:
                v = entry[key]
                if key == "error_rate" and isinstance(v, int | float):
                    v = fmt_value(float(v), "percent")
                elif isinstance(v, dict | list):
                    v = json.dumps(v, sort_keys=True)
                rows.append((label, v))
        rest = {k: v for k, v in entry.items() if k not in dict(CHAOS_FIELDS)}
        cls = "fail" if entry.get("deviated") or entry.get("status") in ("failed", "deviated") else "ok"
        parts.append(f'<h3 class="chaos" id="chaos-{i}">{_e(title)} '
                     f'<span class="badge {cls}">{_e(entry.get("status", ""))}</span></h3>')
        parts.append(_table(("field", "value"), rows))
        if rest:
            parts.append(f"<pre>{_e(json.dumps(rest, indent=1, sort_keys=True, default=str))}</pre>")
    return "".join(parts)


# -- the document -----------------------------------------------------------


def _bench_plots(bench: BenchmarkRecord, measurements: dict[str, Measurement],
                 baseline: dict[str, Measurement] | None) -> list[str]:
    figs = []
    lat = {mid: measurements[mid].samples for mid in bench.measurements
           if mid in measurements and measurements[mid].unit == "s"
           and len(measurements[mid].samples) >= MIN_CDF_SAMPLES}
    if lat:
        base = None
        if baseline:
            base = {mid: baseline[mid].samples for mid in lat if mid in baseline}
        figs.append(plot_cdf(bench.name, lat, base))
    if bench.breakdown:
        figs.append(plot_breakdown(bench.name, bench.breakdown))
    inst = [s for k, s in bench.series.items() if k.startswith(INSTANCE_PREFIXES) and s.t]
    if inst:
        figs.append(plot_series(bench.name, "instances over time", inst, "count"))
        # (a throughput run's "users" series is the load generator's users, named as such)
    thr = [s for k, s in bench.series.items() if k.startswith(THROUGHPUT_PREFIXES) and s.t]
    if thr:
        figs.append(plot_series(bench.name, "throughput over time", thr, "per second"))
    return figs


def render(
    records: Sequence[RunRecord],
    *,
    baseline: RunRecord | None = None,
    gate: dict[str, Any] | None = None,
    chaos: Sequence[dict[str, Any]] = (),
    title: str = "Knative Lambda benchmark report",
) -> tuple[str, dict[str, Any]]:
    """The HTML document and a JSON summary of what it shows."""
    if not records:
        raise ConfigError("no result files to report on")
    measurements, failed = pool(records)
    base_m = pool([baseline])[0] if baseline else None
    meta = records[0].metadata
    summary: dict[str, Any] = {"measurements": summary_rows(measurements)}
    body: list[str] = [f"<h1>{_e(title)}</h1>"]
    statuses = {r.status for r in records}
    body.append(f'<p class="muted">target <b>{_e(meta.get("target", "?"))}</b>, suite '
                f'<b>{_e(meta.get("suite", "?"))}</b>, run status <b>{_e(", ".join(sorted(statuses)))}</b>, '
                f"{len(records)} result file(s)</p>")
    if gate is not None:
        passed = gate.get("passed")
        cls = "pass" if passed else "fail"
        counts = gate.get("counts", {})
        body.append('<h2 id="gate">Budget gate</h2>')
        body.append(f'<p class="verdict"><span class="badge {cls}">gate {"PASS" if passed else "FAIL"}</span> '
                    f"{_e(counts.get('pass', 0))} pass, {_e(counts.get('fail', 0))} fail, "
                    f"{_e(counts.get('noisy', 0))} noisy, {_e(counts.get('missing', 0))} missing "
                    f'<span class="muted">({_e(gate.get("budgets", ""))})</span></p>')
        for warning in gate.get("warnings", []):
            body.append(f'<p class="noisy">{_e(warning)}</p>')
        checks = gate.get("checks", [])
        body.append(_table(
            ("measurement", "budget", "measured [95% interval]", "verdict", "detail"),
            [(c["measurement"], c["budget"], c.get("measured_text", "-"), c["verdict"].upper(),
              c.get("detail", "")) for c in checks],
            [c["verdict"] for c in checks],
        ))
        body.append('<p class="muted">FAIL only when the whole interval breaches the budget; '
                    "NOISY (too noisy to decide) is reported and does not fail the gate.</p>")
        summary["gate"] = {"passed": passed, "counts": counts}
    body.append('<h2 id="benchmarks">Benchmarks</h2>')
    benches = [b for r in records for b in r.benchmarks]
    body.append(_table(
        ("benchmark", "kind", "status", "duration", "error"),
        [(b.name, b.kind, b.status, fmt_value(b.duration, "time") if b.duration else "-",
          b.error or "") for b in benches],
        [b.status for b in benches],
    ))
    body.append('<h2 id="summary">Measurements</h2>')
    rows = summary["measurements"]
    body.append(_table(
        ("measurement", "count", "errors", "p50", "p95", "p99", "max", "error rate", "rps"),
        [(r["id"], r["count"], r["errors"], *r.pop("cells")) for r in rows],
        num_from=1,
    ))
    body.append('<p class="muted">Each value with its bootstrap 95 % interval below it '
                "(error rate: Wilson interval; rps: Poisson).</p>")
    spans = span_rows(benches)
    if spans:
        summary["span_breakdown"] = spans
        body.append('<h2 id="spans">Span breakdown</h2>')
        body.append(_table(
            ("benchmark", "part", "median", "samples with spans", "what it measures"),
            [(r["benchmark"], r["part"], "-" if r["median_s"] is None else fmt_value(r["median_s"], "time"),
              r["samples"], r["what"]) for r in spans],
        ))
        for note in dict.fromkeys(f"{r['benchmark']}: {r['note']}" for r in spans if r["note"]):
            body.append(f'<p class="noisy">{_e(note)}</p>')
        body.append('<p class="muted">From the OpenTelemetry spans of each traced cold request '
                    "(gateway.request, instance.invoke); the timeline breakdown is in the plots.</p>")
    if base_m is not None:
        comp = comparison_rows(measurements, base_m)
        summary["comparison"] = comp
        bmeta = baseline.metadata if baseline else {}
        body.append('<h2 id="comparison">Comparison with the baseline</h2>')
        body.append(f'<p class="muted">baseline: {_e(bmeta.get("git_revision") or "?")} '
                    f'started {_e(bmeta.get("started") or "?")}</p>')
        if comp:
            body.append(_table(
                ("measurement", "baseline p50", "current p50", "ratio of medians [95%]",
                 "delta", "change"),
                [(c["id"], *c.pop("cells"), c["delta"], c["change"]) for c in comp],
                num_from=1,
            ))
        else:
            body.append("<p>No measurement in common with the baseline.</p>")
    plots: list[str] = []
    for bench in benches:
        figs = _bench_plots(bench, measurements, base_m)
        if figs:
            plots.append(f'<h3 id="bench-{_e(bench.name)}">{_e(bench.name)}</h3>')
            plots.append('<div class="plots">' + "".join(figs) + "</div>")
    if plots:
        body.append('<h2 id="plots">Plots</h2>')
        body.extend(plots)
    chaos_entries = [c for r in records for c in r.chaos] + list(chaos)
    if chaos_entries:
        body.append('<h2 id="chaos">Chaos experiments</h2>')
        body.append(_chaos_section(chaos_entries))
        summary["chaos"] = len(chaos_entries)
    if failed:
        summary["failed"] = failed
    body.append('<h2 id="metadata">Run</h2>')
    machine = meta.get("machine") or {}
    body.append(_table(("field", "value"), [
        ("git revision", meta.get("git_revision") or "?"),
        ("started / ended", f"{meta.get('started', '?')} / {meta.get('ended', '?')}"),
        ("command", " ".join(meta.get("command") or [])),
        ("python", meta.get("python", "?")),
        ("packages", ", ".join(f"{k} {v}" for k, v in (meta.get("packages") or {}).items())),
        ("machine", f"{machine.get('cpu_count', '?')} CPU {machine.get('cpu_model', '')}, "
                    f"{(machine.get('memory_bytes') or 0) / 2**30:.1f} GiB, {machine.get('system', '')}"),
    ]))
    doc = ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
           f"<title>{_e(title)}</title><style>{CSS}</style></head><body>"
           + "\n".join(body) + "</body></html>\n")
    return doc, summary


def _load_chaos(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read chaos summary ({exc})") from None
    if isinstance(data, dict) and isinstance(data.get("chaos"), list):
        data = data["chaos"]
    items = data if isinstance(data, list) else [data]
    if not all(isinstance(i, dict) for i in items):
        raise ConfigError(f"{path}: a chaos summary is an object or a list of objects")
    return items


def _load_gate(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read gate result ({exc})") from None
    if not isinstance(data, dict) or "checks" not in data:
        raise ConfigError(f"{path}: not a gate result (write one with kl gate --json)")
    return data


def write_report(
    result_paths: Sequence[Path],
    out_dir: Path,
    *,
    baseline: Path | None = None,
    gate: Path | dict[str, Any] | None = None,
    chaos: Sequence[Path] = (),
) -> Path:
    """Render and write ``out_dir/index.html`` (and ``summary.json``); returns the HTML path."""
    records = [load(p) for p in result_paths]
    gate_data = _load_gate(gate) if isinstance(gate, Path) else gate
    chaos_entries = [c for p in chaos for c in _load_chaos(p)]
    doc, summary = render(records, baseline=load(baseline) if baseline else None,
                          gate=gate_data, chaos=chaos_entries)
    out_dir.mkdir(parents=True, exist_ok=True)
    index = out_dir / "index.html"
    index.write_text(doc)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=1, default=str) + "\n")
    return index
