"""Trigger specs on disk, so a restarted broker process restores its triggers.

One JSON file per trigger under ``<data_dir>/broker/triggers/``, holding the
Knative Trigger object as it was PUT; written atomically (temp file + rename).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger("kl.broker.store")


class TriggerStore:
    def __init__(self, data_dir: Path) -> None:
        self.root = Path(data_dir) / "broker" / "triggers"

    def _path(self, namespace: str, name: str) -> Path:
        return self.root / f"{namespace}.{name}.json"

    def save(self, namespace: str, name: str, obj: dict[str, Any]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        path = self._path(namespace, name)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"namespace": namespace, "name": name, "object": obj}, indent=1))
        os.replace(tmp, path)

    def delete(self, namespace: str, name: str) -> None:
        self._path(namespace, name).unlink(missing_ok=True)

    def load(self) -> list[tuple[str, str, dict[str, Any]]]:
        """Every stored (namespace, name, object); unreadable files are skipped with a warning."""
        if not self.root.is_dir():
            return []
        out = []
        for path in sorted(self.root.glob("*.json")):
            try:
                doc = json.loads(path.read_text())
                out.append((doc["namespace"], doc["name"], doc["object"]))
            except (OSError, ValueError, KeyError, TypeError, RecursionError) as exc:
                log.warning("skipping unreadable trigger file %s: %s", path, exc)
        return out
