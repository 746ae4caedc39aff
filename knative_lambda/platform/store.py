"""Small JSON documents on disk, so a restarted platform process restores its objects.

One file per object under ``root``, holding the object as it was applied;
written atomically (temp file + rename). Used for the broker's triggers and
the gateway's services: a process restart (chaos, a crash) loses neither.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger("kl.store")


class JsonStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

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
                log.warning("skipping unreadable file %s: %s", path, exc)
        return out
