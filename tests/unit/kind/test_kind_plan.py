"""The kind target's plan: every manifest validates, the steps run in a sane order,
versions come from one place, and the dry run prints exactly the plan."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
import yaml

from knative_lambda.harness.kube import validate_manifest
from knative_lambda.harness.targets import kind, versions
from knative_lambda.platform.deployer import manifests as kn

OPTIONS = kind.KindOptions()
STEPS = kind.plan(OPTIONS)
CORE_GROUPS = ("v1", "apps/v1", "batch/v1", "rbac.authorization.k8s.io/v1")


def index(predicate) -> list[int]:
    return [i for i, s in enumerate(STEPS) if predicate(s)]


def first(predicate) -> int:
    found = index(predicate)
    assert found, "no such step"
    return found[0]


@pytest.mark.parametrize(
    "manifest", kind.manifests_of(STEPS), ids=lambda m: f"{m['kind']}-{m['metadata']['name']}"
)
def test_every_manifest_in_the_plan_validates(manifest: dict, schemas_dir: Path) -> None:
    validate_manifest(manifest, schemas_dir=schemas_dir)


def test_the_plan_installs_the_whole_stack() -> None:
    urls = " ".join(" ".join(s.argv) for s in STEPS if s.action == "apply-url")
    for release in (
        versions.SERVING_CRDS,
        versions.SERVING_CORE,
        versions.KOURIER,
        versions.EVENTING_CRDS,
        versions.EVENTING_CORE,
        versions.RABBITMQ_OPERATOR,
        versions.RABBITMQ_TOPOLOGY,
        versions.RABBITMQ_BROKER,
        versions.CERT_MANAGER_RELEASE,
    ):
        assert release.url in urls
    kinds = {(m["kind"], m["metadata"]["name"]) for m in kind.manifests_of(STEPS)}
    assert {
        ("Broker", "default"),
        ("RabbitmqBrokerConfig", "default-config"),
        ("RabbitmqCluster", "rabbitmq"),
        ("Deployment", "minio"),
        ("Deployment", "kl-builder"),
        ("Deployment", "kl-deployer"),
        ("Trigger", "kl-deployer-build-complete"),
        ("Trigger", "kl-builder-build-start"),
    } <= kinds
    assert _kubectl_step("patch", "configmap/config-autoscaler")


def test_cluster_is_created_before_anything_touches_it() -> None:
    create = first(lambda s: s.action == "create-cluster")
    assert first(lambda s: s.action == "write-file") < create
    touches = index(
        lambda s: (
            s.action in ("apply", "apply-url", "wait", "load-image") or s.argv[:1] == ("kubectl",)
        )
    )
    assert touches and min(touches) > create


def test_every_custom_resource_comes_after_its_crd_and_a_wait() -> None:
    provided: dict[str, int] = {}
    for i, step in enumerate(STEPS):
        for name in step.provides:
            provided.setdefault(name, i)
    for i, step in enumerate(STEPS):
        m = step.manifest
        if m is None or m["apiVersion"] in CORE_GROUPS:
            continue
        key = kind.kind_name(m["apiVersion"], m["kind"])
        assert key in provided, f"nothing installs the CRD of {key}"
        between = STEPS[provided[key] + 1 : i]
        assert provided[key] < i and any(s.action == "wait" for s in between), (key, i)


def test_every_release_and_deployment_apply_is_followed_by_a_wait() -> None:
    for i, step in enumerate(STEPS):
        if step.action == "apply-url" or (
            step.manifest
            and step.manifest["kind"] in ("Deployment", "Job", "RabbitmqCluster", "Broker")
        ):
            later = STEPS[i + 1 :]
            assert any(s.action == "wait" for s in later), step.what


def test_a_wait_follows_each_phase_before_the_next_phase_starts() -> None:
    phases = [s.phase for s in STEPS]
    for phase in ("cert-manager", "serving", "eventing", "rabbitmq", "minio", "broker", "platform"):
        last_of_phase = max(i for i, p in enumerate(phases) if p == phase)
        waits = [i for i, s in enumerate(STEPS) if s.phase == phase and s.action == "wait"]
        applies = [
            i
            for i, s in enumerate(STEPS)
            if s.phase == phase and s.action in ("apply", "apply-url")
        ]
        assert waits, phase
        # the last apply-url of a phase is waited for inside the phase
        urls = [i for i in applies if STEPS[i].action == "apply-url"]
        if urls:
            assert max(waits) > max(urls), phase
        assert last_of_phase >= max(waits)


def test_image_is_built_then_loaded_before_the_platform_is_deployed() -> None:
    build = first(lambda s: s.action == "build-image")
    load = first(lambda s: s.action == "load-image")
    deployments = index(
        lambda s: (
            s.manifest is not None
            and s.manifest["kind"] == "Deployment"
            and s.manifest["metadata"]["name"].startswith("kl-")
        )
    )
    assert build < load < min(deployments)
    assert "deploy/Dockerfile" in " ".join(STEPS[build].argv)
    images = {
        c["image"]
        for i in deployments
        for c in STEPS[i].manifest["spec"]["template"]["spec"]["containers"]
    }
    assert images == {OPTIONS.platform_image}
    assert OPTIONS.platform_image in STEPS[load].argv


def test_platform_deploys_after_the_broker_storage_and_serving_are_ready() -> None:
    platform = first(lambda s: s.phase == "platform")
    for phase in ("serving", "eventing", "rabbitmq", "minio", "broker"):
        assert max(i for i, s in enumerate(STEPS) if s.phase == phase) < platform


def test_registry_wiring_is_idempotent() -> None:
    for step in STEPS:
        if step.argv[:2] in (("docker", "run"), ("docker", "network")):
            assert step.skip_if, step.what


VERSION_RE = re.compile(r"\bv\d+\.\d+\.\d+\b|RELEASE\.\d{4}|knative-v\d")


def test_versions_live_only_in_versions_py() -> None:
    source = Path(kind.__file__).read_text()
    assert not VERSION_RE.findall(source), VERSION_RE.findall(source)


def test_every_versioned_reference_in_the_plan_comes_from_versions_py() -> None:
    pinned = set(versions.ALL_VERSIONS.values())
    text = kind.dry_run(OPTIONS)
    for match in set(re.findall(r"(?:releases/download/)([^/\s]+)/", text)):
        assert match in pinned, match
    for manifest in kind.manifests_of(STEPS):
        for image in re.findall(r"image: (\S+)", yaml.safe_dump(manifest)):
            assert image in pinned or image == OPTIONS.platform_image, image


def test_dry_run_prints_every_step_and_exactly_the_plans_manifests() -> None:
    text = kind.dry_run(OPTIONS)
    docs = [d for d in yaml.safe_load_all(text) if d is not None]
    assert docs == kind.manifests_of(STEPS)
    for i, step in enumerate(STEPS, 1):
        assert f"# [{i}/{len(STEPS)}] {step.phase}: {step.what}" in text
    assert "# $ kind create cluster --name=knative-lambda" in text
    assert f"# $ kubectl apply -f {versions.SERVING_CRDS.url}" in text


def test_plan_is_pure_and_follows_the_options(tmp_path: Path) -> None:
    assert kind.plan(OPTIONS) == kind.plan(OPTIONS)
    custom = kind.KindOptions(cluster_name="other", event_prefix="com.example.fn", workdir=tmp_path)
    text = kind.dry_run(custom)
    assert "--name=other" in text and "com.example.fn.build.start" in text
    assert not (tmp_path / "kind-config.yaml").exists()  # a dry run writes nothing


def test_settings_for_the_pods_and_the_host() -> None:
    inside, host = kind.platform_settings(OPTIONS), kind.host_settings(OPTIONS)
    assert (
        inside.s3_endpoint.startswith("http://minio.")
        and host.s3_endpoint == "http://127.0.0.1:9000"
    )
    assert (
        host.gateway_url == "http://127.0.0.1:8080" and host.broker_url == "http://127.0.0.1:8081"
    )
    cfg = next(m for m in kind.manifests_of(STEPS) if m["metadata"]["name"] == "kl-settings")
    assert (
        "KL_S3_SECRET_KEY" not in cfg["data"]
        and cfg["data"]["KL_EVENT_PREFIX"] == OPTIONS.event_prefix
    )


def test_kind_config_maps_the_host_ports_and_registry() -> None:
    config = kind.kind_cluster_config(OPTIONS)
    ports = {p["hostPort"] for p in config["nodes"][0]["extraPortMappings"]}
    assert ports == {8080, 9000, 8081}
    assert config["nodes"][0]["image"] == versions.KIND_NODE_IMAGE
    assert "kind-registry:5000" in config["containerdConfigPatches"][0]


def test_options_from_rejects_unknown_options() -> None:
    from knative_lambda.errors import ConfigError
    from knative_lambda.settings import Settings

    assert kind.options_from(Settings(token="t")).token == "t"
    with pytest.raises(ConfigError, match="nope"):
        kind.options_from(Settings(), nope=1)


def test_dockerfile_copies_only_what_exists() -> None:
    dockerfile = kind.REPO_ROOT / "deploy" / "Dockerfile"
    text = dockerfile.read_text()
    for line in text.splitlines():
        if line.startswith("COPY "):
            for src in line.split()[1:-1]:
                assert (kind.REPO_ROOT / src).exists(), src
    assert "ARG PYTHON_IMAGE" in text


def test_state_record_lets_later_commands_find_the_cluster(tmp_path: Path) -> None:
    from knative_lambda.harness import state as statefile

    o = kind.KindOptions(workdir=tmp_path / "kind", cluster_name="kl-test")
    statefile.save(kind.state_record(o), tmp_path / "env.json")
    loaded = statefile.load(tmp_path / "env.json")
    assert loaded.target == "kind"
    assert loaded.settings["kube_context"] == "kind-kl-test"
    assert loaded.settings["kubeconfig"] == str((tmp_path / "kind" / "kubeconfig").resolve())
    assert loaded.platform_settings().gateway_url == "http://127.0.0.1:8080"


def test_down_finds_the_cluster_from_the_state(tmp_path: Path) -> None:
    from knative_lambda.harness import state as statefile

    o = kind.KindOptions(workdir=tmp_path / "kind", cluster_name="kl-test")
    statefile.save(kind.state_record(o), tmp_path / "env.json")
    again = kind.options_from_state(statefile.load(tmp_path / "env.json"))
    assert again.cluster_name == "kl-test"
    assert again.workdir.resolve() == o.workdir.resolve()


def test_kl_up_kind_dry_run_prints_the_plan() -> None:
    from click.testing import CliRunner

    from knative_lambda.cli import cli

    result = CliRunner().invoke(cli, ["up", "--target", "kind", "--dry-run"])
    assert result.exit_code == 0, result.output
    docs = [d for d in yaml.safe_load_all(result.output) if d is not None]
    assert docs == kind.manifests_of(kind.plan(kind.KindOptions()))


# --- names and versions checked against upstream -------------------------------------
# Each expected value below was read from the upstream file named in the comment, at
# the tag pinned in versions.py (mirrors of the GitHub repositories, Nov 2026).


def test_rabbitmq_cluster_admits_the_brokers_topology_objects() -> None:
    # rabbitmq/messaging-topology-operator@v1.15.0 rabbitmqclient/cluster_reference.go:
    # AllowedNamespace refuses a reference from another namespace unless the cluster's
    # rabbitmq.com/topology-allowed-namespaces annotation lists it; eventing-rabbitmq
    # (pkg/rabbit/exchange.go) creates Exchanges/Queues in the Broker's namespace.
    custom = kind.KindOptions(namespace="fns")
    cluster = kind.rabbitmq_cluster(custom)
    assert cluster["apiVersion"] == "rabbitmq.com/v1beta1"  # cluster-operator@v2.11.0 CRD
    assert cluster["metadata"]["namespace"] != custom.namespace
    allowed = cluster["metadata"]["annotations"]["rabbitmq.com/topology-allowed-namespaces"]
    assert custom.namespace in allowed.split(",")


def test_broker_ingress_names_match_eventing_rabbitmq() -> None:
    # eventing-rabbitmq@knative-v1.16.0 pkg/reconciler/broker/resources/ingress.go:
    # Service "<broker>-broker-ingress", selector IngressLabels(broker), port 80 -> 8080;
    # broker.go sets status.address to http://<service>.<ns>.svc.cluster.local.
    o = kind.KindOptions(namespace="fns")
    service = kind.broker_ingress_service(o)
    assert service["spec"]["selector"] == {
        "eventing.knative.dev/broker": "default",
        "eventing.knative.dev/brokerRole": "ingress",
    }
    assert service["spec"]["ports"][0]["targetPort"] == 8080
    assert (
        kind.platform_settings(o).broker_url
        == "http://default-broker-ingress.fns.svc.cluster.local"
    )
    broker = next(m for m in kind.manifests_of(STEPS) if m["kind"] == "Broker")
    assert broker["metadata"]["name"] == "default"
    # pkg/apis/eventing/v1alpha1/broker_validation.go: class "RabbitMQBroker", and
    # spec.config must be a RabbitmqBrokerConfig (eventing.knative.dev/v1alpha1) or a
    # RabbitmqCluster (rabbitmq.com/v1beta1) with apiVersion, kind, name and namespace.
    assert broker["metadata"]["annotations"] == {
        "eventing.knative.dev/broker.class": "RabbitMQBroker"
    }
    config = broker["spec"]["config"]
    assert (config["apiVersion"], config["kind"]) == (
        "eventing.knative.dev/v1alpha1",
        "RabbitmqBrokerConfig",
    )
    assert config["name"] and config["namespace"]


def _kubectl_step(*words: str) -> int:
    return first(lambda s: s.argv[:1] == ("kubectl",) and all(w in s.argv for w in words))


def test_serving_config_maps_are_patched_after_the_serving_webhook_is_up() -> None:
    # knative/serving@knative-v1.16.0 config/core/webhooks/configmap-validation.yaml
    # validates config-network/config-domain (their labels match its objectSelector)
    # with failurePolicy: Fail, so the webhook must serve before they are patched.
    webhook = _kubectl_step("wait", "deployment/webhook", "knative-serving")
    core = first(lambda s: s.action == "apply-url" and s.argv[-1] == versions.SERVING_CORE.url)
    network = _kubectl_step("patch", "configmap/config-network")
    domain = _kubectl_step("patch", "configmap/config-domain")
    assert core < webhook < min(network, domain)
    # knative.dev/networking (vendored in serving 1.16) pkg/config/config.go: the key
    # is "ingress-class"; net-kourier@knative-v1.16.0 pkg/config/config.go the value.
    patch = STEPS[network].argv[-1]
    assert patch == '{"data":{"ingress-class":"kourier.ingress.networking.knative.dev"}}'
    # net-kourier config/300-gateway.yaml: Service "kourier" in kourier-system, port 80.
    assert _kubectl_step("patch", "service/kourier", "kourier-system") > webhook


def test_autoscaler_defaults_are_merged_into_servings_own_config_map(
    schemas_dir: Path,
) -> None:
    # serving-core.yaml ships config-autoscaler with labels, an example-checksum
    # annotation and an _example key; a merge patch of data only keeps all of them.
    webhook = _kubectl_step("wait", "deployment/webhook", "knative-serving")
    i = _kubectl_step("patch", "configmap/config-autoscaler")
    step = STEPS[i]
    assert i > webhook and step.action == "run"
    assert step.argv[:-1] == (
        "kubectl",
        "patch",
        "configmap/config-autoscaler",
        "-n",
        "knative-serving",
        "--type",
        "merge",
        "-p",
    )
    patch = json.loads(step.argv[-1])
    assert list(patch) == ["data"]
    expected = kn.autoscaler_config_map(scale_to_zero_grace_period=OPTIONS.scale_to_zero_grace)
    assert patch["data"] == expected["data"]
    assert patch["data"]["scale-to-zero-grace-period"] == OPTIONS.scale_to_zero_grace
    # only keys upstream documents in its _example block
    validate_manifest({**expected, "data": patch["data"]}, schemas_dir=schemas_dir)
    # nothing replaces a Serving ConfigMap wholesale
    assert not [
        m
        for m in kind.manifests_of(STEPS)
        if m["kind"] == "ConfigMap" and m["metadata"].get("namespace") == "knative-serving"
    ]


def test_dry_run_prints_the_config_map_patches_as_shell_commands() -> None:
    text = kind.dry_run(kind.KindOptions(scale_to_zero_grace="45s"))
    line = next(x for x in text.splitlines() if "configmap/config-autoscaler" in x)
    assert line.startswith("# $ kubectl patch configmap/config-autoscaler -n knative-serving ")
    assert "--type merge -p '{\"data\":{" in line
    payload = shlex.split(line.removeprefix("# $ "))[-1]
    assert json.loads(payload)["data"]["scale-to-zero-grace-period"] == "45s"
    block = next(b for b in text.split("\n---\n") if "configmap/config-autoscaler" in b)
    assert yaml.safe_load(block) is None  # comments only: no manifest to apply


def test_waits_name_upstream_resources() -> None:
    waits = " ".join(" ".join(s.argv) for s in STEPS if s.action == "wait")
    # eventing-rabbitmq config/broker/300-rabbitmqbrokerconfig.yaml
    assert "crd/rabbitmqbrokerconfigs.eventing.knative.dev" in waits
    # cluster-operator internal/status/status.go condition type
    assert "--for=condition=AllReplicasReady rabbitmqcluster/rabbitmq -n rabbitmq" in waits
    for ns in ("cert-manager", "knative-serving", "kourier-system", "knative-eventing"):
        assert f"-n {ns}" in waits
    # cluster-operator config/installation/kustomization.yaml and the topology
    # operator's manifest both install into rabbitmq-system.
    assert "-n rabbitmq-system" in waits


def _minor(tag: str) -> tuple[int, int]:
    match = re.search(r"v(\d+)\.(\d+)\.\d+", tag)
    assert match, tag
    return int(match[1]), int(match[2])


def test_pinned_versions_are_mutually_compatible() -> None:
    knative = {
        versions.KNATIVE_SERVING,
        versions.KNATIVE_NET_KOURIER,
        versions.KNATIVE_EVENTING,
        versions.EVENTING_RABBITMQ,
    }
    # Knative and its extensions release together under knative-vX.Y.Z tags; Kourier
    # must match Serving and eventing-rabbitmq must match Eventing, minor for minor.
    assert all(re.fullmatch(r"knative-v\d+\.\d+\.\d+", t) for t in knative)
    assert len({_minor(t) for t in knative}) == 1
    # kind v0.25.0 pkg/apis/config/defaults/image.go: kindest/node:v1.31.2.
    node = versions.KIND_NODE_IMAGE.split(":")[1]
    assert _minor(node) == _minor(versions.KUBECTL)
    assert f"{_minor(node)[0]}.{_minor(node)[1]}" == versions.KUBERNETES
    # knative/community mechanics/RELEASE-SCHEDULE.md: Knative 1.16 needs K8s >= 1.29.
    if _minor(versions.KNATIVE_SERVING) == (1, 16):
        assert _minor(node) >= (1, 29)


def test_release_urls_follow_the_upstream_asset_names() -> None:
    gh = "https://github.com"
    k = versions.KNATIVE_SERVING
    assert (
        versions.SERVING_CORE.url == f"{gh}/knative/serving/releases/download/{k}/serving-core.yaml"
    )
    assert versions.SERVING_CRDS.url.endswith(
        f"/knative/serving/releases/download/{k}/serving-crds.yaml"
    )
    assert versions.KOURIER.url.startswith(f"{gh}/knative/net-kourier/releases/download/knative-v")
    assert versions.EVENTING_CORE.url.endswith("/eventing-core.yaml")
    assert versions.RABBITMQ_BROKER.url == (
        f"{gh}/knative-extensions/eventing-rabbitmq/releases/download/"
        f"{versions.EVENTING_RABBITMQ}/rabbitmq-broker.yaml"
    )
    assert versions.RABBITMQ_OPERATOR.url.endswith(
        f"/{versions.RABBITMQ_CLUSTER_OPERATOR}/cluster-operator.yml"
    )
    assert versions.RABBITMQ_TOPOLOGY.url.endswith(
        f"/{versions.RABBITMQ_TOPOLOGY_OPERATOR}/messaging-topology-operator-with-certmanager.yaml"
    )
    assert versions.CERT_MANAGER_RELEASE.url == (
        f"{gh}/cert-manager/cert-manager/releases/download/{versions.CERT_MANAGER}/cert-manager.yaml"
    )
