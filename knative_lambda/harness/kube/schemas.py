"""Where the Knative CRD schemas live, and their conversion to JSON Schema.

The CRDs are not vendored: the project is checked out beside ``shared/``, and
CI runs with the same layout. ``KL_SCHEMAS_DIR`` overrides the location.

A CRD's ``openAPIV3Schema`` is almost JSON Schema. The API server, with
``kubectl apply --validate=strict``, also rejects fields the schema does not
declare (unless ``x-kubernetes-preserve-unknown-fields``), so the conversion
adds ``additionalProperties: false`` there: a typo such as ``contianers`` must
fail here, not be silently pruned by the cluster.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import yaml

from knative_lambda.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[3]


class SchemasNotFound(ConfigError):
    """The Knative CRD schemas directory is missing."""


# A copy of ../shared/schemas/knative (upstream commits in its SOURCES), so an
# installed package or a clone without shared/ beside it still validates.
VENDORED = Path(__file__).resolve().parent / "knative_schemas"


def knative_schemas_dir() -> Path | None:
    """``$KL_SCHEMAS_DIR``, else ``<repo>/../shared/schemas/knative``, else the vendored copy."""
    env = os.environ.get("KL_SCHEMAS_DIR")
    candidates = [Path(env)] if env else []
    candidates += [REPO_ROOT.parent / "shared" / "schemas" / "knative", VENDORED]
    for path in candidates:
        if path.is_dir() and any(path.glob("*.yaml")):
            return path
    return None


def require_schemas_dir() -> Path:
    path = knative_schemas_dir()
    if path is None:
        raise SchemasNotFound(
            "Knative CRD schemas not found: set KL_SCHEMAS_DIR or check out shared/ beside the repo"
        )
    return path


@functools.lru_cache(maxsize=8)
def crd_schemas(directory: str) -> dict[tuple[str, str], dict[str, Any]]:
    """Map ``(apiVersion, kind)`` to a JSON Schema for every CRD in ``directory``."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for file in sorted(Path(directory).glob("*.yaml")):
        for doc in yaml.safe_load_all(file.read_text()):
            if not isinstance(doc, dict) or doc.get("kind") != "CustomResourceDefinition":
                continue
            spec = doc["spec"]
            for version in spec["versions"]:
                raw = version.get("schema", {}).get("openAPIV3Schema")
                if raw is None:
                    continue
                api_version = f"{spec['group']}/{version['name']}"
                out[(api_version, spec["names"]["kind"])] = crd_to_jsonschema(raw)
    return out


@functools.lru_cache(maxsize=8)
def config_map_keys(directory: str, name: str) -> frozenset[str]:
    """Keys a Knative ConfigMap documents in its ``_example`` block (e.g. config-autoscaler)."""
    keys: set[str] = set()
    for file in Path(directory).glob("*.yaml"):
        for doc in yaml.safe_load_all(file.read_text()):
            if not (isinstance(doc, dict) and doc.get("kind") == "ConfigMap"):
                continue
            if doc.get("metadata", {}).get("name") != name:
                continue
            for line in doc.get("data", {}).get("_example", "").splitlines():
                # Documented settings are unindented "key: value" lines in the example.
                if line and not line.startswith((" ", "#")) and ":" in line:
                    keys.add(line.split(":", 1)[0].strip())
    return frozenset(keys)


def crd_to_jsonschema(node: Any) -> Any:
    """Convert one openAPIV3Schema node (recursively) to strict JSON Schema."""
    if isinstance(node, list):
        return [crd_to_jsonschema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "description" or key.startswith("x-kubernetes-"):
            continue
        if key == "properties":
            out[key] = {name: crd_to_jsonschema(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "not"):
            out[key] = crd_to_jsonschema(value)
        elif key in ("allOf", "anyOf", "oneOf"):
            out[key] = [crd_to_jsonschema(sub) for sub in value]
        elif key == "default":
            continue  # defaults are applied by the server, they constrain nothing
        elif key == "nullable":
            continue
        else:
            out[key] = value
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if node.get("nullable") and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    if (
        out.get("type") == "object"
        and "properties" in out
        and "additionalProperties" not in out
        and not node.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out
