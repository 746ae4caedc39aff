"""Build storms: many build.start / rebuild.start events through the broker ingress.

The parsers' code must already be in the source bucket (the harness uploads it
before starting locust, e.g. ``kl build`` or the build benchmark); this file only
publishes. Each user cycles over KL_BUILD_PARSERS (comma-separated parser ids,
default "storm0..storm9") for third party KL_TP; KL_EVENT_KIND=rebuild.start
forces real builds instead of cache hits. Builder guards (5 concurrent builds,
no retry of a failure for 5 min) are what this storm exercises.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import sys
import uuid

from locust import FastHttpUser, task

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402


def _parsers() -> list[str]:
    raw = common.env("KL_BUILD_PARSERS")
    return [p.strip() for p in raw.split(",") if p.strip()] or [f"storm{i}" for i in range(10)]


class BuildStormUser(FastHttpUser):
    wait_time = common.pacing()
    path = common.env("KL_BROKER_PATH", "/default/default")
    kind = common.env("KL_EVENT_KIND", "build.start")
    prefix = common.env("KL_EVENT_PREFIX", "network.notifi.lambda")
    tp = common.env("KL_TP", "loadtest")

    def on_start(self):
        self._next = itertools.cycle(_parsers()).__next__

    @task
    def build(self):
        parser = self._next()
        headers = {
            "content-type": "application/json",
            "ce-specversion": "1.0",
            "ce-id": str(uuid.uuid4()),
            "ce-type": f"{self.prefix}.{self.kind}",
            "ce-source": f"network.notifi.{self.tp}",
            "ce-subject": parser,
            "ce-time": dt.datetime.now(dt.UTC).isoformat(),
            "ce-correlationid": str(uuid.uuid4()),
        }
        if common.env("KL_TOKEN"):
            headers["authorization"] = f"Bearer {common.env('KL_TOKEN')}"
        body = json.dumps({"third_party_id": self.tp, "parser_id": parser})
        with self.client.post(self.path, data=body, headers=headers, name=self.kind,
                              catch_response=True) as resp:
            if resp.status_code not in (200, 202):
                resp.failure(f"HTTP {resp.status_code}")


if common.env("KL_LOAD_PROFILE"):

    class Shape(common.ProfileShape):
        """The QA profile named by KL_LOAD_PROFILE."""
