"""The ``kind`` target: the whole stack in a kind cluster on a developer's machine.

``plan(options)`` is pure: the ordered steps that bring the stack up (each a
command to run or a manifest to apply). ``dry_run(options)`` prints them as a
YAML stream (manifests as documents, commands as ``# $`` comments); ``up``
executes them with pytest-kind's ``KindCluster`` and reports progress; ``down``
deletes the cluster. Every version comes from :mod:`.versions`.

Order (each install is followed by a readiness wait before anything uses it):

    preflight -> local registry -> kind cluster (+ registry wiring)
    -> cert-manager -> Knative Serving CRDs, core (+ its webhook), Kourier, config
    -> Knative Eventing CRDs, core -> RabbitMQ cluster + topology operators
    -> eventing-rabbitmq broker -> RabbitmqCluster -> MinIO + buckets
    -> RabbitmqBrokerConfig + Broker -> platform image build + kind load
    -> platform (RBAC, settings, builder, deployer, their triggers)

Ports on the host (kind ``extraPortMappings``): 8080 Kourier (functions,
``http://<service>.<namespace>.127.0.0.1.sslip.io:8080``), 9000 MinIO,
8081 the broker ingress.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from knative_lambda.errors import ConfigError, PlatformError, ServiceUnavailable
from knative_lambda.harness.targets import versions
from knative_lambda.platform.deployer import manifests as kn
from knative_lambda.settings import DEFAULT_PREFIX, Settings

REPO_ROOT = Path(__file__).resolve().parents[3]

PLATFORM_NS = "knative-lambda"
RABBITMQ_NS = "rabbitmq"
MINIO_NS = "minio"
RABBITMQ_CLUSTER = "rabbitmq"  # the operator labels its pods app.kubernetes.io/name=<this>
REGISTRY_NAME = "kind-registry"
REGISTRY_IN_CLUSTER = f"{REGISTRY_NAME}:5000"

# nodePort in the cluster -> port on the host
KOURIER_NODE_PORT, KOURIER_HOST_PORT = 31080, 8080
MINIO_NODE_PORT, MINIO_HOST_PORT = 31090, 9000
INGRESS_NODE_PORT, INGRESS_HOST_PORT = 31081, 8081

WAIT = "300s"
FUNCTION_DOMAIN = "127.0.0.1.sslip.io"  # resolves to 127.0.0.1, where Kourier listens


@dataclass(frozen=True)
class KindOptions:
    cluster_name: str = "knative-lambda"
    workdir: Path = Path(".kl/kind")  # kind config, kubeconfig, downloaded kind/kubectl
    repo_root: Path = REPO_ROOT  # docker build context of the platform image
    platform_image: str = "knative-lambda-platform:dev"
    event_prefix: str = DEFAULT_PREFIX
    namespace: str = "default"  # where functions, the Broker and their Triggers live
    token: str = ""  # bearer token of the platform's management APIs
    s3_access_key: str = "kl-minio"
    s3_secret_key: str = "kl-minio-secret"
    source_bucket: str = "kl-source"
    temp_bucket: str = "kl-temp"
    scale_to_zero_grace: str = "30s"
    registry_host_port: int = 5001
    wait_timeout: str = WAIT

    @property
    def kubeconfig(self) -> Path:
        return self.workdir / "kubeconfig"

    @property
    def kind_config_path(self) -> Path:
        return self.workdir / "kind-config.yaml"


@dataclass(frozen=True)
class Step:
    """One thing ``up`` does; ``dry_run`` prints it.

    action: ``run`` (a command), ``write-file``, ``create-cluster``,
    ``apply-url`` (a release manifest), ``apply`` (``manifest``), ``wait``
    (a readiness command), ``build-image``, ``load-image``.
    """

    phase: str
    what: str
    action: str
    argv: tuple[str, ...] = ()
    manifest: dict[str, Any] | None = field(default=None, compare=False)
    content: str = ""
    provides: frozenset[str] = frozenset()  # "apiVersion Kind" of the CRDs this step installs
    skip_if: tuple[str, ...] = ()  # a command whose success means the step is already done

    def command(self, options: KindOptions) -> str:
        """The shell form of the step, as printed by the dry run."""
        if self.action == "apply":
            return "kubectl apply -f -   # the manifest below"
        if self.action == "write-file":
            return f"cat > {self.argv[0]} <<'EOF'  # the kind config below"
        return " ".join(_quote(a) for a in self.argv)


class _Dumper(yaml.SafeDumper):
    """Multi-line strings as ``|`` blocks, so printed configs read as they would be written."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def to_yaml(obj: Any) -> str:
    return yaml.dump(obj, Dumper=_Dumper, sort_keys=False)


def _quote(arg: str) -> str:
    return arg if arg and all(c.isalnum() or c in "-_./:=,@%+" for c in arg) else repr(arg)


def kind_name(api_version: str, kind: str) -> str:
    return f"{api_version} {kind}"


# --- manifests -------------------------------------------------------------------------


def _meta(name: str, namespace: str | None = None, **labels: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": {**kn.MANAGED_BY, **labels}}
    if namespace:
        meta["namespace"] = namespace
    return meta


def namespace(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": _meta(name)}


def kind_cluster_config(options: KindOptions) -> dict[str, Any]:
    """kind's own Cluster config: registry mirrors and host port mappings."""
    mirror = f"http://{REGISTRY_IN_CLUSTER}"
    patch = (
        f'[plugins."io.containerd.grpc.v1.cri".registry.mirrors."localhost:{options.registry_host_port}"]\n'
        f'  endpoint = ["{mirror}"]\n'
        f'[plugins."io.containerd.grpc.v1.cri".registry.mirrors."{REGISTRY_IN_CLUSTER}"]\n'
        f'  endpoint = ["{mirror}"]\n'
    )
    ports = [
        (KOURIER_NODE_PORT, KOURIER_HOST_PORT),
        (MINIO_NODE_PORT, MINIO_HOST_PORT),
        (INGRESS_NODE_PORT, INGRESS_HOST_PORT),
    ]
    return {
        "kind": "Cluster",
        "apiVersion": "kind.x-k8s.io/v1alpha4",
        "containerdConfigPatches": [patch],
        "nodes": [
            {
                "role": "control-plane",
                "image": versions.KIND_NODE_IMAGE,
                "extraPortMappings": [
                    {"containerPort": c, "hostPort": h, "listenAddress": "127.0.0.1"}
                    for c, h in ports
                ],
            }
        ],
    }


def local_registry_hosting(options: KindOptions) -> dict[str, Any]:
    """KEP-1755: tells tools where the cluster's local registry is."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "local-registry-hosting", "namespace": "kube-public"},
        "data": {
            "localRegistryHosting.v1": yaml.safe_dump(
                {
                    "host": f"localhost:{options.registry_host_port}",
                    "help": "https://kind.sigs.k8s.io/docs/user/local-registry/",
                }
            )
        },
    }


# The messaging topology operator refuses Exchanges/Queues/Bindings from another
# namespace than the cluster's unless the cluster lists it here
# (messaging-topology-operator rabbitmqclient/cluster_reference.go AllowedNamespace);
# eventing-rabbitmq creates them in the Broker's namespace.
TOPOLOGY_ALLOWED_NAMESPACES = "rabbitmq.com/topology-allowed-namespaces"


def rabbitmq_cluster(options: KindOptions) -> dict[str, Any]:
    meta = _meta(RABBITMQ_CLUSTER, RABBITMQ_NS)
    meta["annotations"] = {TOPOLOGY_ALLOWED_NAMESPACES: options.namespace}
    return {
        "apiVersion": "rabbitmq.com/v1beta1",
        "kind": "RabbitmqCluster",
        "metadata": meta,
        "spec": {
            "replicas": 1,
            "image": versions.RABBITMQ_IMAGE,
            "resources": {
                "requests": {"cpu": "250m", "memory": "512Mi"},
                "limits": {"memory": "1Gi"},
            },
            "persistence": {"storage": "2Gi"},
        },
    }


def _secret(name: str, ns: str, data: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _meta(name, ns),
        "type": "Opaque",
        "stringData": data,
    }


def _deployment(
    name: str,
    ns: str,
    container: dict[str, Any],
    *,
    labels: dict[str, str],
    service_account: str | None = None,
) -> dict[str, Any]:
    pod_spec: dict[str, Any] = {"containers": [container]}
    if service_account:
        pod_spec["serviceAccountName"] = service_account
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(name, ns, **labels),
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": dict(labels)},
            "template": {"metadata": {"labels": dict(labels)}, "spec": pod_spec},
        },
    }


def _service(
    name: str,
    ns: str,
    selector: dict[str, str],
    port: int,
    target: int,
    node_port: int | None = None,
) -> dict[str, Any]:
    port_spec: dict[str, Any] = {
        "name": "http",
        "port": port,
        "targetPort": target,
        "protocol": "TCP",
    }
    spec: dict[str, Any] = {"selector": dict(selector), "ports": [port_spec]}
    if node_port is not None:
        spec["type"] = "NodePort"
        port_spec["nodePort"] = node_port
    return {"apiVersion": "v1", "kind": "Service", "metadata": _meta(name, ns), "spec": spec}


def minio_manifests(options: KindOptions) -> list[dict[str, Any]]:
    labels = {"app": "minio"}
    creds = {"MINIO_ROOT_USER": options.s3_access_key, "MINIO_ROOT_PASSWORD": options.s3_secret_key}
    container = {
        "name": "minio",
        "image": versions.MINIO_IMAGE,
        "args": ["server", "/data", "--console-address", ":9001"],
        "envFrom": [{"secretRef": {"name": "minio-credentials"}}],
        "ports": [{"containerPort": 9000, "name": "s3"}],
        "readinessProbe": {"httpGet": {"path": "/minio/health/ready", "port": 9000}},
        "volumeMounts": [{"name": "data", "mountPath": "/data"}],
    }
    deployment = _deployment("minio", MINIO_NS, container, labels=labels)
    deployment["spec"]["template"]["spec"]["volumes"] = [{"name": "data", "emptyDir": {}}]
    make_buckets = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": _meta("minio-buckets", MINIO_NS),
        "spec": {
            "backoffLimit": 10,
            "template": {
                "spec": {
                    "restartPolicy": "OnFailure",
                    "containers": [
                        {
                            "name": "mc",
                            "image": versions.MINIO_MC_IMAGE,
                            "envFrom": [{"secretRef": {"name": "minio-credentials"}}],
                            "command": ["/bin/sh", "-c"],
                            "args": [
                                "mc alias set kl http://minio.minio.svc:9000 "
                                '"$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD" && '
                                f"mc mb --ignore-existing kl/{options.source_bucket} kl/{options.temp_bucket}"
                            ],
                        }
                    ],
                }
            },
        },
    }
    return [
        namespace(MINIO_NS),
        _secret("minio-credentials", MINIO_NS, creds),
        deployment,
        _service("minio", MINIO_NS, labels, 9000, 9000, node_port=MINIO_NODE_PORT),
        make_buckets,
    ]


def platform_settings(options: KindOptions) -> Settings:
    """The Settings the platform's pods run with (in-cluster addresses)."""
    return Settings(
        event_prefix=options.event_prefix,
        s3_endpoint=f"http://minio.{MINIO_NS}.svc:9000",
        s3_access_key=options.s3_access_key,
        s3_secret_key=options.s3_secret_key,
        source_bucket=options.source_bucket,
        temp_bucket=options.temp_bucket,
        registry=REGISTRY_IN_CLUSTER,
        namespace=options.namespace,
        broker_url=f"http://{broker_ingress_host(options)}",
        builder_url=f"http://kl-builder.{PLATFORM_NS}.svc",
        gateway_url="http://kourier.kourier-system.svc.cluster.local",
        token=options.token,
        data_dir=Path("/tmp/kl"),
        port=8080,
    )


def host_settings(options: KindOptions) -> Settings:
    """The Settings the harness on the host uses to reach the stack (state file)."""
    inside = platform_settings(options)
    return replace(
        inside,
        s3_endpoint=f"http://127.0.0.1:{MINIO_HOST_PORT}",
        registry=f"localhost:{options.registry_host_port}",
        broker_url=f"http://127.0.0.1:{INGRESS_HOST_PORT}",
        builder_url="",
        gateway_url=f"http://127.0.0.1:{KOURIER_HOST_PORT}",
        data_dir=options.workdir,
        port=0,
    )


def platform_manifests(options: KindOptions) -> list[dict[str, Any]]:
    """RBAC, settings and the builder and deployer Deployments with their Services."""
    sa = "kl-platform"
    settings = platform_settings(options)
    env = settings.to_env()
    secret_keys = ("KL_S3_ACCESS_KEY", "KL_S3_SECRET_KEY", "KL_TOKEN")
    config = {k: v for k, v in env.items() if k not in secret_keys}
    rules = [
        {
            "apiGroups": ["serving.knative.dev"],
            "resources": ["services", "revisions", "routes", "configurations"],
            "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"],
        },
        {
            "apiGroups": ["eventing.knative.dev"],
            "resources": ["triggers", "brokers"],
            "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"],
        },
        {
            "apiGroups": ["batch"],
            "resources": ["jobs"],
            "verbs": ["get", "list", "watch", "create", "delete"],
        },
        {
            "apiGroups": [""],
            "resources": ["pods", "pods/log", "events"],
            "verbs": ["get", "list", "watch"],
        },
    ]
    out: list[dict[str, Any]] = [
        namespace(PLATFORM_NS),
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(sa, PLATFORM_NS)},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": _meta(sa),
            "rules": rules,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": _meta(sa),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": sa},
            "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": PLATFORM_NS}],
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": _meta("kl-settings", PLATFORM_NS),
            "data": config,
        },
        _secret("kl-secrets", PLATFORM_NS, {k: env[k] for k in secret_keys}),
        # Kaniko build Jobs run beside the functions and read the context from MinIO.
        _secret(
            "kl-s3-credentials",
            options.namespace,
            {"access-key": options.s3_access_key, "secret-key": options.s3_secret_key},
        ),
    ]
    component_env = {
        "builder": [{"name": "KL_BUILD_BACKEND", "value": "kaniko"}],
        "deployer": [{"name": "KL_DEPLOYER_MODE", "value": "kubernetes"}],
    }
    for component, module in (("builder", "builder"), ("deployer", "deployer")):
        name = f"kl-{component}"
        labels = {"app": name}
        container = {
            "name": component,
            "image": options.platform_image,
            "imagePullPolicy": "IfNotPresent",  # loaded with `kind load docker-image`
            "command": ["python", "-m", f"knative_lambda.platform.{module}"],
            "envFrom": [
                {"configMapRef": {"name": "kl-settings"}},
                {"secretRef": {"name": "kl-secrets"}},
            ],
            "env": component_env[component],
            "ports": [{"containerPort": 8080, "name": "http"}],
            "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}},
            "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 20},
        }
        out.append(_deployment(name, PLATFORM_NS, container, labels=labels, service_account=sa))
        out.append(_service(name, PLATFORM_NS, labels, 80, 8080))
    return out


def platform_triggers(options: KindOptions) -> list[dict[str, Any]]:
    """Builder and deployer triggers; URI subscribers since they live in another namespace."""
    common = {"namespace": options.namespace, "prefix": options.event_prefix}
    return [
        *kn.builder_triggers(
            kn.uri_subscriber(f"http://kl-builder.{PLATFORM_NS}.svc.cluster.local/"), **common
        ),
        *kn.deployer_triggers(
            kn.uri_subscriber(f"http://kl-deployer.{PLATFORM_NS}.svc.cluster.local/"), **common
        ),
    ]


def broker_ingress_host(options: KindOptions) -> str:
    """The Broker's address host, as eventing-rabbitmq sets it in ``status.address``.

    eventing-rabbitmq pkg/reconciler/broker/resources/ingress.go names the Service
    ``<broker>-broker-ingress`` in the Broker's namespace; broker.go publishes
    ``http://`` + network.GetServiceHostname(name, namespace), with no path.
    """
    return f"{kn.DEFAULT_BROKER}-broker-ingress.{options.namespace}.svc.cluster.local"


def broker_ingress_labels() -> dict[str, str]:
    """eventing-rabbitmq's IngressLabels(broker) (pkg/reconciler/broker/resources/ingress.go)."""
    return {
        "eventing.knative.dev/broker": kn.DEFAULT_BROKER,
        "eventing.knative.dev/brokerRole": "ingress",
    }


def broker_ingress_service(options: KindOptions) -> dict[str, Any]:
    """A NodePort onto the RabbitMQ broker's ingress pods, so the host can publish events."""
    selector = broker_ingress_labels()
    return _service(
        "kl-broker-ingress", options.namespace, selector, 80, 8080, node_port=INGRESS_NODE_PORT
    )


# --- the plan --------------------------------------------------------------------------


def _kubectl(*args: str) -> tuple[str, ...]:
    return ("kubectl", *args)


def _apply_url(phase: str, release: versions.Release, provides: set[str] | None = None) -> Step:
    return Step(
        phase,
        f"install {release.name}",
        "apply-url",
        _kubectl("apply", "-f", release.url),
        provides=frozenset(provides or ()),
    )


def _wait_deployments(phase: str, ns: str, timeout: str) -> Step:
    return Step(
        phase,
        f"wait for every deployment in {ns} to be available",
        "wait",
        _kubectl(
            "wait",
            "--for=condition=Available",
            "deployment",
            "--all",
            "-n",
            ns,
            f"--timeout={timeout}",
        ),
    )


def _wait_deployment(phase: str, ns: str, name: str, timeout: str) -> Step:
    return Step(
        phase,
        f"wait for deployment {name} in {ns} to be available",
        "wait",
        _kubectl(
            "wait",
            "--for=condition=Available",
            f"deployment/{name}",
            "-n",
            ns,
            f"--timeout={timeout}",
        ),
    )


def _wait_crds(phase: str, crds: list[str], timeout: str) -> Step:
    return Step(
        phase,
        "wait for the CRDs to be established",
        "wait",
        _kubectl(
            "wait",
            "--for=condition=Established",
            *[f"crd/{c}" for c in crds],
            f"--timeout={timeout}",
        ),
    )


def _patch_config_map(phase: str, what: str, name: str, data: dict[str, str]) -> Step:
    """Set ``data`` keys of a ConfigMap a release installed, leaving the rest as upstream wrote it.

    A merge patch, not an apply: ``kubectl apply`` of our ConfigMap over the one the
    release applied would drop upstream's labels, annotations and other keys (``_example``).
    """
    return Step(
        phase,
        what,
        "run",
        _kubectl(
            "patch",
            f"configmap/{name}",
            "-n",
            "knative-serving",
            "--type",
            "merge",
            "-p",
            json.dumps({"data": data}, separators=(",", ":")),
        ),
    )


def _apply(phase: str, manifest: dict[str, Any]) -> Step:
    meta = manifest["metadata"]
    where = f" in {meta['namespace']}" if meta.get("namespace") else ""
    return Step(
        phase, f"apply {manifest['kind']}/{meta['name']}{where}", "apply", manifest=manifest
    )


def plan(options: KindOptions | None = None) -> list[Step]:
    """Every step of ``up``, in order. Pure: no I/O, same options -> same plan."""
    o = options or KindOptions()
    t = o.wait_timeout
    cluster_config = to_yaml(kind_cluster_config(o))
    steps: list[Step] = [
        Step(
            "preflight",
            "check that Docker is reachable",
            "run",
            ("docker", "info", "--format", "{{.ServerVersion}}"),
        ),
        Step(
            "registry",
            "start the local image registry",
            "run",
            (
                "docker",
                "run",
                "-d",
                "--restart=always",
                "-p",
                f"127.0.0.1:{o.registry_host_port}:5000",
                "--network",
                "bridge",
                "--name",
                REGISTRY_NAME,
                versions.REGISTRY_IMAGE,
            ),
            skip_if=("docker", "inspect", REGISTRY_NAME),
        ),
        Step(
            "cluster",
            "write the kind cluster config",
            "write-file",
            (str(o.kind_config_path),),
            content=cluster_config,
        ),
        Step(
            "cluster",
            f"create kind cluster {o.cluster_name}",
            "create-cluster",
            (
                "kind",
                "create",
                "cluster",
                f"--name={o.cluster_name}",
                f"--image={versions.KIND_NODE_IMAGE}",
                f"--kubeconfig={o.kubeconfig}",
                "--config",
                str(o.kind_config_path),
            ),
        ),
        Step(
            "cluster",
            "connect the registry to the kind network",
            "run",
            ("docker", "network", "connect", "kind", REGISTRY_NAME),
            skip_if=(
                "sh",
                "-c",
                f"docker inspect -f '{{{{json .NetworkSettings.Networks.kind}}}}' {REGISTRY_NAME} | grep -qv null",
            ),
        ),
        _apply("cluster", local_registry_hosting(o)),
        Step(
            "cluster",
            "wait for the node to be ready",
            "wait",
            _kubectl("wait", "--for=condition=Ready", "node", "--all", f"--timeout={t}"),
        ),
        # cert-manager: the RabbitMQ topology operator's webhooks need certificates.
        _apply_url(
            "cert-manager",
            versions.CERT_MANAGER_RELEASE,
            {"cert-manager.io/v1 Certificate", "cert-manager.io/v1 Issuer"},
        ),
        _wait_deployments("cert-manager", "cert-manager", t),
        # Knative Serving + Kourier
        _apply_url("serving", versions.SERVING_CRDS, {kind_name(kn.SERVING_API, "Service")}),
        _wait_crds("serving", ["services.serving.knative.dev", "revisions.serving.knative.dev"], t),
        _apply_url("serving", versions.SERVING_CORE),
        # Serving's config.webhook.serving.knative.dev (failurePolicy: Fail) validates
        # config-network, config-domain and config-autoscaler, so patching them
        # before the webhook serves is refused.
        _wait_deployment("serving", "knative-serving", "webhook", t),
        _apply_url("serving", versions.KOURIER),
        _patch_config_map(
            "serving",
            "use Kourier as the ingress",
            "config-network",
            {"ingress-class": "kourier.ingress.networking.knative.dev"},
        ),
        _patch_config_map(
            "serving", f"route *.{FUNCTION_DOMAIN} to functions", "config-domain", {FUNCTION_DOMAIN: ""}
        ),
        Step(
            "serving",
            f"expose Kourier on host port {KOURIER_HOST_PORT}",
            "run",
            _kubectl(
                "patch",
                "service/kourier",
                "-n",
                "kourier-system",
                "-p",
                # strategic merge: ports merge by "port", so 443 stays as it is
                json.dumps(
                    {
                        "spec": {
                            "type": "NodePort",
                            "ports": [{"port": 80, "nodePort": KOURIER_NODE_PORT}],
                        }
                    },
                    separators=(",", ":"),
                ),
            ),
        ),
        _patch_config_map(
            "serving",
            "set the autoscaler defaults",
            "config-autoscaler",
            kn.autoscaler_config_map(scale_to_zero_grace_period=o.scale_to_zero_grace)["data"],
        ),
        _wait_deployments("serving", "knative-serving", t),
        _wait_deployments("serving", "kourier-system", t),
        # Knative Eventing
        _apply_url(
            "eventing",
            versions.EVENTING_CRDS,
            {kind_name(kn.EVENTING_API, "Broker"), kind_name(kn.EVENTING_API, "Trigger")},
        ),
        _wait_crds(
            "eventing", ["brokers.eventing.knative.dev", "triggers.eventing.knative.dev"], t
        ),
        _apply_url("eventing", versions.EVENTING_CORE),
        _wait_deployments("eventing", "knative-eventing", t),
        # RabbitMQ operators and the RabbitMQ broker
        _apply_url(
            "rabbitmq", versions.RABBITMQ_OPERATOR, {"rabbitmq.com/v1beta1 RabbitmqCluster"}
        ),
        _wait_deployments("rabbitmq", "rabbitmq-system", t),
        _apply_url("rabbitmq", versions.RABBITMQ_TOPOLOGY),
        _wait_deployments("rabbitmq", "rabbitmq-system", t),
        _apply_url(
            "rabbitmq",
            versions.RABBITMQ_BROKER,
            {kind_name(kn.RABBITMQ_BROKER_CONFIG_API, "RabbitmqBrokerConfig")},
        ),
        _wait_crds("rabbitmq", ["rabbitmqbrokerconfigs.eventing.knative.dev"], t),
        _wait_deployments("rabbitmq", "knative-eventing", t),
        _apply("rabbitmq", namespace(RABBITMQ_NS)),
        _apply("rabbitmq", rabbitmq_cluster(o)),
        Step(
            "rabbitmq",
            "wait for the RabbitMQ cluster",
            "wait",
            _kubectl(
                "wait",
                "--for=condition=AllReplicasReady",
                f"rabbitmqcluster/{RABBITMQ_CLUSTER}",
                "-n",
                RABBITMQ_NS,
                f"--timeout={t}",
            ),
        ),
        # MinIO
        *[_apply("minio", m) for m in minio_manifests(o)],
        _wait_deployments("minio", MINIO_NS, t),
        Step(
            "minio",
            "wait for the buckets",
            "wait",
            _kubectl(
                "wait",
                "--for=condition=Complete",
                "job/minio-buckets",
                "-n",
                MINIO_NS,
                f"--timeout={t}",
            ),
        ),
        # Broker
        _apply(
            "broker",
            kn.rabbitmq_broker_config(RABBITMQ_CLUSTER, RABBITMQ_NS, namespace=o.namespace),
        ),
        _apply("broker", kn.broker(namespace=o.namespace)),
        Step(
            "broker",
            "wait for the broker",
            "wait",
            _kubectl(
                "wait",
                "--for=condition=Ready",
                f"broker/{kn.DEFAULT_BROKER}",
                "-n",
                o.namespace,
                f"--timeout={t}",
            ),
        ),
        _apply("broker", broker_ingress_service(o)),
        # The reference platform
        Step(
            "platform",
            "build the platform image",
            "build-image",
            (
                "docker",
                "build",
                "-f",
                str(o.repo_root / "deploy" / "Dockerfile"),
                "-t",
                o.platform_image,
                "--build-arg",
                f"PYTHON_IMAGE={versions.PLATFORM_PYTHON_IMAGE}",
                str(o.repo_root),
            ),
        ),
        Step(
            "platform",
            "load the platform image into kind",
            "load-image",
            ("kind", "load", "docker-image", o.platform_image, "--name", o.cluster_name),
        ),
        *[_apply("platform", m) for m in platform_manifests(o)],
        *[_apply("platform", m) for m in platform_triggers(o)],
        _wait_deployments("platform", PLATFORM_NS, t),
    ]
    return steps


def manifests_of(steps: list[Step]) -> list[dict[str, Any]]:
    return [s.manifest for s in steps if s.manifest is not None]


def dry_run(options: KindOptions | None = None) -> str:
    """What ``up`` would do: a YAML stream, each step's command as a ``# $`` comment."""
    o = options or KindOptions()
    steps = plan(o)
    out = [
        f"# kl up --target kind --dry-run: {len(steps)} steps, cluster {o.cluster_name!r}",
        "# versions: " + ", ".join(f"{k}={v}" for k, v in versions.ALL_VERSIONS.items()),
    ]
    for i, step in enumerate(steps, 1):
        out.append("---")
        out.append(f"# [{i}/{len(steps)}] {step.phase}: {step.what}")
        if step.skip_if:
            out.append(
                f"# (skipped when this succeeds: {' '.join(_quote(a) for a in step.skip_if)})"
            )
        out.append(f"# $ {step.command(o)}")
        if step.manifest is not None:
            out.append(to_yaml(step.manifest).rstrip())
        elif step.action == "write-file":
            out.extend(f"# {line}" for line in step.content.rstrip().splitlines())
    return "\n".join(out) + "\n"


# --- execution ----------------------------------------------------------------------------

Progress = Callable[[str], None]


def _echo(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def download_urls(system: str, machine: str) -> dict[str, str]:
    """kind and kubectl downloads for this machine, at the pinned versions.

    pytest-kind reads its versions once, when pytest loads it as a plugin, and
    assumes amd64; these URLs (passed through its ``*_DOWNLOAD_URL`` variables)
    pin the versions and pick arm64 where needed.
    """
    arch = "arm64" if machine.lower() in ("arm64", "aarch64") else "amd64"
    system = system.lower()
    return {
        "KIND_DOWNLOAD_URL": f"https://github.com/kubernetes-sigs/kind/releases/download/{versions.KIND}/kind-{system}-{arch}",
        "KUBECTL_DOWNLOAD_URL": f"https://dl.k8s.io/release/{versions.KUBECTL}/bin/{system}/{arch}/kubectl",
    }


def _cluster(o: KindOptions) -> Any:
    """pytest-kind's KindCluster, keeping its binaries and kubeconfig in the workdir."""
    import platform

    from pytest_kind.cluster import KindCluster

    workdir = o.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    for key, url in download_urls(platform.system(), platform.machine()).items():
        os.environ.setdefault(key, url)
    cwd = Path.cwd()
    try:  # KindCluster creates ./.pytest-kind/<name>: make that the workdir's
        os.chdir(workdir)
        cluster = KindCluster(
            o.cluster_name,
            kubeconfig=workdir / "kubeconfig",
            kind_path=workdir / f"kind-{versions.KIND}",
            kubectl_path=workdir / f"kubectl-{versions.KUBECTL}",
        )
    finally:
        os.chdir(cwd)
    cluster.path = workdir / cluster.path
    return cluster


def _run(argv: tuple[str, ...], **kwargs: Any) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), capture_output=True, text=True, **kwargs)


def execute(step: Step, cluster: Any, o: KindOptions) -> None:
    """Carry out one step; raise PlatformError with the tool's own message on failure."""
    try:
        if step.skip_if and _run(step.skip_if).returncode == 0:
            return
        if step.action == "write-file":
            path = Path(step.argv[0])
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(step.content)
        elif step.action == "create-cluster":
            cluster.create(config_file=o.kind_config_path)
        elif step.action == "load-image":
            cluster.load_docker_image(o.platform_image)
        elif step.action == "apply":
            cluster.kubectl("apply", "-f", "-", input=to_yaml(step.manifest))
        elif step.argv[0] == "kubectl":
            cluster.kubectl(*step.argv[1:], stderr=subprocess.STDOUT)
        else:
            result = _run(step.argv)
            if result.returncode != 0:
                raise PlatformError(
                    f"{step.what}: {(result.stderr or result.stdout).strip()[-500:]}"
                )
    except subprocess.CalledProcessError as e:
        output = (e.output or "").strip()[-500:] if isinstance(e.output, str) else ""
        raise PlatformError(f"{step.what} failed (exit {e.returncode}): {output}") from None
    except FileNotFoundError as e:
        raise ServiceUnavailable(
            f"{step.what}: {e.filename} not found; install it and retry"
        ) from None


def state_record(options: KindOptions, phase: str = "ready") -> Any:
    """The state file's content for a kind stack (``load_target('kind')`` reads it)."""
    from knative_lambda.harness import state as statefile

    settings = statefile.settings_to_dict(host_settings(options))
    settings.update(
        kube_context=f"kind-{options.cluster_name}",
        kubeconfig=str(options.kubeconfig.resolve()),
        kind_cluster=options.cluster_name,
        domain=FUNCTION_DOMAIN,  # functions answer at <service>.<namespace>.<domain>:8080
        kind_workdir=str(options.workdir.resolve()),
    )
    return statefile.State(target="kind", settings=settings, components={"kind": {"phase": phase}})


def up(
    options: KindOptions | None = None,
    progress: Progress = _echo,
    *,
    state_path: Path | str | None = None,
) -> Settings:
    """Bring the stack up, recording it in the state file; returns the host-side Settings.

    The state is written before the first step too, so ``kl down`` can delete a
    cluster whose bring-up failed half-way.
    """
    from knative_lambda.harness import state as statefile

    o = options or KindOptions()
    if _run(("docker", "info")).returncode != 0:
        raise ServiceUnavailable(
            "the kind target needs a running Docker engine (docker info failed)"
        )
    steps = plan(o)
    cluster = _cluster(o)
    statefile.save(state_record(o, "starting"), state_path)
    start = time.monotonic()
    for i, step in enumerate(steps, 1):
        progress(f"[{i}/{len(steps)}] {step.phase}: {step.what} (+{time.monotonic() - start:.0f}s)")
        execute(step, cluster, o)
    statefile.save(state_record(o), state_path)
    progress(f"kind stack ready in {time.monotonic() - start:.0f}s; kubeconfig {o.kubeconfig}")
    return host_settings(o)


def options_from_state(state: Any) -> KindOptions:
    """The options a recorded kind stack was brought up with (enough to tear it down)."""
    settings = state.settings
    return KindOptions(
        cluster_name=settings.get("kind_cluster") or KindOptions.cluster_name,
        workdir=Path(settings.get("kind_workdir") or KindOptions.workdir),
    )


def down(
    options: KindOptions | None = None,
    progress: Progress = _echo,
    *,
    registry: bool = False,
    state_path: Path | str | None = None,
) -> None:
    """Delete the cluster (and the local registry when asked), then the state file.

    Without options, the cluster is the one recorded in the state file.
    """
    from knative_lambda.harness import state as statefile

    path = Path(state_path) if state_path else statefile.default_state_path()
    if options is None and path.exists():
        options = options_from_state(statefile.load(path))
    o = options or KindOptions()
    progress(f"deleting kind cluster {o.cluster_name}")
    try:
        _cluster(o).delete()
    except (subprocess.CalledProcessError, FileNotFoundError) as e:
        raise PlatformError(f"cannot delete kind cluster {o.cluster_name}: {e}") from None
    if registry:
        _run(("docker", "rm", "-f", REGISTRY_NAME))
    path.unlink(missing_ok=True)


def options_from(settings: Settings | None = None, **overrides: Any) -> KindOptions:
    """KindOptions carrying the user's prefix and token; unknown overrides are an error."""
    settings = settings or Settings.from_env()
    known = set(KindOptions.__dataclass_fields__)
    unknown = set(overrides) - known
    if unknown:
        raise ConfigError(f"unknown kind option(s): {', '.join(sorted(unknown))}")
    return KindOptions(event_prefix=settings.event_prefix, token=settings.token, **overrides)
