"""Giving up root in an instance before the function's code runs.

The interpreter, the platform and the artifact may live below directories the
instance's user cannot enter (``/root/.pyenv``, a 0700 temporary directory).
So, while still root, each directory the function needs is opened and then
reached through its descriptor, ``/proc/self/fd/N/...``: the kernel checks no
permission above that directory, and the function still cannot climb out
(``..`` is checked as usual) nor open what is not world-readable below it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from dataclasses import replace

from knative_lambda.platform.runtime.loader import Artifact


class Anchors:
    """Directories held open, and paths rewritten to go through them."""

    def __init__(self) -> None:
        self.dirs: dict[str, str] = {}  # real path -> /proc/self/fd/N
        self.fds: list[int] = []

    def add(self, path: str | os.PathLike[str]) -> None:
        real = os.path.realpath(path)
        if real not in self.dirs and os.path.isdir(real):
            fd = os.open(real, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            self.fds.append(fd)
            self.dirs[real] = f"/proc/self/fd/{fd}"

    def path(self, path: str | os.PathLike[str]) -> str:
        """``path`` through the deepest anchor that holds it (unchanged if none does)."""
        real = os.path.realpath(path)
        for root in sorted(self.dirs, key=len, reverse=True):
            if real == root or real.startswith(root.rstrip("/") + "/"):
                return self.dirs[root] + real[len(root):]
        return os.fspath(path)

    def artifact(self, artifact: Artifact) -> Artifact:
        """``artifact`` with every path going through the anchors."""
        return replace(
            artifact,
            dir=type(artifact.dir)(self.path(artifact.dir)),
            code_dir=type(artifact.code_dir)(self.path(artifact.code_dir)),
            pythonpath=tuple(self.path(p) for p in artifact.pythonpath),
            node_path=tuple(self.path(p) for p in artifact.node_path),
        )


def anchor(dirs: Iterable[str | os.PathLike[str]]) -> Anchors:
    anchors = Anchors()
    for d in dirs:
        anchors.add(d)
    return anchors


def reroute_imports(anchors: Anchors) -> None:
    """Point ``sys.path`` and loaded packages' ``__path__`` at the anchors (call as root)."""
    for entry in sys.path:
        if entry and os.path.isdir(entry):
            anchors.add(entry)
    sys.path[:] = [anchors.path(p) if p else p for p in sys.path]
    for module in list(sys.modules.values()):
        search = getattr(module, "__path__", None)
        if isinstance(search, list):  # namespace packages recompute theirs from sys.path
            search[:] = [anchors.path(p) for p in search]
    sys.path_importer_cache.clear()


def drop_to(uid: int, gid: int) -> None:
    """Become ``uid:gid`` with no supplementary groups, for every thread; check it stuck."""
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
    try:
        os.setuid(0)
    except PermissionError:
        return
    raise PermissionError(f"instance could regain root after dropping to uid {uid}")
