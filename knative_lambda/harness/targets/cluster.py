"""The ``cluster`` target: an existing Knative Lambda installation.

Found through KL_* settings (broker ingress URL, gateway/ingress URL, S3
endpoint and keys) and a kubeconfig for the fault hooks, which act on pods
and deployments with the Kubernetes client: kill = delete a pod, restart = a
rollout restart. Pausing a pod is not possible in Kubernetes and says so.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

from knative_lambda.errors import ConfigError, KLError
from knative_lambda.harness.targets.base import Function
from knative_lambda.harness.targets.remote import PlatformTarget
from knative_lambda.settings import Settings

# part name -> (namespace, label selector) of its pods / name of its deployment
PARTS: dict[str, tuple[str, str]] = {
    "broker": ("knative-eventing", "eventing.knative.dev/brokerRole=ingress"),
    "builder": ("knative-lambda", "app=kl-builder"),
    "deployer": ("knative-lambda", "app=kl-deployer"),
    "rabbitmq": ("rabbitmq", "app.kubernetes.io/name=rabbitmq"),
    "s3": ("minio", "app=minio"),
    "gateway": ("kourier-system", "app=3scale-kourier-gateway"),
}


class ClusterTarget(PlatformTarget):
    name = "cluster"

    def __init__(self, settings: Settings | None = None, *, context: str | None = None,
                 kubeconfig: str | None = None) -> None:
        settings = settings or Settings.from_env()
        missing = [n for n, v in (("KL_BROKER_URL", settings.broker_url),
                                  ("KL_GATEWAY_URL", settings.gateway_url),
                                  ("KL_S3_ENDPOINT", settings.s3_endpoint)) if not v]
        if missing:
            raise ConfigError(f"cluster target needs {', '.join(missing)} (see README, 'Targets')")
        super().__init__(settings)
        self.context = context or os.environ.get("KL_KUBE_CONTEXT") or None
        self.kubeconfig = kubeconfig or os.environ.get("KUBECONFIG") or None
        self._core = self._apps = None

    def _clients(self) -> tuple[Any, Any]:
        if self._core is None:
            from kubernetes import client, config

            try:
                config.load_kube_config(config_file=self.kubeconfig, context=self.context)
            except Exception as exc:
                raise ConfigError(f"cannot load kubeconfig: {exc}") from None
            self._core, self._apps = client.CoreV1Api(), client.AppsV1Api()
        return self._core, self._apps

    def parts(self) -> list[str]:
        return list(PARTS)

    def _pods(self, part: str) -> tuple[str, list[Any]]:
        if part not in PARTS:
            raise KLError(f"unknown part {part!r}; parts: {', '.join(PARTS)}")
        namespace, selector = PARTS[part]
        core, _ = self._clients()
        return namespace, core.list_namespaced_pod(namespace, label_selector=selector).items

    def kill(self, part: str) -> None:
        namespace, pods = self._pods(part)
        core, _ = self._clients()
        for pod in pods:
            core.delete_namespaced_pod(pod.metadata.name, namespace, grace_period_seconds=0)

    def pause(self, part: str) -> None:
        raise KLError("pausing a pod is not possible on Kubernetes; use kill or a network fault")

    resume = pause

    def restart(self, part: str, *, timeout: float = 60.0) -> None:
        namespace, pods = self._pods(part)
        _, apps = self._clients()
        owners = {ref.name.rsplit("-", 1)[0] for pod in pods
                  for ref in (pod.metadata.owner_references or []) if ref.kind == "ReplicaSet"}
        stamp = dt.datetime.now(dt.UTC).isoformat()
        patch = {"spec": {"template": {"metadata": {"annotations": {
            "kubectl.kubernetes.io/restartedAt": stamp}}}}}
        for deployment in owners:
            apps.patch_namespaced_deployment(deployment, namespace, patch)

    def kill_instances(self, fn: Function, count: int | None = 1) -> int:
        core, _ = self._clients()
        pods = core.list_namespaced_pod(
            fn.namespace, label_selector=f"serving.knative.dev/service={fn.service}").items
        chosen = pods if count is None else pods[:count]
        for pod in chosen:
            core.delete_namespaced_pod(pod.metadata.name, fn.namespace, grace_period_seconds=0)
        return len(chosen)

    def instance_count(self, fn: Function) -> int:
        core, _ = self._clients()
        pods = core.list_namespaced_pod(
            fn.namespace, label_selector=f"serving.knative.dev/service={fn.service}").items
        return sum(1 for pod in pods if pod.status.phase == "Running")
