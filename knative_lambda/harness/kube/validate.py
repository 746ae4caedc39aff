"""Validate generated manifests before anything applies them.

Knative kinds (and the few other custom resources the kind target applies) are
checked against their CRD schema; core kinds against the Kubernetes OpenAPI
schemas shipped by kubernetes-validate (strict: unknown fields are errors).
Every problem is collected, each with the path of the offending field, so a
broken manifest is fixed in one go.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema

from knative_lambda.errors import ConfigError
from knative_lambda.harness.kube import schemas
from knative_lambda.harness.kube.extra_crds import EXTRA_SCHEMAS
from knative_lambda.harness.targets import versions

DNS1123_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS1123_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
LABEL_VALUE = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
QUALIFIED_NAME = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"

PATTERN_NAMES = {
    DNS1123_LABEL: "DNS-1123 label (a-z0-9-, at most 63)",
    DNS1123_SUBDOMAIN: "DNS-1123 subdomain",
    LABEL_VALUE: "label value (A-Za-z0-9-_., at most 63)",
    QUALIFIED_NAME: "qualified name ([prefix/]name)",
}

# What the API server checks on every object's metadata, whatever its kind.
METADATA_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "pattern": DNS1123_SUBDOMAIN, "maxLength": 253},
        "namespace": {"type": "string", "pattern": DNS1123_LABEL, "maxLength": 63},
        "labels": {
            "type": "object",
            "propertyNames": {"pattern": QUALIFIED_NAME},
            "additionalProperties": {"type": "string", "pattern": LABEL_VALUE, "maxLength": 63},
        },
        "annotations": {
            "type": "object",
            "propertyNames": {"pattern": QUALIFIED_NAME},
            "additionalProperties": {"type": "string"},
        },
    },
}

_META_VALIDATOR = jsonschema.Draft202012Validator(
    {"type": "object", "required": ["metadata"], "properties": {"metadata": METADATA_SCHEMA}}
)

# Knative reconciles these into child objects whose names must be DNS-1123 labels.
LABEL_NAMED_KINDS = {"Service", "Broker", "Trigger", "JobSink"}


@dataclass(frozen=True)
class Problem:
    where: str  # dotted path into the manifest, "" for the whole object
    reason: str


class ManifestError(ConfigError):
    """A manifest does not match its schema; ``.problems`` lists every problem."""

    def __init__(self, what: str, problems: list[Problem]) -> None:
        self.what = what
        self.problems = problems
        detail = "; ".join(f"{p.where or '<root>'}: {p.reason}" for p in problems)
        super().__init__(f"{what} is invalid: {detail}")


def describe(manifest: dict[str, Any]) -> str:
    meta = manifest.get("metadata") if isinstance(manifest.get("metadata"), dict) else {}
    return f"{manifest.get('kind', '?')}/{meta.get('name', '?')}"


def validate_manifest(
    manifest: dict[str, Any],
    *,
    schemas_dir: Path | None = None,
    kubernetes_version: str = versions.KUBERNETES,
) -> None:
    """Raise :class:`ManifestError` unless ``manifest`` is valid for its kind."""
    found = problems(manifest, schemas_dir=schemas_dir, kubernetes_version=kubernetes_version)
    if found:
        raise ManifestError(describe(manifest), found)


def validate_manifests(manifests: Iterable[dict[str, Any]], **kwargs: Any) -> None:
    """Validate each manifest; one error naming every invalid manifest."""
    errors = []
    for manifest in manifests:
        try:
            validate_manifest(manifest, **kwargs)
        except ManifestError as error:
            errors.append(error)
    if errors:
        merged = [Problem(f"{e.what}: {p.where}", p.reason) for e in errors for p in e.problems]
        raise ManifestError(f"{len(errors)} manifest(s)", merged)


def problems(
    manifest: Any,
    *,
    schemas_dir: Path | None = None,
    kubernetes_version: str = versions.KUBERNETES,
) -> list[Problem]:
    """Every problem of ``manifest`` (empty when valid)."""
    if not isinstance(manifest, dict):
        return [Problem("", "a manifest must be a mapping")]
    api_version, kind = manifest.get("apiVersion"), manifest.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        return [Problem("", "apiVersion and kind must be strings")]
    schema = _custom_schema(api_version, kind, schemas_dir)
    if schema is None:
        found = _core_problems(manifest, kubernetes_version)
        found += _errors(_META_VALIDATOR, manifest)
    else:
        found = _errors(jsonschema.Draft202012Validator(schema), manifest)
    found += _metadata_problems(manifest, kind)
    if kind == "ConfigMap":
        found += _knative_config_problems(manifest, schemas_dir)
    return found


def _custom_schema(api_version: str, kind: str, schemas_dir: Path | None) -> dict | None:
    key = (api_version, kind)
    if key in EXTRA_SCHEMAS:
        return _rooted(EXTRA_SCHEMAS[key], api_version, kind)
    if "." not in api_version.split("/")[0] or api_version.split("/")[0].endswith(".k8s.io"):
        return None  # a core/built-in group: kubernetes-validate knows it
    directory = schemas_dir or schemas.require_schemas_dir()
    crds = schemas.crd_schemas(str(directory))
    if key not in crds:
        known = sorted(f"{a} {k}" for a, k in crds)
        return {"not": {}, "description": f"no CRD schema for {api_version} {kind}; known: {known}"}
    return _rooted(crds[key], api_version, kind)


def _rooted(schema: dict[str, Any], api_version: str, kind: str) -> dict[str, Any]:
    """Add what every object root has (apiVersion, kind, metadata) to a CRD schema."""
    root = dict(schema)
    props = dict(root.get("properties", {}))
    props["apiVersion"] = {"const": api_version}
    props["kind"] = {"const": kind}
    props["metadata"] = METADATA_SCHEMA
    root["properties"] = props
    root["type"] = "object"
    root["required"] = sorted({*root.get("required", []), "apiVersion", "kind", "metadata"})
    root.setdefault("additionalProperties", False)
    return root


def _errors(validator: jsonschema.protocols.Validator, instance: Any) -> list[Problem]:
    out = []
    for error in sorted(
        validator.iter_errors(instance), key=lambda e: list(map(str, e.absolute_path))
    ):
        reason = error.message
        if error.validator == "not" and isinstance(error.schema, dict):
            reason = error.schema.get("description", reason)
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            declared = error.schema.get("properties", {}) if isinstance(error.schema, dict) else {}
            extra = sorted(set(error.instance) - set(declared))
            reason = f"unknown field(s) {', '.join(map(repr, extra))}"
        if error.validator == "pattern":
            reason = f"{error.instance!r} is not a valid {PATTERN_NAMES.get(error.validator_value, 'value')}"
        out.append(Problem(path_of(error.absolute_path), reason))
    return out


def path_of(parts: Iterable[str | int]) -> str:
    """``["spec", "containers", 0, "image"]`` -> ``spec.containers[0].image``."""
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _metadata_problems(manifest: dict[str, Any], kind: str) -> list[Problem]:
    meta = manifest.get("metadata")
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str):
        return []
    name = meta["name"]
    knative = kind in LABEL_NAMED_KINDS and manifest["apiVersion"].split("/")[0].endswith(
        "knative.dev"
    )
    if knative and (len(name) > 63 or not re.match(DNS1123_LABEL, name)):
        return [Problem("metadata.name", f"{name!r} is not a DNS-1123 label (a-z0-9-, at most 63)")]
    return []


def _knative_config_problems(manifest: dict[str, Any], schemas_dir: Path | None) -> list[Problem]:
    """A ``config-*`` ConfigMap in a knative namespace may only set documented keys."""
    meta = manifest.get("metadata", {})
    name, namespace = meta.get("name", ""), meta.get("namespace", "")
    if not (str(namespace).startswith("knative-") and str(name).startswith("config-")):
        return []
    directory = schemas_dir or schemas.knative_schemas_dir()
    if directory is None:
        return []
    known = schemas.config_map_keys(str(directory), name)
    if not known:
        return []
    return [
        Problem(f"data.{key}", f"not a documented {name} key")
        for key in sorted(manifest.get("data") or {})
        if key not in known
    ]


@functools.lru_cache(maxsize=64)
def _core_validator(api_version: str, kind: str, k8s_version: str):
    """A strict validator for a built-in kind, from kubernetes-validate's schema files."""
    from kubernetes_validate import utils as kv
    from referencing import Registry, Resource

    wanted = kv.major_minor(k8s_version)
    version = [v for v in kv.all_versions() if kv.major_minor(v) <= wanted][-1]
    group = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    schema_dir = f"v{version}-local-strict"
    try:
        schema = kv.schema_contents(
            f"kubernetes-json-schema/{schema_dir}/{kind.lower()}-{group}.json", k8s_version
        )
    except FileNotFoundError:
        return None
    defs = kv.schema_contents(f"kubernetes-json-schema/{schema_dir}/_definitions.json", k8s_version)
    registry = Resource.from_contents(schema) @ Registry()
    registry = Resource.from_contents(defs) @ registry
    return jsonschema.Draft202012Validator(schema, registry=registry)


def _core_problems(manifest: dict[str, Any], k8s_version: str) -> list[Problem]:
    validator = _core_validator(manifest["apiVersion"], manifest["kind"], k8s_version)
    if validator is None:
        return [
            Problem(
                "",
                f"no schema for {manifest['apiVersion']} {manifest['kind']} in Kubernetes {k8s_version}",
            )
        ]
    return _errors(validator, manifest)
