"""harness/kube: locating the shared CRD schemas, converting them, validating core kinds."""

from __future__ import annotations

from pathlib import Path

import pytest

from knative_lambda.harness.kube import schemas
from knative_lambda.harness.kube.validate import ManifestError, path_of, problems, validate_manifest


def test_env_overrides_the_schema_location(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "x.yaml").write_text("kind: Nothing\n")
    monkeypatch.setenv("KL_SCHEMAS_DIR", str(tmp_path))
    assert schemas.knative_schemas_dir() == tmp_path


def test_missing_schemas_give_none_and_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KL_SCHEMAS_DIR", str(tmp_path / "absent"))
    monkeypatch.setattr(schemas, "REPO_ROOT", tmp_path / "repo")
    assert schemas.knative_schemas_dir() == schemas.VENDORED  # the copy in the package
    monkeypatch.setattr(schemas, "VENDORED", tmp_path / "no-copy")
    assert schemas.knative_schemas_dir() is None
    with pytest.raises(schemas.SchemasNotFound, match="KL_SCHEMAS_DIR"):
        schemas.require_schemas_dir()


def test_the_vendored_schemas_are_the_shared_ones() -> None:
    shared = schemas.REPO_ROOT.parent / "shared" / "schemas" / "knative"
    if not shared.is_dir():
        pytest.skip(f"{shared} is not beside this checkout: nothing to compare with")
    names = sorted(p.name for p in shared.iterdir())
    assert sorted(p.name for p in schemas.VENDORED.iterdir()) == names
    for name in names:  # refresh with: cp ../shared/schemas/knative/* knative_lambda/harness/kube/knative_schemas/
        assert (schemas.VENDORED / name).read_bytes() == (shared / name).read_bytes(), name


CONVERSIONS = [
    (
        "closes objects",
        {"type": "object", "properties": {"a": {"type": "string"}}},
        {"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": False},
    ),
    (
        "keeps preserve-unknown open",
        {"type": "object", "x-kubernetes-preserve-unknown-fields": True, "properties": {}},
        {"type": "object", "properties": {}},
    ),
    (
        "int-or-string",
        {"x-kubernetes-int-or-string": True},
        {"anyOf": [{"type": "integer"}, {"type": "string"}]},
    ),
    ("nullable", {"type": "string", "nullable": True}, {"type": ["string", "null"]}),
    (
        "drops descriptions and defaults",
        {"type": "string", "description": "d", "default": "x"},
        {"type": "string"},
    ),
    (
        "maps stay maps",
        {"type": "object", "additionalProperties": {"type": "string"}},
        {"type": "object", "additionalProperties": {"type": "string"}},
    ),
]


@pytest.mark.parametrize(
    ("case", "given", "expected"), CONVERSIONS, ids=[c[0] for c in CONVERSIONS]
)
def test_crd_schema_conversion(case: str, given: dict, expected: dict) -> None:
    assert schemas.crd_to_jsonschema(given) == expected


@pytest.mark.parametrize(
    ("parts", "text"),
    [
        ([], ""),
        (["spec"], "spec"),
        (["spec", "containers", 0, "image"], "spec.containers[0].image"),
        ([0, "a"], "[0].a"),
    ],
)
def test_path_of(parts: list, text: str) -> None:
    assert path_of(parts) == text


def test_knows_the_shared_crds(schemas_dir: Path) -> None:
    kinds = set(schemas.crd_schemas(str(schemas_dir)))
    assert {
        ("serving.knative.dev/v1", "Service"),
        ("eventing.knative.dev/v1", "Broker"),
        ("eventing.knative.dev/v1", "Trigger"),
    } <= kinds


CORE_OK = [
    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kl"}},
    {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c", "namespace": "kl"},
        "data": {"a": "b"},
    },
    {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": {"k": "v"}},
    {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "j"},
        "spec": {
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "c", "image": "busybox"}],
                }
            }
        },
    },
]


@pytest.mark.parametrize("manifest", CORE_OK, ids=lambda m: m["kind"])
def test_core_kinds_validate_with_kubernetes_schemas(manifest: dict) -> None:
    validate_manifest(manifest)


CORE_BAD = [
    (
        "unknown field",
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "dataa": {}},
        "",
    ),
    (
        "data not strings",
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": 1}},
        "data.a",
    ),
    (
        "bad name",
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "Kl_1"}},
        "metadata.name",
    ),
    (
        "port string",
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "s"},
            "spec": {"ports": [{"port": "80"}]},
        },
        "spec.ports[0].port",
    ),
    ("unknown kind", {"apiVersion": "v1", "kind": "Gizmo", "metadata": {"name": "g"}}, ""),
]


@pytest.mark.parametrize(("case", "manifest", "where"), CORE_BAD, ids=[c[0] for c in CORE_BAD])
def test_core_kinds_report_the_path(case: str, manifest: dict, where: str) -> None:
    with pytest.raises(ManifestError) as info:
        validate_manifest(manifest)
    assert where in [p.where for p in info.value.problems]


def test_not_a_mapping() -> None:
    assert problems(["x"])[0].reason == "a manifest must be a mapping"


def test_unknown_custom_kind_names_the_known_ones(schemas_dir: Path) -> None:
    found = problems(
        {"apiVersion": "serving.knative.dev/v1", "kind": "Route", "metadata": {"name": "r"}},
        schemas_dir=schemas_dir,
    )
    assert "no CRD schema for serving.knative.dev/v1 Route" in found[0].reason


def test_validate_manifests_names_every_invalid_manifest() -> None:
    from knative_lambda.harness.kube import validate_manifests

    good = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ok"}}
    bad1 = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "Bad_1"}}
    bad2 = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": 1}}
    validate_manifests([good])
    with pytest.raises(ManifestError) as info:
        validate_manifests([good, bad1, bad2])
    wheres = [p.where for p in info.value.problems]
    assert wheres == ["Namespace/Bad_1: metadata.name", "ConfigMap/c: data.k"]
