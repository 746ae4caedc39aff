"""CloudEvents through the broker ingress (binary mode), e.g. the parser-events profiles.

    KL_LOAD_PROFILE=parser_events KL_LOAD_SCALE=0.1 python -m locust \
        -f scenarios/load/broker_events.py --headless --host http://127.0.0.1:<broker port>

Environment: KL_BROKER_PATH (default /default/default), KL_EVENT_PREFIX,
KL_EVENT_KIND (default parser.start), KL_TP / KL_PARSER (source
network.notifi.<tp>, subject <parser>), KL_PAYLOAD, KL_TOKEN. Each event gets a
fresh id and correlationid, so nothing is deduplicated away. 202 is success.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import uuid

from locust import FastHttpUser, task

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402


class EventUser(FastHttpUser):
    wait_time = common.pacing()
    path = common.env("KL_BROKER_PATH", "/default/default")
    event_type = (f"{common.env('KL_EVENT_PREFIX', 'network.notifi.lambda')}."
                  f"{common.env('KL_EVENT_KIND', 'parser.start')}")
    tp = common.env("KL_TP", "loadtest")
    parser = common.env("KL_PARSER", "hello")
    body = common.env("KL_PAYLOAD", '{"x": 1}')

    @task
    def publish(self):
        headers = {
            "content-type": "application/json",
            "ce-specversion": "1.0",
            "ce-id": str(uuid.uuid4()),
            "ce-type": self.event_type,
            "ce-source": f"network.notifi.{self.tp}",
            "ce-subject": self.parser,
            "ce-time": dt.datetime.now(dt.UTC).isoformat(),
            "ce-correlationid": str(uuid.uuid4()),
            "ce-thirdpartyid": self.tp,
            "ce-parserid": self.parser,
        }
        if common.env("KL_TOKEN"):
            headers["authorization"] = f"Bearer {common.env('KL_TOKEN')}"
        with self.client.post(self.path, data=self.body, headers=headers, name="publish",
                              catch_response=True) as resp:
            if resp.status_code not in (200, 202):
                resp.failure(f"HTTP {resp.status_code}")


if common.env("KL_LOAD_PROFILE"):

    class Shape(common.ProfileShape):
        """The QA profile named by KL_LOAD_PROFILE."""
