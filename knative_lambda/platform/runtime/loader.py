"""Finding and loading a function from an artifact directory.

The artifact layout is the builder's (``builder/service.py``): ``manifest.json``
with ``runtime``, ``entry`` (relative to ``code``), ``code`` (default ``code``),
``export`` (node: ``handle`` or ``parse``), ``pythonpath`` / ``node_path``
(relative to the artifact). A directory without a manifest is accepted too: the
code is the directory itself and the entry is ``handler.py`` or ``index.js``.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from knative_lambda.errors import ConfigError


class FunctionLoadError(ConfigError):
    """The artifact has no loadable function (bad manifest, import error, no handle)."""


@dataclass(frozen=True)
class Artifact:
    dir: Path
    runtime: str  # "python" | "node"
    code_dir: Path
    entry: str
    export: str = "handle"
    pythonpath: tuple[str, ...] = ()
    node_path: tuple[str, ...] = ()
    node: str = "node"
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def entry_path(self) -> Path:
        return self.code_dir / self.entry


def read_artifact(path: str | Path) -> Artifact:
    """The artifact at ``path``; FunctionLoadError saying what is missing."""
    root = Path(path).resolve()
    if not root.is_dir():
        raise FunctionLoadError(f"artifact {path} is not a directory")
    mpath = root / "manifest.json"
    if mpath.is_file():
        try:
            m = json.loads(mpath.read_text())
        except (OSError, ValueError) as exc:
            raise FunctionLoadError(f"{mpath}: not readable JSON: {exc}") from None
        if not isinstance(m, dict) or m.get("runtime") not in ("python", "node") or not m.get("entry"):
            raise FunctionLoadError(f"{mpath}: needs runtime (python|node) and entry")
        code_dir = root / str(m.get("code", "code"))
        return Artifact(
            dir=root,
            runtime=m["runtime"],
            code_dir=code_dir,
            entry=str(m["entry"]),
            export=str(m.get("export") or "handle"),
            pythonpath=tuple(str(root / p) for p in m.get("pythonpath") or [str(code_dir)]),
            node_path=tuple(str(root / p) for p in m.get("node_path") or []),
            node=str(m.get("node") or "node"),
            manifest=m,
        )
    for entry, runtime in (("handler.py", "python"), ("index.js", "node")):
        if (root / entry).is_file():
            return Artifact(root, runtime, root, entry, pythonpath=(str(root),))
    raise FunctionLoadError(f"artifact {path}: no manifest.json, handler.py or index.js")


def load_python(artifact: Artifact) -> tuple[Callable[..., Any], bool]:
    """Import the entry module; (handle, is_async). Runs inside the instance process."""
    for p in reversed(artifact.pythonpath):
        if p not in sys.path:
            sys.path.insert(0, p)
    path = artifact.entry_path
    name = path.stem
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise FunctionLoadError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # the user's import-time error, reported in one line
        raise FunctionLoadError(f"importing {artifact.entry} failed: {type(exc).__name__}: {exc}") from None
    fn = getattr(module, "handle", None)
    if not callable(fn):
        raise FunctionLoadError(f"{artifact.entry} defines no handle(event) function")
    return fn, inspect.iscoroutinefunction(fn)
