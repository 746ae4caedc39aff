"""Performance budgets: k6-like thresholds per measurement, and their verdicts. Pure.

A budget file (``benchmarks/budgets/<target>.yaml``)::

    version: 1
    target: local
    on_missing: fail            # a budgeted measurement absent from the results: fail | skip
    thresholds:
      cold_start:               # a measurement id: <benchmark> or <benchmark>.<name>
        - p50 <= 20ms
        - errors == 0
      throughput.gateway:
        - rps > 100
        - error_rate < 1%
      throughput:               # ratios/differences against a baseline measured in the same run;
        - ratio(gateway.rps / direct.rps) >= 0.8     # refs resolve under the key first
        - diff(gateway.p50 - direct.p50) <= 0.5ms

Statistics: count, errors, min, p50, p90, p95, p99, max, mean, error_rate,
success_rate, rps (``p(95)`` and ``throughput`` are accepted too). Units: ``us``,
``ms``, ``s``, ``min`` for times (the value becomes seconds), ``%`` for rates and
ratios, or a plain number. A plain number against a time measurement is refused
("5" seconds or milliseconds?): the file must say.

Verdicts, so that a noisy machine does not make a flaky gate:

- PASS when the whole 95 % interval of the measured value meets the threshold,
- FAIL when the whole interval breaches it,
- NOISY when the interval straddles it (too noisy to decide): reported, not a failure,
- MISSING when there is nothing to measure (absent, or no successful sample):
  a failure unless ``on_missing: skip``.

For ``==`` the interval must be the single point to PASS (exact stats such as
``errors``) and must exclude the value to FAIL.
"""

from __future__ import annotations

import enum
import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from knative_lambda.bench import stats as st
from knative_lambda.bench.results import Measurement
from knative_lambda.errors import ConfigError
from knative_lambda.files import compose_yaml, read_text

BUDGET_VERSION = 1

OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": math.isclose,
}
TIME_STATS = frozenset({"min", "p50", "p90", "p95", "p99", "max", "mean"})
RATE_STATS = frozenset({"error_rate", "success_rate"})
STATS = TIME_STATS | RATE_STATS | {"count", "errors", "rps"}
ALIASES = {"throughput": "rps", "median": "p50", "avg": "mean"}
UNITS: dict[str, tuple[str, float]] = {  # unit -> (kind, factor to base)
    "us": ("time", 1e-6),
    "ms": ("time", 1e-3),
    "s": ("time", 1.0),
    "min": ("time", 60.0),
    "%": ("percent", 0.01),
    "": ("plain", 1.0),
}


class Verdict(enum.StrEnum):
    PASS = "pass"
    FAIL = "fail"
    NOISY = "noisy"
    MISSING = "missing"


@dataclass(frozen=True)
class Ref:
    id: str | None  # measurement id as written; None = the threshold's key
    stat: str


@dataclass(frozen=True)
class Threshold:
    key: str  # the measurement id it is listed under
    expr: str  # as written, for messages and tables
    func: str  # "stat" | "ratio" | "diff"
    refs: tuple[Ref, ...]
    op: str
    value: float  # in base units (seconds, fraction, plain)
    unit_kind: str  # "time" | "percent" | "plain"
    source: str  # "file:line"


@dataclass(frozen=True)
class Budgets:
    source: str
    target: str | None
    on_missing: str
    thresholds: tuple[Threshold, ...]


@dataclass(frozen=True)
class Check:
    threshold: Threshold
    verdict: Verdict
    measured: st.Estimate | None
    detail: str = ""

    @property
    def breach(self) -> bool:
        return self.verdict is Verdict.FAIL


# -- parsing ----------------------------------------------------------------

_NUM = r"[-+]?(?:\d+(?:_\d{3})*(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_REF = r"(?:[A-Za-z0-9_\-]+(?:\.[A-Za-z0-9_\-]+)*|p\(\d+(?:\.\d+)?\))"
_EXPR = re.compile(
    rf"""^\s*(?:
        (?P<func>ratio|diff)\(\s*(?P<a>{_REF})\s*(?P<fop>[/-])\s*(?P<b>{_REF})\s*\)
      | (?P<stat>{_REF})
    )\s*(?P<op><=|>=|==|<|>)\s*(?P<num>{_NUM})\s*(?P<unit>us|ms|min|s|%)?\s*$""",
    re.VERBOSE,
)


def _parse_ref(text: str, where: str) -> Ref:
    text = re.sub(r"p\((\d+)\)", r"p\1", text)  # k6 spelling p(95)
    ident, _, stat = text.rpartition(".")
    stat = ALIASES.get(stat, stat)
    if stat not in STATS:
        raise ConfigError(
            f"{where}: unknown statistic {stat!r} (use one of {', '.join(sorted(STATS))})"
        )
    return Ref(ident or None, stat)


def parse_threshold(expr: str, key: str, where: str) -> Threshold:
    """One threshold expression, e.g. ``p95 < 5s`` or ``ratio(a.rps / b.rps) >= 0.8``."""
    m = _EXPR.match(expr)
    if not m:
        raise ConfigError(
            f"{where}: cannot parse threshold {expr!r} under {key!r} "
            "(expected e.g. 'p95 < 5s', 'error_rate < 1%', 'ratio(a.rps / b.rps) >= 0.8')"
        )
    func = m["func"] or "stat"
    if func == "ratio" and m["fop"] != "/":
        raise ConfigError(f"{where}: ratio(...) takes 'a / b' in {expr!r}")
    if func == "diff" and m["fop"] != "-":
        raise ConfigError(f"{where}: diff(...) takes 'a - b' in {expr!r}")
    if func == "stat":
        ref = _parse_ref(m["stat"], where)
        if ref.id is not None:
            raise ConfigError(
                f"{where}: {expr!r}: write the statistic alone under its measurement "
                f"(put it under key {ref.id!r})"
            )
        refs: tuple[Ref, ...] = (ref,)
    else:
        refs = (_parse_ref(m["a"], where), _parse_ref(m["b"], where))
    unit = m["unit"] or ""
    unit_kind, factor = UNITS[unit]
    value = float(m["num"].replace("_", "")) * factor
    stat = refs[0].stat
    if func == "ratio" and unit_kind == "time":
        raise ConfigError(f"{where}: a ratio has no time unit in {expr!r}")
    if func in ("stat", "diff"):
        if unit_kind == "time" and stat not in TIME_STATS:
            raise ConfigError(f"{where}: {stat} is not a time; drop the unit {unit!r} in {expr!r}")
        if unit_kind == "percent" and stat not in RATE_STATS:
            raise ConfigError(f"{where}: % only applies to error_rate/success_rate in {expr!r}")
        if stat in RATE_STATS and unit_kind == "plain" and not 0 <= value <= 1:
            raise ConfigError(f"{where}: {stat} is a fraction 0..1; write {m['num']}% in {expr!r}")
    if func == "diff" and refs[1].stat != stat:
        raise ConfigError(f"{where}: diff of different statistics in {expr!r}")
    return Threshold(
        key=key, expr=" ".join(expr.split()), func=func, refs=refs, op=m["op"],
        value=value, unit_kind=unit_kind, source=where,
    )


def _where(source: str, node: yaml.Node) -> str:
    return f"{source}:{node.start_mark.line + 1}"


def parse_budgets(text: str, source: str = "<budgets>") -> Budgets:
    """Parse a budget file's text; every error names the file, line and key."""
    root = compose_yaml(text, source)
    if root is None or not isinstance(root, yaml.MappingNode):
        raise ConfigError(f"{source}: a budget file is a mapping with 'thresholds:'")
    top: dict[str, yaml.Node] = {}
    for knode, vnode in root.value:
        if knode.value in top:
            raise ConfigError(f"{_where(source, knode)}: duplicate key {knode.value!r}")
        top[knode.value] = vnode
    unknown = set(top) - {"version", "target", "on_missing", "thresholds", "description"}
    if unknown:
        key = sorted(unknown)[0]
        raise ConfigError(
            f"{_where(source, top[key])}: unknown key {key!r} "
            "(expected version, target, on_missing, thresholds, description)"
        )
    version = top.get("version")
    if version is not None and version.value not in (str(BUDGET_VERSION),):
        raise ConfigError(
            f"{_where(source, version)}: budget version {version.value!r} not supported "
            f"(this kl reads version {BUDGET_VERSION})"
        )
    on_missing = top["on_missing"].value if "on_missing" in top else "fail"
    if on_missing not in ("fail", "skip"):
        raise ConfigError(f"{_where(source, top['on_missing'])}: on_missing is 'fail' or 'skip'")
    target = top["target"].value if "target" in top else None
    tnode = top.get("thresholds")
    if tnode is None:
        raise ConfigError(f"{source}: missing 'thresholds:' (measurement id -> list of thresholds)")
    if not isinstance(tnode, yaml.MappingNode):
        raise ConfigError(f"{_where(source, tnode)}: 'thresholds' must map measurement ids to lists")
    thresholds: list[Threshold] = []
    seen: set[str] = set()
    for knode, vnode in tnode.value:
        key = str(knode.value)
        if not isinstance(knode, yaml.ScalarNode) or not key:
            raise ConfigError(f"{_where(source, knode)}: a measurement id must be a plain name")
        if key in seen:
            raise ConfigError(f"{_where(source, knode)}: measurement {key!r} listed twice")
        seen.add(key)
        items = [vnode] if isinstance(vnode, yaml.ScalarNode) else vnode.value
        if not isinstance(vnode, yaml.ScalarNode | yaml.SequenceNode):
            raise ConfigError(f"{_where(source, vnode)}: {key!r}: expected a list of thresholds")
        for item in items:
            if not isinstance(item, yaml.ScalarNode) or not item.value:
                raise ConfigError(
                    f"{_where(source, item)}: {key!r}: each threshold is a string like 'p95 < 5s'"
                )
            thresholds.append(parse_threshold(item.value, key, _where(source, item)))
    if not thresholds:
        raise ConfigError(f"{_where(source, tnode)}: no thresholds")
    return Budgets(source=source, target=target, on_missing=on_missing, thresholds=tuple(thresholds))


def load_budgets(path: Path) -> Budgets:
    return parse_budgets(read_text(path, "budget file"), str(path))


# -- verdicts ---------------------------------------------------------------


def verdict(measured: st.Estimate, op: str, value: float) -> Verdict:
    """PASS if the whole interval meets ``op value``, FAIL if the whole interval breaches it."""
    if op == "==":
        if math.isclose(measured.low, value) and math.isclose(measured.high, value):
            return Verdict.PASS
        if measured.high < value or measured.low > value:
            return Verdict.FAIL
        return Verdict.NOISY
    ok = OPS[op]
    low_ok, high_ok = ok(measured.low, value), ok(measured.high, value)
    if low_ok and high_ok:
        return Verdict.PASS
    if not low_ok and not high_ok:
        return Verdict.FAIL
    return Verdict.NOISY


def _resolve(ref: Ref, key: str, ids: Mapping[str, object]) -> str:
    if ref.id is None:
        return key
    relative = f"{key}.{ref.id}"
    if relative in ids or ref.id not in ids:
        return relative  # also the name to report when neither exists
    return ref.id


def _stat(m: Measurement, summary: st.Summary, stat: str) -> st.Estimate | None:
    if stat == "success_rate":
        er = summary.error_rate
        return None if er is None else st.Estimate(1 - er.value, 1 - er.high, 1 - er.low)
    return summary.get(stat)


def _check_unit(th: Threshold, m: Measurement) -> None:
    stat = th.refs[0].stat
    if th.func == "ratio" or stat not in TIME_STATS:
        return
    if m.unit == "s" and th.unit_kind != "time":
        raise ConfigError(
            f"{th.source}: {th.expr!r}: {m.id} is measured in seconds; give the unit "
            f"(e.g. {th.value:g}ms or {th.value:g}s)"
        )
    if m.unit != "s" and th.unit_kind == "time":
        raise ConfigError(
            f"{th.source}: {th.expr!r}: {m.id} is measured in {m.unit or 'plain numbers'}, not time"
        )


def _combine(th: Threshold, a: Measurement, b: Measurement,
             sa: st.Summary, sb: st.Summary) -> st.Estimate | None:
    qa, qb = th.refs[0].stat, th.refs[1].stat
    # Quantiles with raw samples on both sides: bootstrap the ratio/difference itself.
    if qa in st.QUANTILES and qb in st.QUANTILES and a.samples and b.samples:
        if th.func == "ratio":
            if qa == qb:
                return st.ratio_of_quantiles(a.samples, b.samples, st.QUANTILES[qa])
        elif qa == qb:
            return st.difference_of_quantiles(a.samples, b.samples, st.QUANTILES[qa])
    ea, eb = _stat(a, sa, qa), _stat(b, sb, qb)
    if ea is None or eb is None:
        return None
    if th.func == "ratio":
        return st.ratio_of_estimates(ea, eb)
    return st.difference_of_estimates(ea, eb)


def evaluate(
    budgets: Budgets,
    measurements: Mapping[str, Measurement],
    failed: Mapping[str, str] | None = None,
) -> list[Check]:
    """One Check per threshold. ``failed`` maps benchmark names (or measurement ids) of
    benchmarks that did not finish to their error: their thresholds FAIL (a broken benchmark must not pass the gate).
    Raises ConfigError for a unit that does not fit the measurement.
    """
    failed = failed or {}
    summaries: dict[str, st.Summary] = {}

    def summary(mid: str) -> st.Summary:
        if mid not in summaries:
            summaries[mid] = measurements[mid].summarize()
        return summaries[mid]

    checks: list[Check] = []
    for th in budgets.thresholds:
        ids = [_resolve(r, th.key, measurements) for r in th.refs]
        # A benchmark that failed before measuring anything is known by its name only.
        broken = [i for i in ids if i in failed or i.split(".")[0] in failed]
        absent = [i for i in ids if i not in measurements]
        if absent and broken:
            b = broken[0]
            checks.append(Check(th, Verdict.FAIL, None, f"{b}: {failed.get(b) or failed[b.split('.')[0]]}"))
            continue
        if absent:
            checks.append(Check(th, Verdict.MISSING, None, f"no measurement {absent[0]!r} in the results"))
            continue
        ms = [measurements[i] for i in ids]
        _check_unit(th, ms[0])
        if broken:
            b = broken[0]
            checks.append(Check(th, Verdict.FAIL, None, f"{b}: {failed.get(b) or failed[b.split('.')[0]]}"))
            continue
        if th.func == "stat":
            est = _stat(ms[0], summary(ids[0]), th.refs[0].stat)
        else:
            est = _combine(th, ms[0], ms[1], summary(ids[0]), summary(ids[1]))
        if est is None:
            checks.append(Check(th, Verdict.MISSING, None, "no successful samples to measure"))
            continue
        checks.append(Check(th, verdict(est, th.op, th.value), est))
    return checks


def gate_passes(checks: list[Check], on_missing: str = "fail") -> bool:
    """The gate's decision: no FAIL, and no MISSING unless missing measurements are skipped."""
    bad = {Verdict.FAIL} | ({Verdict.MISSING} if on_missing == "fail" else set())
    return not any(c.verdict in bad for c in checks)
