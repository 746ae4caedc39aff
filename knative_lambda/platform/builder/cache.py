"""Content-addressed artifact store and single-flight builds.

An artifact lives at ``<data_dir>/artifacts/<key>/`` where the key hashes
(content hash, runtime, backend, base, runtime files): the same code built the
same way, with the same wrapper, is the same artifact. It is written under a
temporary name and renamed into place, so a crash never leaves a half artifact
that a later lookup would trust.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
MANIFEST = "manifest.json"


def cache_key(content_hash: str, runtime: str, backend: str, base: str, runtime_files: str) -> str:
    """16 hex of SHA-256 over the five parts (NUL-separated so parts cannot blur).

    ``runtime_files`` is ``context.runtime_digest``: what the builder adds to the function (the
    wrapper, templates) goes into the image, so an image of an older wrapper is not reused.
    """
    parts = (content_hash, runtime, backend, base, runtime_files)
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:16]


class ArtifactStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.index = root / "by-image"

    def path(self, key: str) -> Path:
        return self.root / key

    def lookup(self, key: str) -> dict[str, Any] | None:
        """The manifest of a complete artifact, or None."""
        try:
            return json.loads((self.path(key) / MANIFEST).read_text())
        except (OSError, ValueError):
            return None

    def staging(self, key: str) -> Path:
        path = self.root / f".tmp-{key}-{uuid.uuid4().hex[:8]}"
        path.mkdir(parents=True)
        return path

    def commit(self, staging: Path, key: str, manifest: dict[str, Any], tag: str) -> Path:
        """Write the manifest and move ``staging`` to its final place (replacing an old one)."""
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
        final = self.path(key)
        if final.exists():  # a forced rebuild: swap the old one out first
            old = self.root / f".old-{key}-{uuid.uuid4().hex[:8]}"
            os.replace(final, old)
            shutil.rmtree(old, ignore_errors=True)
        os.replace(staging, final)
        self.index.mkdir(parents=True, exist_ok=True)
        tmp = self.index / f".{tag}.{uuid.uuid4().hex[:6]}"
        tmp.write_text(key)
        os.replace(tmp, self.index / tag)
        return final

    def resolve(self, ref: str) -> tuple[str, dict[str, Any]] | None:
        """An artifact by key, image tag or full image URI (``...:tag``)."""
        if "/" in ref or ".." in ref:
            ref = ref.rsplit(":", 1)[-1]
        if "/" in ref or ref.startswith(".") or "\x00" in ref:  # a NUL is no file name
            return None
        manifest = self.lookup(ref)
        if manifest is not None:
            return ref, manifest
        try:
            key = (self.index / ref).read_text().strip()
        except (OSError, ValueError):
            return None
        manifest = self.lookup(key)
        return (key, manifest) if manifest is not None else None

    def discard(self, staging: Path) -> None:
        shutil.rmtree(staging, ignore_errors=True)


class SingleFlight:
    """Concurrent calls with the same key share one execution and its outcome."""

    def __init__(self) -> None:
        self._inflight: dict[str, asyncio.Future[Any]] = {}

    def busy(self, key: str) -> bool:
        return key in self._inflight

    async def run(self, key: str, work: Callable[[], Awaitable[T]]) -> tuple[T, bool]:
        """``(result, shared)``; shared is True for the callers that only waited."""
        existing = self._inflight.get(key)
        if existing is not None:
            return await asyncio.shield(existing), True
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            result = await work()
        except BaseException as exc:
            if not future.done():
                future.set_exception(exc)
                future.exception()  # mark retrieved: waiters get it, no "never retrieved" noise
            raise
        else:
            future.set_result(result)
            return result, False
        finally:
            self._inflight.pop(key, None)
