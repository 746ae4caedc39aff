"""Reading a built artifact: its manifest with absolute paths, and a one-shot run.

The serving side starts instances from the manifest; :func:`invoke` calls the
handler once through the stdlib-only runner shipped in the artifact, which is
how tests (and ``kl build`` users) check that an artifact really runs.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from knative_lambda.errors import PlatformError

RUNNERS = {"python": "kl_invoke.py", "node": "kl_invoke.js"}


def absolute(manifest: dict[str, Any], artifact_dir: Path) -> dict[str, Any]:
    """The manifest with ``dir`` and its relative paths made absolute (for the serving side)."""
    out = dict(manifest)
    root = artifact_dir.resolve()
    out["dir"] = str(root)
    out["code_dir"] = str(root / manifest.get("code", "code"))
    out["entry_path"] = str(root / manifest.get("code", "code") / manifest["entry"])
    if "pythonpath" in manifest:
        out["pythonpath"] = [str(root / p) for p in manifest["pythonpath"]]
    if manifest.get("env_python"):
        out["env_python"] = str(root / manifest["env_python"])
    if "node_path" in manifest:
        out["node_path"] = [str(root / p) for p in manifest["node_path"]]
    out["runner"] = str(root / "bin" / RUNNERS[manifest["runtime"]])
    return out


def command(manifest: dict[str, Any], event: Any) -> tuple[list[str], dict[str, str]]:
    """argv and extra environment that call the handler once with ``event``."""
    m = manifest
    payload = json.dumps(event)
    if m["runtime"] == "python":
        return [m["python"], m["runner"], m["code_dir"], m["entry"], payload], {
            "PYTHONPATH": os.pathsep.join(m.get("pythonpath", [])),
            "PYTHONDONTWRITEBYTECODE": "1",
        }
    return [m["node"], m["runner"], m["code_dir"], m["entry"], payload], {
        "NODE_PATH": os.pathsep.join(m.get("node_path", []))
    }


def invoke(artifact_dir: Path, event: Any, timeout: float = 30.0) -> Any:
    """Run the artifact's handler once; its JSON result, or PlatformError with its stderr."""
    manifest = absolute(json.loads((artifact_dir / "manifest.json").read_text()), artifact_dir)
    argv, extra = command(manifest, event)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "NODE_PATH")} | extra
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise PlatformError(f"handler failed (exit {done.returncode}): {done.stderr.strip()[-500:]}")
    lines = done.stdout.strip().splitlines()
    return json.loads(lines[-1]) if lines else None
