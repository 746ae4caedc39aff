"""The local gateway's management API, as the deployer speaks it (pure).

The gateway runs revisions from the builder's artifacts rather than container
images, so the Knative Service is turned into the gateway's PUT body: its
revision template (annotations, containerConcurrency) plus the artifact
reference: the local builder's ``artifact`` key from build.complete when
present; otherwise the deployer asks the builder's artifact API for the image
tag and sends the artifact directory it answers with. See ``platform/serving/api.py``.
"""

from __future__ import annotations

from typing import Any

from knative_lambda.platform.deployer.decide import ApplyService


def service_path(namespace: str, name: str) -> str:
    """Where the gateway keeps one service."""
    return f"/apis/v1/namespaces/{namespace}/services/{name}"


def artifact_ref(image_uri: str) -> str:
    """What to ask the builder's artifact API for: the image tag (a URI has '/' in it)."""
    return image_uri.rsplit(":", 1)[-1] if ":" in image_uri.rsplit("/", 1)[-1] else image_uri


def revision_body(
    action: ApplyService, *, artifact: str | None = None, runtime: str | None = None
) -> dict[str, Any]:
    """The gateway's PUT body for the service of ``action``: one revision per content hash.

    ``artifact``/``runtime`` override the event's (the deployer resolves an
    image URI to the artifact directory through the builder when it must).
    """
    artifact = artifact or action.artifact or action.image_uri
    runtime = runtime or action.runtime
    template = action.manifest["spec"]["template"]
    spec = template["spec"]
    body: dict[str, Any] = {
        "revision": {
            "content_hash": action.content_hash,
            "artifact": artifact,
            "annotations": dict(template["metadata"].get("annotations", {})),
            "container_concurrency": spec.get("containerConcurrency", 0),
        },
        "labels": dict(template["metadata"].get("labels", {})),
    }
    if runtime:
        body["revision"]["runtime"] = runtime
    if "timeoutSeconds" in spec:
        body["revision"]["timeout"] = spec["timeoutSeconds"]
    return body
