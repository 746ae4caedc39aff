"""Carrying out the deployer's actions on a Kubernetes cluster (kind/cluster targets).

The same actions as on the local target, applied as Knative objects with the
kubernetes client: create, or replace at the current resourceVersion; delete
answering 404 counts as done. Knative then rolls out the revision and the
RabbitMQ broker wires the trigger. Needs a cluster, so the local tests do not
exercise it; the manifests it applies are validated by tests.
"""

from __future__ import annotations

import asyncio
from typing import Any

from knative_lambda.errors import ConfigError, PlatformError
from knative_lambda.platform.deployer.decide import (
    ApplyService,
    ApplyTrigger,
    DeleteService,
    DeleteTrigger,
)

SERVICES = ("serving.knative.dev", "v1", "services")
TRIGGERS = ("eventing.knative.dev", "v1", "triggers")


class KubeExecutor:
    def __init__(self, api: Any | None = None) -> None:
        self._api = api

    def _custom(self) -> Any:
        if self._api is None:
            from kubernetes import client, config

            try:
                config.load_incluster_config()
            except config.ConfigException:
                try:
                    config.load_kube_config()
                except Exception as e:
                    raise ConfigError(
                        f"deployer: no in-cluster config nor kubeconfig: {e}"
                    ) from None
            self._api = client.CustomObjectsApi()
        return self._api

    async def close(self) -> None:
        return None

    async def _apply(
        self, kind: tuple[str, str, str], namespace: str, manifest: dict[str, Any]
    ) -> None:
        await asyncio.to_thread(self._apply_sync, kind, namespace, manifest)

    def _apply_sync(
        self, kind: tuple[str, str, str], namespace: str, manifest: dict[str, Any]
    ) -> None:
        from kubernetes.client.exceptions import ApiException

        group, version, plural = kind
        api, name = self._custom(), manifest["metadata"]["name"]
        try:
            current = api.get_namespaced_custom_object(group, version, namespace, plural, name)
        except ApiException as e:
            if e.status != 404:
                raise PlatformError(f"get {plural}/{name}: {e.status} {e.reason}") from None
            current = None
        try:
            if current is None:
                api.create_namespaced_custom_object(group, version, namespace, plural, manifest)
            else:
                body = {
                    **manifest,
                    "metadata": {
                        **manifest["metadata"],
                        "resourceVersion": current["metadata"]["resourceVersion"],
                    },
                }
                api.replace_namespaced_custom_object(group, version, namespace, plural, name, body)
        except ApiException as e:  # 409: a concurrent change; the redelivery retries
            raise PlatformError(f"apply {plural}/{name}: {e.status} {e.reason}") from None

    async def _delete(self, kind: tuple[str, str, str], namespace: str, name: str) -> None:
        await asyncio.to_thread(self._delete_sync, kind, namespace, name)

    def _delete_sync(self, kind: tuple[str, str, str], namespace: str, name: str) -> None:
        from kubernetes.client.exceptions import ApiException

        group, version, plural = kind
        try:
            self._custom().delete_namespaced_custom_object(group, version, namespace, plural, name)
        except ApiException as e:
            if e.status != 404:
                raise PlatformError(f"delete {plural}/{name}: {e.status} {e.reason}") from None

    async def apply_service(self, action: ApplyService) -> None:
        await self._apply(SERVICES, action.namespace, action.manifest)

    async def delete_service(self, action: DeleteService) -> None:
        # Knative garbage-collects the service's revisions, routes and pods.
        await self._delete(SERVICES, action.namespace, action.name)

    async def apply_trigger(self, action: ApplyTrigger) -> None:
        await self._apply(TRIGGERS, action.namespace, action.manifest)

    async def delete_trigger(self, action: DeleteTrigger) -> None:
        await self._delete(TRIGGERS, action.namespace, action.name)
