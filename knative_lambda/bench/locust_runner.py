"""Run Locust headless as a subprocess and turn its output into samples and series.

Locust is never imported here (gevent monkey-patches the process it runs in).
The locustfiles in ``scenarios/load/`` append every request to the raw-samples
file named by ``KL_LOCUST_SAMPLES`` (``<unix end time>,<seconds>,<ok>,<name>,<error>``),
so intervals are bootstrapped from raw latencies; locust's own CSVs give the
users-over-time series and its aggregate numbers. Parsing is pure.
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from knative_lambda.bench.results import Series
from knative_lambda.errors import ConfigError, PlatformError

LOAD_DIR = Path(__file__).resolve().parents[2] / "scenarios" / "load"
LOCUSTFILES = {
    "http": LOAD_DIR / "http_invoke.py",
    "events": LOAD_DIR / "broker_events.py",
    "builds": LOAD_DIR / "build_storm.py",
}
GRACE_S = 30.0  # beyond the run time before the subprocess is stopped


@dataclass
class RawSamples:
    samples: list[float] = field(default_factory=list)  # successful latencies, seconds
    errors: int = 0
    error_counts: dict[str, int] = field(default_factory=dict)  # message -> occurrences
    start: float | None = None  # unix time the first request started
    end: float | None = None  # unix time the last request ended

    @property
    def window(self) -> float | None:
        if self.start is None or self.end is None or self.end <= self.start:
            return None
        return self.end - self.start


@dataclass
class LocustRun:
    command: list[str]
    returncode: int
    raw: RawSamples
    stats: dict[str, float]  # locust's Aggregated CSV row: written every second, may lag the end
    series: dict[str, Series]  # users, rps, failures_per_s (seconds since start)
    failures: list[dict[str, str]]
    stderr_tail: str = ""


def build_command(
    locustfile: Path | str,
    host: str,
    csv_prefix: Path | str,
    *,
    users: int | None = None,
    spawn_rate: float | None = None,
    run_time_s: float,
    python: str = sys.executable,
    extra: Sequence[str] = (),
) -> list[str]:
    """The locust command line (pure). Without ``users`` a LoadTestShape in the file drives."""
    if run_time_s <= 0:
        raise ConfigError("locust run time must be > 0 s")
    cmd = [python, "-m", "locust", "-f", str(locustfile), "--headless", "--host", host,
           "--csv", str(csv_prefix), "-t", f"{max(1, math.ceil(run_time_s))}s",
           "--only-summary", "--loglevel", "WARNING", "--stop-timeout", "2"]
    if users is not None:
        if users < 1:
            raise ConfigError("locust needs at least 1 user")
        cmd += ["-u", str(users), "-r", f"{spawn_rate if spawn_rate else users:g}"]
    return [*cmd, *extra]


def _float(value: str) -> float | None:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None  # "N/A"
    return f if math.isfinite(f) else None


def parse_stats_csv(text: str) -> dict[str, float]:
    """The Aggregated row of locust's ``_stats.csv``, numeric columns only; {} if absent."""
    for row in csv.DictReader(io.StringIO(text)):
        if row.get("Name") == "Aggregated":
            return {k: f for k, v in row.items() if k and (f := _float(v)) is not None}
    return {}


def parse_history_csv(text: str) -> dict[str, Series]:
    """Users and locust's rolling rates over time from ``_stats_history.csv`` (Aggregated rows)."""
    rows = [r for r in csv.DictReader(io.StringIO(text)) if r.get("Name") == "Aggregated"]
    out = {"users": Series("users", "users"), "locust_rps": Series("locust_rps", "1/s"),
           "locust_failures_per_s": Series("locust_failures_per_s", "1/s")}
    if not rows:
        return {}
    t0 = _float(rows[0]["Timestamp"]) or 0.0
    for r in rows:
        t = (_float(r["Timestamp"]) or t0) - t0
        for name, col in (("users", "User Count"), ("locust_rps", "Requests/s"),
                          ("locust_failures_per_s", "Failures/s")):
            v = _float(r.get(col, ""))
            if v is not None:
                out[name].t.append(t)
                out[name].v.append(v)
    return out


def parse_failures_csv(text: str) -> list[dict[str, str]]:
    return [dict(r) for r in csv.DictReader(io.StringIO(text))]


def parse_samples(text: str) -> RawSamples:
    """Raw samples written by the locustfiles; malformed lines (a cut-off last line) skipped."""
    raw = RawSamples()
    for line in text.splitlines():
        parts = line.split(",", 4)
        if len(parts) < 3:
            continue
        end, latency = _float(parts[0]), _float(parts[1])
        if end is None or latency is None or parts[2] not in ("0", "1"):
            continue
        if parts[2] == "1":
            raw.samples.append(latency)
        else:
            raw.errors += 1
            message = parts[4] if len(parts) > 4 and parts[4] else "error"
            raw.error_counts[message] = raw.error_counts.get(message, 0) + 1
        start = end - latency
        raw.start = start if raw.start is None else min(raw.start, start)
        raw.end = end if raw.end is None else max(raw.end, end)
    return raw


def rate_series(text: str, name: str = "rps", bin_s: float = 1.0) -> Series:
    """Successful completions per second over time, from the raw samples' end times."""
    ends = []
    for line in text.splitlines():
        parts = line.split(",", 3)
        if len(parts) >= 3 and parts[2] == "1" and (t := _float(parts[0])) is not None:
            ends.append(t)
    series = Series(name, "1/s")
    if not ends:
        return series
    t0 = min(ends)
    counts: dict[int, int] = {}
    for t in ends:
        counts[int((t - t0) // bin_s)] = counts.get(int((t - t0) // bin_s), 0) + 1
    last = max(counts)
    for i in range(last + 1):
        # the last bin is partial: leave it out unless it is the only one
        if i == last and last > 0:
            break
        series.t.append(i * bin_s)
        series.v.append(counts.get(i, 0) / bin_s)
    return series


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def run_locust(
    locustfile: Path | str,
    host: str,
    workdir: Path,
    *,
    run_time_s: float,
    users: int | None = None,
    spawn_rate: float | None = None,
    env: Mapping[str, str] | None = None,
    timeout_s: float | None = None,
    python: str = sys.executable,
) -> LocustRun:
    """Run locust to completion (bounded: run time + grace) and parse what it wrote.

    ``env`` adds variables for the locustfile (KL_FUNCTION_PATH, KL_LOAD_PROFILE, ...).
    Raises PlatformError when locust could not run at all.
    """
    locustfile = Path(locustfile)
    if not locustfile.is_file():
        raise ConfigError(f"no locustfile {locustfile}")
    workdir.mkdir(parents=True, exist_ok=True)
    prefix = workdir / "locust"
    samples_path = workdir / "samples.csv"
    for p in (samples_path, *(Path(f"{prefix}_{s}.csv") for s in ("stats", "stats_history", "failures"))):
        p.unlink(missing_ok=True)
    cmd = build_command(locustfile, host, prefix, users=users, spawn_rate=spawn_rate,
                        run_time_s=run_time_s, python=python)
    child_env = {**os.environ, **(env or {}), "KL_LOCUST_SAMPLES": str(samples_path),
                 "PYTHONUNBUFFERED": "1"}
    limit = timeout_s if timeout_s is not None else run_time_s + GRACE_S
    proc = subprocess.Popen(cmd, cwd=workdir, env=child_env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        _, stderr = proc.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        # SIGINT first: locust then stops users and still writes its CSVs
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGINT)
        try:
            _, stderr = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            _, stderr = proc.communicate()
    except BaseException:  # Ctrl-C in the harness: never leave locust behind
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    tail = "\n".join((stderr or "").strip().splitlines()[-5:])
    stats_text = _read(Path(f"{prefix}_stats.csv"))
    samples_text = _read(samples_path)
    # exit code 1 means "some requests failed": still a measurement
    if proc.returncode not in (0, 1) or (not stats_text and not samples_text):
        raise PlatformError(
            f"locust exited {proc.returncode} without results: {tail.splitlines()[-1] if tail else 'no output'}"
        )
    series = parse_history_csv(_read(Path(f"{prefix}_stats_history.csv")))
    series["rps"] = rate_series(samples_text)
    return LocustRun(
        command=cmd,
        returncode=proc.returncode,
        raw=parse_samples(samples_text),
        stats=parse_stats_csv(stats_text),
        series=series,
        failures=parse_failures_csv(_read(Path(f"{prefix}_failures.csv"))),
        stderr_tail=tail,
    )


def split_url(url: str) -> tuple[str, str]:
    """``http://127.0.0.1:8080/default/fn/x?a=1`` -> (``http://127.0.0.1:8080``, ``/default/fn/x?a=1``)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"not an http(s) URL: {url!r}")
    path = parts.path or "/"
    return f"{parts.scheme}://{parts.netloc}", path + (f"?{parts.query}" if parts.query else "")


def run_http_load(
    url: str,
    workdir: Path,
    *,
    run_time_s: float,
    users: int | None = None,
    profile: str | None = None,
    env: Mapping[str, str] | None = None,
    payload: str | None = None,
) -> LocustRun:
    """Load one function URL with ``http_invoke.py``: ``users`` in a closed loop, or a QA
    ``profile`` (scaled by ``KL_LOAD_SCALE``/``KL_LOAD_TIME_SCALE`` in ``env``)."""
    if (users is None) == (profile is None):
        raise ConfigError("give either users (closed loop) or a load profile")
    host, path = split_url(url)
    child = {"KL_FUNCTION_PATH": path, **(env or {})}
    if payload is not None:
        child["KL_PAYLOAD"] = payload
    if profile is not None:
        child["KL_LOAD_PROFILE"] = profile
    return run_locust(LOCUSTFILES["http"], host, workdir, run_time_s=run_time_s, users=users,
                      env=child)


def record_into(rec: Any, run: LocustRun, name: str | None = None) -> None:
    """Write a locust run into a runner Recorder: samples, errors, window, series, failures."""
    m = rec.measurement(name)
    m.samples.extend(run.raw.samples)
    m.errors += run.raw.errors
    if run.raw.window is not None:
        m.duration = (m.duration or 0.0) + run.raw.window
    top = sorted(run.raw.error_counts.items(), key=lambda kv: -kv[1])[:5]
    m.error_messages.extend(f"{msg} x{n}" for msg, n in top)
    suffix = f".{name}" if name else ""
    for key, s in run.series.items():
        rec.series(f"{key}{suffix}", s.t, s.v, s.unit)
    rec.note(f"locust{suffix}", {"command": run.command[1:], "returncode": run.returncode,
                                 "stats": run.stats})
