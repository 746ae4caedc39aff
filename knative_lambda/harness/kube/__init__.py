"""Kubernetes manifests as plain dicts: schema location and validation.

``validate_manifest`` checks Knative kinds against the CRD ``openAPIV3Schema``
of ``../shared/schemas/knative`` and core kinds with kubernetes-validate; both
raise :class:`~knative_lambda.harness.kube.validate.ManifestError` listing the
path of every problem.
"""

from knative_lambda.harness.kube.schemas import SchemasNotFound, knative_schemas_dir
from knative_lambda.harness.kube.validate import (
    ManifestError,
    Problem,
    problems,
    validate_manifest,
    validate_manifests,
)

__all__ = [
    "ManifestError",
    "Problem",
    "SchemasNotFound",
    "knative_schemas_dir",
    "problems",
    "validate_manifest",
    "validate_manifests",
]
