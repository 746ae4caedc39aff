"""Run a suite: one implementation per benchmark kind, a Recorder, progress, partial saves.

Implementations live one module per kind (``knative_lambda/bench/<kind>.py``) and
register themselves::

    from knative_lambda.bench.runner import Recorder, register

    @register("cold_start")
    def run(target, params, rec: Recorder) -> None:
        for _ in range(params.get("iterations", 10)):
            with rec.timed():          # a sample on success, an error on exception
                ...

The runner imports the module of every kind the suite uses (so ``kl --help``
stays light) and refuses to start if any is missing. Each benchmark is a journal
entry (ok / failed / interrupted); the result file is rewritten after each one,
and Ctrl-C marks the current one interrupted, saves, and returns.
"""

from __future__ import annotations

import contextlib
import importlib
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from knative_lambda.bench.progress import Progress
from knative_lambda.bench.results import (
    BenchmarkRecord,
    Measurement,
    RunRecord,
    Series,
    now_iso,
    save,
)
from knative_lambda.bench.suite import KINDS, Suite
from knative_lambda.errors import ConfigError, KLError

# The target is the harness's Target protocol (knative_lambda.harness.targets);
# typed loosely here so the runner does not depend on a backend.
SuiteKind = Callable[[Any, Mapping[str, Any], "Recorder"], None]
SUITE_KINDS: dict[str, SuiteKind] = {}
KIND_MODULES: dict[str, str] = {k: f"knative_lambda.bench.{k}" for k in KINDS}
MAX_ERROR_MESSAGES = 5  # per measurement: enough to diagnose, bounded for huge runs


def register(kind: str) -> Callable[[SuiteKind], SuiteKind]:
    """Decorator: make ``fn`` the implementation of benchmark ``kind``."""
    if kind not in KINDS:
        raise ValueError(f"unknown benchmark kind {kind!r}")

    def deco(fn: SuiteKind) -> SuiteKind:
        SUITE_KINDS[kind] = fn
        return fn

    return deco


def resolve_kinds(
    suite: Suite,
    registry: dict[str, SuiteKind] | None = None,
    modules: Mapping[str, str] | None = None,
) -> dict[str, SuiteKind]:
    """The implementation of each kind the suite uses; ConfigError naming every missing one."""
    registry = SUITE_KINDS if registry is None else registry
    modules = KIND_MODULES if modules is None else modules
    needed = list(dict.fromkeys(b.kind for b in suite.benchmarks))
    for kind in needed:
        if kind not in registry and kind in modules:
            try:
                importlib.import_module(modules[kind])
            except ModuleNotFoundError as exc:
                if not (exc.name and modules[kind].startswith(exc.name)):
                    raise
    missing = [k for k in needed if k not in registry]
    if missing:
        raise ConfigError(
            f"suite {suite.name!r}: no implementation registered for kind(s) "
            f"{', '.join(missing)} (expected @register(kind) in "
            f"{', '.join(modules.get(k, '?') for k in missing)})"
        )
    return {k: registry[k] for k in needed}


class Recorder:
    """What a benchmark implementation writes into: samples, errors, series, phases, notes.

    Measurement ids: ``rec.sample(x)`` -> ``<benchmark>``; ``rec.sample(x, "gateway")``
    -> ``<benchmark>.gateway``. Samples are seconds unless the measurement says otherwise.
    """

    def __init__(
        self,
        record: BenchmarkRecord,
        progress: Progress | None = None,
        clock: Callable[[], float] = time.monotonic,
        timeout_s: float | None = None,
    ) -> None:
        self.record = record
        self._progress = progress
        self._clock = clock
        self.started = clock()
        self.deadline = None if timeout_s is None else self.started + timeout_s

    @property
    def name(self) -> str:
        return self.record.name

    def elapsed(self) -> float:
        return self._clock() - self.started

    def time_left(self) -> float | None:
        """Seconds left of the benchmark's ``timeout_s``; None when it has none."""
        return None if self.deadline is None else max(0.0, self.deadline - self._clock())

    def measurement(self, name: str | None = None, unit: str = "s") -> Measurement:
        mid = self.name if not name else f"{self.name}.{name}"
        m = self.record.measurements.get(mid)
        if m is None:
            m = self.record.measurements[mid] = Measurement(id=mid, unit=unit)
        return m

    def sample(self, value: float, name: str | None = None) -> None:
        # a NaN/inf would poison the summary and the JSON file: count it as an error instead
        value = float(value)
        if math.isfinite(value):
            self.measurement(name).samples.append(value)
        else:
            self.error(f"non-finite sample {value}", name)

    def samples(self, values: Sequence[float], name: str | None = None) -> None:
        for v in values:
            self.sample(v, name)

    def error(self, message: str = "", name: str | None = None, count: int = 1) -> None:
        m = self.measurement(name)
        m.errors += count
        if message and len(m.error_messages) < MAX_ERROR_MESSAGES:
            m.error_messages.append(message)

    def window(self, seconds: float, name: str | None = None) -> None:
        """The measurement window, so the summary can give a throughput (rps)."""
        seconds = float(seconds)
        self.measurement(name).duration = seconds if math.isfinite(seconds) and seconds > 0 else None

    @contextlib.contextmanager
    def timed(self, name: str | None = None) -> Iterator[None]:
        """Time the block: a sample when it succeeds, an error (not a crash) when it raises."""
        t0 = self._clock()
        try:
            yield
        except Exception as exc:  # a failed attempt is data, not a failed benchmark
            self.error(f"{type(exc).__name__}: {exc}", name)
        else:
            self.sample(self._clock() - t0, name)

    def point(self, series: str, value: float, t: float | None = None, unit: str = "") -> None:
        """One point of a series; ``t`` defaults to seconds since the benchmark started."""
        s = self.record.series.get(series)
        if s is None:
            s = self.record.series[series] = Series(name=series, unit=unit)
        t = self.elapsed() if t is None else float(t)
        if math.isfinite(t) and math.isfinite(float(value)):
            s.t.append(t)
            s.v.append(float(value))

    def series(self, name: str, t: Sequence[float], v: Sequence[float], unit: str = "") -> None:
        pairs = [(float(a), float(b)) for a, b in zip(t, v, strict=True)
                 if math.isfinite(float(a)) and math.isfinite(float(b))]
        self.record.series[name] = Series(name, unit, [a for a, _ in pairs], [b for _, b in pairs])

    def phases(self, **phases: float) -> None:
        """One sample's breakdown, e.g. cold start ``schedule=.., start=.., ready=..``."""
        self.record.breakdown.append(
            {k: float(v) for k, v in phases.items() if math.isfinite(float(v))}
        )

    def note(self, key: str, value: Any) -> None:
        self.record.extra[key] = value

    def progress(self, done: int, total: int | None = None, note: str = "") -> None:
        if self._progress is None:
            return
        text = f"{done}/{total}" if total else str(done)
        self._progress.update(f"{note} {text}".strip(), done / total if total else None)


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, KLError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}".splitlines()[0]


def run_suite(
    suite: Suite,
    target: Any,
    out: Path,
    metadata: dict[str, Any],
    *,
    registry: dict[str, SuiteKind] | None = None,
    progress: Progress | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> RunRecord:
    """Run every benchmark of ``suite`` against ``target``; the record is saved to ``out``
    after each benchmark. Returns the record (status ok / failed / interrupted)."""
    impls = resolve_kinds(suite, registry)  # validate everything before running anything
    names = [b.name for b in suite.benchmarks]
    progress = progress or Progress(names, [b.expect_s for b in suite.benchmarks], clock=clock)
    record = RunRecord(metadata={**metadata, "suite": suite.name, "suite_file": suite.source})
    save(record, out)
    interrupted = False
    for i, spec in enumerate(suite.benchmarks):
        bench = BenchmarkRecord(name=spec.name, kind=spec.kind, params=dict(spec.params),
                                status="interrupted", started=now_iso())
        record.benchmarks.append(bench)
        progress.begin(i)
        t0 = clock()
        rec = Recorder(bench, progress, clock, spec.timeout_s)
        try:
            impls[spec.kind](target, spec.params, rec)
            bench.status = "ok"
        except KeyboardInterrupt:
            bench.status, bench.error, interrupted = "interrupted", "interrupted (Ctrl-C)", True
        except Exception as exc:  # one broken benchmark must not lose the others
            bench.status, bench.error = "failed", _error_text(exc)
        finally:
            bench.ended = now_iso()
            bench.duration = clock() - t0
            progress.end(bench.status, bench.error)
            save(record, out)
        if interrupted:
            record.metadata["not_run"] = names[i + 1 :]
            break
    if interrupted:
        record.status = "interrupted"
    else:
        record.status = "ok" if all(b.status == "ok" for b in record.benchmarks) else "failed"
    record.metadata["ended"] = now_iso()
    save(record, out)
    progress.finish(record.status)
    return record
