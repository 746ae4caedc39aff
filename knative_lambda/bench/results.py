"""The result record of one benchmark run: one JSON file, shaped like a journal.

    RunRecord
      metadata      target, versions, machine, git revision, started/ended, command
      status        running | ok | failed | interrupted
      benchmarks[]  BenchmarkRecord: name, kind, params, status, started, ended,
                    duration, error, and what it measured:
          measurements{id: Measurement}   raw samples (seconds) + errors + window + summary
          series{name: Series}            e.g. instances / throughput over time
          breakdown[]                     per-sample phases, e.g. cold start {schedule, start, ...}
          extra{}                         anything else worth keeping
      chaos[]       chaos experiment summaries (rendered as given by the report)

Measurement ids are ``<benchmark>`` or ``<benchmark>.<name>`` (``throughput.gateway``);
budgets address them by id. The file is rewritten atomically after every
benchmark, so Ctrl-C or a crash leaves the results measured so far.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import os
import platform
import subprocess
import sys
from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

from knative_lambda.bench.stats import Summary, summarize
from knative_lambda.errors import ConfigError
from knative_lambda.files import read_json

SCHEMA = "knative-lambda/bench-result"
SCHEMA_VERSION = 1
BENCH_STATUSES = ("ok", "failed", "interrupted")
RUN_STATUSES = ("running", "ok", "failed", "interrupted")
# Packages whose versions make a run reproducible (missing ones are simply left out).
TRACKED_PACKAGES = (
    "knative-lambda-harness", "numpy", "aiohttp", "aio-pika", "locust", "cloudevents",
    "boto3", "moto", "matplotlib",
)


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


@dataclass
class Measurement:
    """Samples of one quantity: successful durations in seconds (or ``unit``) plus errors."""

    id: str
    samples: list[float] = field(default_factory=list)
    errors: int = 0
    duration: float | None = None  # the measurement window in seconds, for rps
    unit: str = "s"
    error_messages: list[str] = field(default_factory=list)  # first few, for the report
    summary: Summary | None = None  # stored; recomputed from samples when they exist
    _cache: tuple[tuple[int, float, int, float | None], Summary] | None = field(
        default=None, repr=False, compare=False
    )

    def summarize(self) -> Summary:
        """The summary of the samples (memoized: a bootstrap is not free), else the stored one."""
        if not self.samples and self.summary is not None:
            return self.summary
        key = (len(self.samples), sum(self.samples), self.errors, self.duration)
        if self._cache is None or self._cache[0] != key:
            self._cache = (key, summarize(self.samples, self.errors, self.duration))
        return self._cache[1]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "unit": self.unit,
            "samples": self.samples,
            "errors": self.errors,
            "duration": self.duration,
            "error_messages": self.error_messages,
            "summary": self.summarize().to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Measurement:
        summary = data.get("summary")
        return cls(
            id=str(data["id"]),
            samples=[float(v) for v in data.get("samples") or []],
            errors=int(data.get("errors") or 0),
            duration=None if data.get("duration") is None else float(data["duration"]),
            unit=str(data.get("unit") or "s"),
            error_messages=[str(m) for m in data.get("error_messages") or []],
            summary=Summary.from_dict(summary) if summary else None,
        )


@dataclass
class Series:
    """A quantity over time: ``t`` seconds since the benchmark started, value ``v``."""

    name: str
    unit: str = ""
    t: list[float] = field(default_factory=list)
    v: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "unit": self.unit, "t": self.t, "v": self.v}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Series:
        return cls(
            name=str(data["name"]),
            unit=str(data.get("unit") or ""),
            t=[float(x) for x in data.get("t") or []],
            v=[float(x) for x in data.get("v") or []],
        )


@dataclass
class BenchmarkRecord:
    name: str
    kind: str
    params: dict[str, Any] = field(default_factory=dict)
    status: str = "ok"
    started: str | None = None
    ended: str | None = None
    duration: float | None = None
    error: str | None = None
    measurements: dict[str, Measurement] = field(default_factory=dict)
    series: dict[str, Series] = field(default_factory=dict)
    breakdown: list[dict[str, float]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "params": self.params,
            "status": self.status,
            "started": self.started,
            "ended": self.ended,
            "duration": self.duration,
            "error": self.error,
            "measurements": {k: m.to_dict() for k, m in self.measurements.items()},
            "series": {k: s.to_dict() for k, s in self.series.items()},
            "breakdown": self.breakdown,
            "extra": self.extra,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BenchmarkRecord:
        return cls(
            name=str(data["name"]),
            kind=str(data.get("kind") or ""),
            params=dict(data.get("params") or {}),
            status=str(data.get("status") or "ok"),
            started=data.get("started"),
            ended=data.get("ended"),
            duration=data.get("duration"),
            error=data.get("error"),
            measurements={
                k: Measurement.from_dict(m) for k, m in (data.get("measurements") or {}).items()
            },
            series={k: Series.from_dict(s) for k, s in (data.get("series") or {}).items()},
            breakdown=[dict(b) for b in data.get("breakdown") or []],
            extra=dict(data.get("extra") or {}),
        )


@dataclass
class RunRecord:
    metadata: dict[str, Any] = field(default_factory=dict)
    status: str = "running"
    benchmarks: list[BenchmarkRecord] = field(default_factory=list)
    chaos: list[dict[str, Any]] = field(default_factory=list)

    def measurements(self) -> dict[str, Measurement]:
        return {m.id: m for b in self.benchmarks for m in b.measurements.values()}

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "schema_version": SCHEMA_VERSION,
            "status": self.status,
            "metadata": self.metadata,
            "benchmarks": [b.to_dict() for b in self.benchmarks],
            "chaos": self.chaos,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "<data>") -> RunRecord:
        if not isinstance(data, dict) or data.get("schema") != SCHEMA:
            raise ConfigError(f"{source}: not a benchmark result file (no schema {SCHEMA!r})")
        version = data.get("schema_version")
        if not isinstance(version, int) or version > SCHEMA_VERSION:
            raise ConfigError(
                f"{source}: result schema version {version!r} is newer than this kl "
                f"understands ({SCHEMA_VERSION}); upgrade knative-lambda-harness"
            )
        try:
            return cls(
                metadata=dict(data.get("metadata") or {}),
                status=str(data.get("status") or "ok"),
                benchmarks=[BenchmarkRecord.from_dict(b) for b in data.get("benchmarks") or []],
                chaos=[dict(c) for c in data.get("chaos") or []],
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(f"{source}: malformed result file ({type(exc).__name__}: {exc})") from None


def _clean(obj: Any) -> Any:
    """Strict JSON: NaN/inf (e.g. in notes) become null; saving must never lose a run."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    return obj


def save(record: RunRecord, path: Path) -> None:
    """Write atomically (temp file + rename) so an interrupted save never leaves half a file.

    Values JSON cannot hold (objects in notes) are written as their ``str()``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    text = json.dumps(_clean(record.to_dict()), indent=1, allow_nan=False, default=str)
    tmp.write_text(text + "\n")
    os.replace(tmp, path)


def load(path: Path) -> RunRecord:
    return RunRecord.from_dict(read_json(path, "result file"), str(path))


# -- metadata ---------------------------------------------------------------


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _memory_bytes() -> int | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    with contextlib.suppress(ImportError):
        import psutil

        return int(psutil.virtual_memory().total)
    return None


def _git_revision(cwd: Path | None = None) -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    rev = out.stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        cwd=cwd, capture_output=True, text=True, timeout=5,
    )
    return rev + ("-dirty" if dirty.returncode == 0 and dirty.stdout.strip() else "")


def package_versions(names: tuple[str, ...] = TRACKED_PACKAGES) -> dict[str, str]:
    versions = {}
    for name in names:
        with contextlib.suppress(importlib_metadata.PackageNotFoundError):
            versions[name] = importlib_metadata.version(name)
    return versions


def collect_metadata(target: str, command: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    """What makes a run comparable: where, on what, from which revision, how invoked."""
    return {
        "target": target,
        "command": command if command is not None else list(sys.argv),
        "python": platform.python_version(),
        "packages": package_versions(),
        "machine": {
            "hostname": platform.node(),
            "system": f"{platform.system()} {platform.release()}",
            "arch": platform.machine(),
            "cpu_count": os.cpu_count(),
            "cpu_model": _cpu_model(),
            "memory_bytes": _memory_bytes(),
        },
        "git_revision": _git_revision(),
        "started": now_iso(),
        "ended": None,
        **extra,
    }
