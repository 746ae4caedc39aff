"""KubeExecutor's create-or-replace and delete rules, over an in-memory custom-objects API.

The API object below stores objects in a dict and raises the kubernetes client's
own ApiException, so the executor's logic (create when absent, replace at the
current resourceVersion, a 404 on delete is done, other errors are
PlatformError) is checked without a cluster.
"""

from __future__ import annotations

import pytest
from kubernetes.client.exceptions import ApiException

from knative_lambda.errors import PlatformError
from knative_lambda.platform.deployer.decide import (
    ApplyService,
    ApplyTrigger,
    DeleteService,
    DeleteTrigger,
    DeployerConfig,
    decide,
)
from knative_lambda.platform.deployer.kube import KubeExecutor

P = "network.notifi.lambda"
DATA = {
    "third_party_id": "acme",
    "parser_id": "p1",
    "content_hash": "0123456789ab",
    "job_name": "j",
    "image_uri": "kind-registry:5000/knative-lambdas:acme-p1-01234567",
    "status": "succeeded",
    "error_message": "",
    "exit_code": 0,
    "duration": 1.0,
    "correlation_id": "",
}


class MemoryCustomObjects:
    def __init__(self, fail_with: int | None = None) -> None:
        self.objects: dict[tuple[str, str, str, str], dict] = {}
        self.calls: list[str] = []
        self.fail_with = fail_with
        self.version = 0

    def _key(self, group, version, ns, plural, name):
        return (f"{group}/{version}", ns, plural, name)

    def _fail(self) -> None:
        if self.fail_with:
            raise ApiException(status=self.fail_with, reason="Conflict")

    def get_namespaced_custom_object(self, group, version, ns, plural, name):
        self.calls.append(f"get {plural}/{name}")
        found = self.objects.get(self._key(group, version, ns, plural, name))
        if found is None:
            raise ApiException(status=404, reason="Not Found")
        return found

    def create_namespaced_custom_object(self, group, version, ns, plural, body):
        self.calls.append(f"create {plural}/{body['metadata']['name']}")
        self._fail()
        self.version += 1
        stored = {**body, "metadata": {**body["metadata"], "resourceVersion": str(self.version)}}
        self.objects[self._key(group, version, ns, plural, body["metadata"]["name"])] = stored

    def replace_namespaced_custom_object(self, group, version, ns, plural, name, body):
        self.calls.append(f"replace {plural}/{name}@{body['metadata']['resourceVersion']}")
        self._fail()
        self.version += 1
        self.objects[self._key(group, version, ns, plural, name)] = body

    def delete_namespaced_custom_object(self, group, version, ns, plural, name):
        self.calls.append(f"delete {plural}/{name}")
        if self.objects.pop(self._key(group, version, ns, plural, name), None) is None:
            raise ApiException(status=404, reason="Not Found")


async def test_apply_creates_then_replaces_at_the_current_version() -> None:
    api = MemoryCustomObjects()
    executor = KubeExecutor(api)
    service, trigger = decide(f"{P}.build.complete", DATA, DeployerConfig())
    assert isinstance(service, ApplyService) and isinstance(trigger, ApplyTrigger)
    await executor.apply_service(service)
    await executor.apply_trigger(trigger)
    await executor.apply_service(service)
    name = service.name
    assert api.calls == [
        f"get services/{name}",
        f"create services/{name}",
        f"get triggers/{name}",
        f"create triggers/{name}",
        f"get services/{name}",
        f"replace services/{name}@1",
    ]
    stored = api.objects[("serving.knative.dev/v1", "default", "services", name)]
    assert stored["spec"]["template"]["spec"]["containers"][0]["image"] == DATA["image_uri"]


async def test_delete_of_a_missing_object_is_done() -> None:
    api = MemoryCustomObjects()
    executor = KubeExecutor(api)
    await executor.delete_trigger(DeleteTrigger("lambda-x", "default"))
    await executor.delete_service(DeleteService("lambda-x", "default"))
    assert api.calls == ["delete triggers/lambda-x", "delete services/lambda-x"]


async def test_an_api_error_is_a_platform_error_so_the_event_is_redelivered() -> None:
    executor = KubeExecutor(MemoryCustomObjects(fail_with=409))
    service, _ = decide(f"{P}.build.complete", DATA, DeployerConfig())
    with pytest.raises(PlatformError, match="409"):
        await executor.apply_service(service)
