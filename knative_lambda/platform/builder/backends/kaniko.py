"""Kaniko backend: a Kubernetes batch/v1 Job like the original platform's.

``job_manifest`` is pure (and validated against the Kubernetes schema by
``validate``); ``KanikoBackend.build`` submits it with the kubernetes client and
waits for the Job to finish. Submission needs a cluster (kind/cluster targets)
and is not exercised by the local tests.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from knative_lambda.platform.builder import metrics
from knative_lambda.platform.builder.backends.base import BuildInput
from knative_lambda.platform.builder.config import BuilderConfig
from knative_lambda.platform.builder.errors import BuildFailed
from knative_lambda.settings import Settings

KANIKO_IMAGE = "gcr.io/kaniko-project/executor:v1.23.2"
K8S_VERSION = "1.29.0"
RESOURCES = {"cpu": "1", "memory": "2Gi", "ephemeral-storage": "4Gi"}  # requests == limits (Guaranteed QoS)


def job_manifest(
    *,
    job_name: str,
    namespace: str,
    context_url: str,
    destination: str,
    timeout_s: float,
    s3_endpoint: str = "",
    s3_region: str = "us-east-1",
    credentials_secret: str = "kl-s3-credentials",
    labels: dict[str, str] | None = None,
    image: str = KANIKO_IMAGE,
    insecure_registry: bool = False,
) -> dict[str, Any]:
    """The Job that builds ``destination`` from the context at ``context_url`` (s3://...)."""
    args = [
        f"--context={context_url}",
        "--dockerfile=Dockerfile",
        f"--destination={destination}",
        "--cache=true",
        "--snapshot-mode=redo",
        "--use-new-run",
    ]
    if insecure_registry:
        args += ["--insecure", "--skip-tls-verify"]
    env = [
        {"name": "AWS_REGION", "value": s3_region},
        {"name": "AWS_ACCESS_KEY_ID", "valueFrom": {"secretKeyRef": {"name": credentials_secret, "key": "access-key"}}},
        {"name": "AWS_SECRET_ACCESS_KEY", "valueFrom": {"secretKeyRef": {"name": credentials_secret, "key": "secret-key"}}},
    ]
    if s3_endpoint:
        env += [{"name": "S3_ENDPOINT", "value": s3_endpoint}, {"name": "S3_FORCE_PATH_STYLE", "value": "true"}]
    meta_labels = {"app.kubernetes.io/name": "kl-build", "app.kubernetes.io/managed-by": "knative-lambda-builder"}
    meta_labels.update(labels or {})
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": job_name, "namespace": namespace, "labels": meta_labels},
        "spec": {
            "backoffLimit": 2,
            "ttlSecondsAfterFinished": 3600,
            "activeDeadlineSeconds": max(1, int(timeout_s)),
            "template": {
                "metadata": {"labels": meta_labels},
                "spec": {
                    "restartPolicy": "Never",
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 1000,
                        "runAsGroup": 1000,
                        "fsGroup": 1000,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [
                        {
                            "name": "kaniko",
                            "image": image,
                            "args": args,
                            "env": env,
                            "resources": {"requests": dict(RESOURCES), "limits": dict(RESOURCES)},
                            "securityContext": {"allowPrivilegeEscalation": False, "runAsNonRoot": True},
                        }
                    ],
                },
            },
        },
    }


def validate(manifest: dict[str, Any], version: str = K8S_VERSION) -> None:
    """Raise BuildFailed when the manifest breaks the Kubernetes schema (strict: no unknown fields)."""
    import kubernetes_validate

    try:
        kubernetes_validate.validate(manifest, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        path = ".".join(str(p) for p in exc.path)
        raise BuildFailed(f"kaniko Job manifest is invalid at {path or '(root)'}: {exc.message}") from None


class KanikoBackend:
    name = "kaniko"

    def __init__(self, config: BuilderConfig, settings: Settings) -> None:
        self.config = config
        self.settings = settings

    def base(self, runtime: str) -> str:
        return self.config.python_base if runtime == "python" else self.config.node_base

    def manifest_for(self, job: BuildInput) -> dict[str, Any]:
        return job_manifest(
            job_name=job.config.job_name,
            namespace=self.settings.namespace,
            context_url=f"s3://{self.settings.temp_bucket}/{job.context_key}",
            destination=job.config.image_uri,
            timeout_s=self.config.timeout_s,
            s3_endpoint=self.settings.s3_endpoint,
            s3_region=self.settings.s3_region,
            labels={"knative-lambda/third-party-id": job.config.third_party_id, "knative-lambda/parser-id": job.config.parser_id},
        )

    async def build(self, job: BuildInput) -> dict[str, Any]:
        manifest = self.manifest_for(job)
        validate(manifest)
        started = time.monotonic()
        try:
            await asyncio.to_thread(self._run_job, manifest)
        except BuildFailed as exc:
            metrics.K8S_JOBS_FAILED.labels("timeout" if "did not finish" in str(exc) else "failed").inc()
            raise
        except BaseException:
            metrics.K8S_JOBS_FAILED.labels("error").inc()
            raise
        else:
            metrics.K8S_JOBS_SUCCEEDED.inc()
        finally:
            metrics.K8S_JOB_DURATION.observe(time.monotonic() - started)
        return {"image": job.config.image_uri, "job": manifest["metadata"]["name"]}

    def _run_job(self, manifest: dict[str, Any]) -> None:
        """Submit and wait (in a thread): kind and cluster targets only."""
        from kubernetes import client, config
        from kubernetes.client.exceptions import ApiException

        try:
            config.load_incluster_config()
        except config.ConfigException:
            config.load_kube_config()
        batch = client.BatchV1Api()
        ns, name = manifest["metadata"]["namespace"], manifest["metadata"]["name"]
        try:
            batch.delete_namespaced_job(name, ns, propagation_policy="Background")
        except ApiException as exc:
            if exc.status != 404:
                raise BuildFailed(f"cannot replace Job {ns}/{name}: {exc.reason}") from None
        try:
            batch.create_namespaced_job(ns, manifest)
        except ApiException as exc:
            raise BuildFailed(f"cannot create Job {ns}/{name}: {exc.reason}") from None
        metrics.K8S_JOBS_CREATED.inc()
        deadline = time.monotonic() + self.config.timeout_s + 30
        while time.monotonic() < deadline:
            status = batch.read_namespaced_job_status(name, ns).status
            if status.succeeded:
                return
            for cond in status.conditions or []:
                if cond.type == "Failed" and cond.status == "True":
                    raise BuildFailed(f"kaniko Job {ns}/{name} failed: {cond.reason}: {cond.message}")
            time.sleep(2)
        raise BuildFailed(f"kaniko Job {ns}/{name} did not finish within the build timeout")
