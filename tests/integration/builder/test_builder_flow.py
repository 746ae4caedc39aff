"""The builder end to end over a real S3 API, real uv/npm/node processes, no mocks."""

from __future__ import annotations

import asyncio
import io
import tarfile
import uuid

import pytest

from knative_lambda.contract.events import BuildRequest, BuildResult
from knative_lambda.platform.builder import artifact
from knative_lambda.settings import Settings

from .conftest import example, tar_gz

TP = "acme"


def request(parser: str, **kw) -> BuildRequest:
    return BuildRequest(TP, parser, **kw)


def assert_contract(result) -> None:
    # every DESIGN §2 field, valid per the contract model
    BuildResult.from_dict(result.to_dict())


@pytest.mark.parametrize(
    "source, event, expected",
    [
        (b"def handle(event):\n    return {'hi': event['name']}\n", {"name": "ada"}, {"hi": "ada"}),
        (example("python-hello"), {"name": "bob"}, {"message": "hello, bob", "runtime": "python"}),
        (example("python-async"), {"x": 1}, {"message": "hello from async", "echo": {"x": 1}}),
        (example("python-deps"), {"text": "t"}, {"six": "1.17.0", "text": "t"}),
        (example("node-hello"), {"name": "cy"}, {"message": "hello, cy", "runtime": "node"}),
        (example("node-parse"), {"items": [1, 2]}, {"count": 2, "eventEntries": [{"value": 1}, {"value": 2}]}),
        (b"module.exports = { handle: (e) => ({ n: e.n + 1 }) };\n", {"n": 1}, {"n": 2}),
    ],
    ids=["py-file", "py-hello", "py-async", "py-deps", "node-hello", "node-parse", "node-file"],
)
async def test_function_builds_and_its_artifact_runs(make_builder, upload, source, event, expected) -> None:
    builder = make_builder()
    parser = upload(source)
    result = await builder.handle(request(parser))
    assert result.status == "succeeded", result.error_message
    assert_contract(result)
    assert result.exit_code == 0 and not result.cached and result.image_uri.endswith(result.content_hash[:8])
    assert result.job_name == f"build-{TP}-{parser}-{result.content_hash[:8]}"
    path = builder.store.path(result.artifact)
    assert (path / "manifest.json").is_file()
    assert await asyncio.to_thread(artifact.invoke, path, event) == expected


async def test_context_is_uploaded_to_the_temp_bucket(make_builder, upload, s3_client, builder_settings) -> None:
    parser = upload(example("python-deps"))
    result = await make_builder().handle(request(parser))
    assert result.status == "succeeded"
    obj = s3_client.get_object(Bucket=builder_settings.temp_bucket, Key=f"build-context/{parser}/context.tar.gz")
    with tarfile.open(fileobj=io.BytesIO(obj["Body"].read()), mode="r:gz") as tar:
        names = set(tar.getnames())
    assert {"Dockerfile", "build-config.json", "requirements.txt", "function/handler.py"} <= names


async def test_cached_rebuild_does_no_work_and_rebuild_start_forces(make_builder, upload) -> None:
    builder = make_builder()
    parser = upload(example("python-deps"))
    first = await builder.handle(request(parser))
    assert first.status == "succeeded" and not first.cached and builder.builds_done == 1
    again = await builder.handle(request(parser))
    assert again.status == "succeeded" and again.cached and builder.builds_done == 1
    assert again.artifact == first.artifact
    forced = await builder.handle(request(parser), kind="rebuild.start")
    assert forced.status == "succeeded" and not forced.cached and builder.builds_done == 2
    assert artifact.invoke(builder.store.path(forced.artifact), {})["six"] == "1.17.0"


async def test_concurrent_requests_for_the_same_code_build_once(make_builder, upload) -> None:
    builder = make_builder()
    parser = upload(example("node-hello"))
    results = await asyncio.gather(*(builder.handle(request(parser)) for _ in range(6)))
    assert all(r.status == "succeeded" for r in results)
    assert builder.builds_done == 1
    assert sorted(r.cached for r in results) == [False] + [True] * 5


async def test_concurrency_limit_holds_under_20_simultaneous_builds(make_builder, upload) -> None:
    builder = make_builder(max_concurrent=3)
    parsers = [upload(f"def handle(event):\n    return {i}\n".encode()) for i in range(20)]
    results = await asyncio.gather(*(builder.handle(request(p)) for p in parsers))
    assert [r.status for r in results] == ["succeeded"] * 20
    assert 1 <= builder.gate.peak <= 3
    assert builder.builds_done == 20 and builder.gate.running == 0


@pytest.mark.parametrize(
    "source, message",
    [
        (example("python-syntax-error"), r"syntax error in handler.py line 2: '\{' was never closed"),
        (b"def handle(event):\n    return [1,\n", r"syntax error in handler.py line 2"),
        (b"module.exports = {\n  handle: () => {\n    return (;\n  }\n};\n", r"syntax error in index.js line 3"),
        (tar_gz({"handler.py": b"def handle(e):\n    return 1\n", "requirements.txt": b"six==999.0\n"}),
         r"installing requirements.txt failed: .*six==999\.0.*unsatisfiable"),
        (tar_gz({"handler.py": b"def handle(e):\n    return 1\n", "requirements.txt": b"kl-no-such-package-zz\n"}),
         r"installing requirements.txt failed: .*kl-no-such-package-zz was not found"),
        (tar_gz({"README.md": b"hi"}), "no function found"),
        (tar_gz({"handler.py": b"def other(e):\n    pass\n"}), "defines no top-level handle"),
        (b"\xff\xfe\x00binary", "neither an archive"),
    ],
    ids=["example", "py-file", "node", "bad-version", "unknown-package", "no-function", "no-handle", "binary"],
)
async def test_bad_functions_fail_with_a_message_to_act_on(make_builder, upload, source, message) -> None:
    result = await make_builder().handle(request(upload(source)))
    assert result.status == "failed" and result.exit_code != 0
    assert result.image_uri == ""
    assert_contract(result)
    assert result.error_message
    import re

    assert re.search(message, result.error_message), result.error_message


HOSTILE_TARS = {
    "traversal": [("../../escape.py", tarfile.REGTYPE, "")],
    "absolute": [("/tmp/kl-escape.py", tarfile.REGTYPE, "")],
    "symlink-out": [("handler.py", tarfile.SYMTYPE, "/etc/passwd")],
    "hardlink": [("handler.py", tarfile.LNKTYPE, "/etc/passwd")],
    "device": [("dev", tarfile.CHRTYPE, "")],
    "fifo": [("pipe", tarfile.FIFOTYPE, "")],
}


def hostile(entries) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        ok = tarfile.TarInfo("ok.py")
        ok.size = 0
        tar.addfile(ok, io.BytesIO(b""))
        for name, type_, link in entries:
            info = tarfile.TarInfo(name)
            info.type, info.linkname = type_, link
            tar.addfile(info, io.BytesIO(b""))
    return buffer.getvalue()


@pytest.mark.parametrize("name", sorted(HOSTILE_TARS))
async def test_hostile_archives_give_build_failed(make_builder, upload, name, tmp_path) -> None:
    builder = make_builder()
    result = await builder.handle(request(upload(hostile(HOSTILE_TARS[name]))))
    assert result.status == "failed" and result.exit_code == 3, result.error_message
    assert "archive entry" in result.error_message
    assert not [p for p in builder.store.root.iterdir() if p.name.startswith(".tmp")]  # staging cleaned


@pytest.mark.parametrize(
    "overrides, files, message",
    [
        ({"max_entries": 5}, {f"f{i}.py": b"" for i in range(6)}, "more than 5 entries"),
        ({"max_bytes": 4096}, {"big.bin": b"x" * 5000, "handler.py": b""}, "more than 4096 bytes"),
        ({"max_ratio": 10.0}, {"zeros.bin": b"\0" * 3_000_000, "handler.py": b""}, "compression bomb"),
    ],
    ids=["count", "size", "ratio"],
)
async def test_bombs_give_build_failed(make_builder, upload, overrides, files, message) -> None:
    result = await make_builder(**overrides).handle(request(upload(tar_gz(files))))
    assert result.status == "failed" and message in result.error_message, result.error_message


async def test_missing_object_and_missing_bucket(make_builder, builder_settings: Settings) -> None:
    result = await make_builder().handle(request(f"p-{uuid.uuid4().hex[:8]}"))
    assert result.status == "failed" and "no source object s3://" in result.error_message
    assert_contract(result)
    from knative_lambda.platform.builder.service import Builder
    from tests.integration.builder.conftest import TEST_CONFIG

    nobucket = Builder(Settings(**(builder_settings.__dict__ | {"source_bucket": "kl-no-such-bucket"})), TEST_CONFIG)
    result = await nobucket.handle(request("p1"))
    assert result.status == "failed" and "source bucket 'kl-no-such-bucket' does not exist" in result.error_message


async def test_timeout_kills_the_build_and_reports_timeout(make_builder, upload) -> None:
    builder = make_builder(timeout_s=0.001)
    result = await builder.handle(request(upload(example("python-deps"))))
    assert result.status == "timeout" and result.exit_code == 124, result.error_message
    assert "timeout of 0.001s" in result.error_message and "killed" in result.error_message
    assert_contract(result)
    assert builder.builds_done == 0 and builder.store.lookup(result.artifact or "none") is None


async def test_backoff_window_after_a_failure(make_builder, upload) -> None:
    builder = make_builder(backoff_s=300)
    broken = upload(b"def handle(event):\n    return (\n")
    first = await builder.handle(request(broken))
    assert first.status == "failed" and "syntax error" in first.error_message
    second = await builder.handle(request(broken))
    assert second.status == "failed" and second.exit_code == 75
    assert "backoff window" in second.error_message and "retry after" in second.error_message
    assert "syntax error" in second.error_message  # the last error is repeated
    fixed = upload(b"def handle(event):\n    return 1\n", parser_id=broken)  # new code builds at once
    assert (await builder.handle(request(fixed))).status == "succeeded"


async def test_job_start_priority_and_runtime_hint(make_builder, upload) -> None:
    builder = make_builder()
    parser = upload(b"x = 1\ndef handle(e):\n    return 'py'\n", metadata={"filename": "fn.py"})
    result = await builder.handle(request(parser, priority=9), kind="job.start")
    assert result.status == "succeeded" and result.runtime == "python"
    record = builder.log.get(result.correlation_id)
    assert record.priority == 9 and record.phase == "done"
