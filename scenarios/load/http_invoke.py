"""HTTP invocation of one function (through the gateway, or directly for the baseline).

    python -m locust -f scenarios/load/http_invoke.py --headless --host http://127.0.0.1:8080 \
        -u 10 -r 10 -t 30s --csv out/stats
    KL_LOAD_PROFILE=spike KL_LOAD_SCALE=0.1 python -m locust -f ... --headless --host ...

Environment: KL_FUNCTION_PATH (default "/"), KL_PAYLOAD (JSON body, default
{"x": 1}), KL_TOKEN (bearer token, optional), KL_HOST_HEADER (route by Host).
A response counts as a failure unless it is 2xx and, for the function's sync
result shape, ``succeeded`` is not false.
"""

from __future__ import annotations

import os
import sys

from locust import FastHttpUser, task

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402


class InvokeUser(FastHttpUser):
    wait_time = common.pacing()
    path = common.env("KL_FUNCTION_PATH", "/")
    body = common.env("KL_PAYLOAD", '{"x": 1}')

    def on_start(self):
        self.headers = {"content-type": "application/json"}
        if common.env("KL_TOKEN"):
            self.headers["authorization"] = f"Bearer {common.env('KL_TOKEN')}"
        if common.env("KL_HOST_HEADER"):
            self.headers["host"] = common.env("KL_HOST_HEADER")

    @task
    def invoke(self):
        with self.client.post(self.path, data=self.body, headers=self.headers,
                              name="invoke", catch_response=True) as resp:
            if resp.status_code // 100 != 2:
                resp.failure(f"HTTP {resp.status_code}")
            elif resp.headers.get("content-type", "").startswith("application/json"):
                try:
                    data = resp.json()
                except ValueError:
                    resp.failure("invalid JSON in the reply")
                    return
                if isinstance(data, dict) and data.get("succeeded") is False:
                    resp.failure(f"function error: {data.get('errorMessage', '')[:200]}")


if common.env("KL_LOAD_PROFILE"):

    class Shape(common.ProfileShape):
        """The QA profile named by KL_LOAD_PROFILE."""
