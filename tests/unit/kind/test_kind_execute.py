"""The kind target's executor on steps that need no cluster (real processes, no mocks)."""

from __future__ import annotations

from pathlib import Path

import pytest

from knative_lambda.errors import PlatformError, ServiceUnavailable
from knative_lambda.harness.targets import kind, versions


def options(tmp_path: Path) -> kind.KindOptions:
    return kind.KindOptions(workdir=tmp_path / "kind")


def test_write_file_step_writes_the_kind_config(tmp_path: Path) -> None:
    o = options(tmp_path)
    step = next(s for s in kind.plan(o) if s.action == "write-file")
    kind.execute(step, None, o)
    assert o.kind_config_path.read_text() == step.content
    assert versions.KIND_NODE_IMAGE in step.content


def test_a_failing_command_raises_with_its_output(tmp_path: Path) -> None:
    step = kind.Step("x", "do the thing", "run", ("sh", "-c", "echo nope >&2; exit 3"))
    with pytest.raises(PlatformError, match="do the thing: nope"):
        kind.execute(step, None, options(tmp_path))


def test_a_missing_tool_says_what_to_install(tmp_path: Path) -> None:
    step = kind.Step("x", "use a tool", "run", ("kl-no-such-tool-xyz", "--version"))
    with pytest.raises(ServiceUnavailable, match="kl-no-such-tool-xyz not found"):
        kind.execute(step, None, options(tmp_path))


def test_skip_if_success_skips_the_step(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    step = kind.Step("x", "once", "run", ("touch", str(marker)), skip_if=("true",))
    kind.execute(step, None, options(tmp_path))
    assert not marker.exists()
    kind.execute(
        kind.Step("x", "once", "run", ("touch", str(marker)), skip_if=("false",)),
        None,
        options(tmp_path),
    )
    assert marker.exists()


@pytest.mark.parametrize(
    ("system", "machine", "suffix"),
    [
        ("Linux", "x86_64", "linux-amd64"),
        ("Linux", "aarch64", "linux-arm64"),
        ("Darwin", "arm64", "darwin-arm64"),
    ],
)
def test_downloads_are_pinned_and_match_the_machine(system: str, machine: str, suffix: str) -> None:
    urls = kind.download_urls(system, machine)
    assert urls["KIND_DOWNLOAD_URL"].endswith(f"/{versions.KIND}/kind-{suffix}")
    assert (
        f"/{versions.KUBECTL}/bin/{suffix.replace('-', '/')}/kubectl"
        in urls["KUBECTL_DOWNLOAD_URL"]
    )


def test_cluster_handle_keeps_everything_in_the_workdir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in ("KIND_DOWNLOAD_URL", "KUBECTL_DOWNLOAD_URL"):  # restored after the test
        monkeypatch.setenv(key, "http://127.0.0.1:9/unused")
    o = options(tmp_path)
    cluster = kind._cluster(o)
    workdir = o.workdir.resolve()
    for path in (cluster.path, cluster.kind_path, cluster.kubectl_path, cluster.kubeconfig_path):
        assert Path(path).is_relative_to(workdir), path
