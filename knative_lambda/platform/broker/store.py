"""Trigger specs on disk (``<data_dir>/broker/triggers/``), so a restarted broker
process restores its triggers: one Knative Trigger object per file, as it was PUT."""

from __future__ import annotations

from pathlib import Path

from knative_lambda.platform.store import JsonStore


class TriggerStore(JsonStore):
    def __init__(self, data_dir: Path) -> None:
        super().__init__(Path(data_dir) / "broker" / "triggers")
