"""Shared parts of the locustfiles (imported only inside a locust process).

- ``ProfileShape``: a ``LoadTestShape`` over :mod:`profiles` (the pure tick logic),
  only made visible to locust by a locustfile when ``KL_LOAD_PROFILE`` is set;
  otherwise ``-u/-r/-t`` on the command line drive the run.
- Raw samples: when ``KL_LOCUST_SAMPLES`` names a file, every request appends
  ``<unix end time>,<seconds>,<ok 1|0>,<name>,<error>`` to it, so the harness can bootstrap intervals from
  raw latencies instead of locust's pre-binned percentiles.
"""

from __future__ import annotations

import atexit
import os
import sys
import time

from locust import LoadTestShape, between, constant_throughput, events

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import profiles  # noqa: E402  (a sibling module, pure)

_samples_path = os.environ.get("KL_LOCUST_SAMPLES")
_samples_file = open(_samples_path, "a", buffering=1 << 16) if _samples_path else None  # noqa: SIM115
if _samples_file is not None:
    atexit.register(_samples_file.close)


@events.request.add_listener
def _record_sample(request_type, name, response_time, response_length, exception=None, **kw):
    if _samples_file is not None:
        error = " ".join(str(exception).split())[:200] if exception else ""
        _samples_file.write(
            f"{time.time():.4f},{response_time / 1000.0:.6f},{0 if exception else 1},{name},{error}\n"
        )


@events.quitting.add_listener
def _flush_samples(environment, **kw):
    if _samples_file is not None:
        _samples_file.flush()


def pacing():
    """Per-user pacing: a constant rate so users x rate = the profile's rate."""
    if os.environ.get("KL_LOAD_PROFILE") or os.environ.get("KL_LOAD_USER_RPS"):
        _, per_user = profiles.from_env(os.environ)
        return constant_throughput(per_user)
    return between(0, 0)  # closed loop: as fast as the target answers


def env(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


class ProfileShape(LoadTestShape):
    """Drives the users from a QA profile (KL_LOAD_PROFILE, KL_LOAD_SCALE, ...)."""

    abstract = True  # a locustfile subclasses it only when a profile is requested

    def __init__(self):
        super().__init__()
        try:
            self.profile, self.per_user = profiles.from_env(os.environ)
        except profiles.ProfileError as exc:
            sys.exit(f"error: {exc}")

    def tick(self):
        return profiles.tick(self.profile, self.get_run_time(), self.per_user)
