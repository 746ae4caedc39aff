"""S3 providers against real processes: the session server, embedded restart, attach, failures."""

from __future__ import annotations

import json
import os
import signal
import socket
from pathlib import Path

import pytest

from knative_lambda.errors import ConfigError, ServiceUnavailable
from knative_lambda.harness.polling import poll
from knative_lambda.harness.services import attach, boto3_client, resolve_s3
from knative_lambda.harness.services.base import Service
from knative_lambda.harness.services.ports import free_port
from knative_lambda.harness.services.procs import alive
from knative_lambda.harness.services.s3 import EmbeddedS3, ExternalS3


def test_buckets_exist_after_start(s3: Service, s3_client) -> None:
    names = {b["Name"] for b in s3_client.list_buckets()["Buckets"]}
    assert {"kl-source", "kl-temp"} <= names
    assert isinstance(s3, Service)
    ok, detail = s3.health()
    assert ok, detail


def test_put_get_list(s3_client) -> None:
    s3_client.put_object(
        Bucket="kl-source", Key="global/parser/p-s3-test", Body=b"def handle(e): ..."
    )
    body = s3_client.get_object(Bucket="kl-source", Key="global/parser/p-s3-test")["Body"].read()
    assert body == b"def handle(e): ..."
    listed = s3_client.list_objects_v2(Bucket="kl-source", Prefix="global/parser/")["Contents"]
    assert "global/parser/p-s3-test" in [o["Key"] for o in listed]


def test_settings_fixture_points_at_the_services(
    service_settings, amqp_url: str, s3: Service
) -> None:
    assert service_settings.amqp_url == amqp_url
    assert service_settings.s3_endpoint == s3.url()
    client = boto3_client(
        {
            "url": service_settings.s3_endpoint,
            "credentials": {
                "access_key": service_settings.s3_access_key,
                "secret_key": service_settings.s3_secret_key,
                "region": service_settings.s3_region,
            },
        }
    )
    client.head_bucket(Bucket=service_settings.source_bucket)
    client.head_bucket(Bucket=service_settings.temp_bucket)


def test_without_minio_or_docker_the_embedded_server_is_chosen(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    service = resolve_s3({"PATH": str(tmp_path), "KL_SOURCE_BUCKET": "src-x"}, tmp_path)
    assert isinstance(service, EmbeddedS3)
    assert service.buckets == ["src-x", "kl-temp"]


def test_embedded_restart_keeps_objects_and_attach_stops_it(tmp_path) -> None:
    service = EmbeddedS3(tmp_path / "s3", buckets=["b-one", "b-two"])
    service.start()
    stale = json.loads(json.dumps(service.describe()))  # as the state file holds it
    current = stale["pids"]["server"]
    try:
        client = service.client()
        client.put_object(Bucket="b-one", Key="a/b.txt", Body=b"kept", ContentType="text/plain",
                          Metadata={"parser-id": "p1"})
        client.create_bucket(Bucket="b-extra")
        service.restart()
        assert service.url() == stale["url"]
        obj = boto3_client(service.describe()).get_object(Bucket="b-one", Key="a/b.txt")
        assert obj["Body"].read() == b"kept" and obj["ContentType"] == "text/plain"
        assert obj["Metadata"] == {"parser-id": "p1"}
        assert "b-extra" in {b["Name"] for b in service.client().list_buckets()["Buckets"]}

        attach(stale).restart()  # another process restarts it: new pid, same URL and data
        current = json.loads((tmp_path / "s3" / "server.pid.json").read_text())
        assert current["pid"] != stale["pids"]["server"]["pid"]
        assert service.client().get_object(Bucket="b-one", Key="a/b.txt")["Body"].read() == b"kept"
    finally:
        attach(stale).stop()  # the stale description still finds the running server
    assert not alive(current) and not alive(stale["pids"]["server"])
    assert not attach(stale).health()[0]


def test_embedded_port_taken_is_one_line(tmp_path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        taken = sock.getsockname()[1]
        with pytest.raises(ServiceUnavailable) as err:
            EmbeddedS3(tmp_path / "s3", port=taken).start()
    assert "\n" not in str(err.value) and str(taken) in str(err.value)


def test_external_endpoint_unreachable_is_one_line(tmp_path) -> None:
    env = {
        "KL_S3_ENDPOINT": f"http://127.0.0.1:{free_port()}",
        "KL_S3_ACCESS_KEY": "a",
        "KL_S3_SECRET_KEY": "b",
    }
    service = resolve_s3(env, tmp_path)
    assert isinstance(service, ExternalS3)
    service.start_timeout = 0.5
    with pytest.raises(ServiceUnavailable) as err:
        service.start()
    assert "\n" not in str(err.value)


def test_external_endpoint_without_keys_is_a_config_error(tmp_path) -> None:
    with pytest.raises(ConfigError, match="KL_S3_ACCESS_KEY"):
        resolve_s3({"KL_S3_ENDPOINT": "http://127.0.0.1:9"}, tmp_path)


def test_external_endpoint_is_used_as_is(s3: Service, tmp_path) -> None:
    creds = s3.describe()["credentials"]
    env = {
        "KL_S3_ENDPOINT": s3.url(),
        "KL_S3_ACCESS_KEY": creds["access_key"],
        "KL_S3_SECRET_KEY": creds["secret_key"],
    }
    external = resolve_s3(env, tmp_path)
    external.start()  # answers, buckets already there
    assert external.health()[0]
    external.stop()  # not ours: the session server keeps running
    assert s3.health()[0]


def _snapshot_keys(base: Path) -> set[str]:
    """Keys in the embedded server's last complete snapshot (the manifest is renamed in)."""
    try:
        manifest = json.loads((base / "snapshot" / "manifest.json").read_text())
    except FileNotFoundError:
        return set()
    return {o["key"] for o in manifest["objects"]}


def _sigkill(service: EmbeddedS3) -> None:
    ident = service.describe()["pids"]["server"]
    os.kill(ident["pid"], signal.SIGKILL)
    assert poll(lambda: not alive(ident), 5, interval=0.05)


def test_embedded_sigkill_keeps_what_the_periodic_snapshot_saw(tmp_path) -> None:
    base = tmp_path / "s3"
    service = EmbeddedS3(base, buckets=["b-kill"])
    again = EmbeddedS3(base, port=service.port, buckets=["b-kill"])
    service.start()
    try:
        client = service.client()
        client.put_object(Bucket="b-kill", Key="k/one", Body=b"1", ContentType="text/plain")
        client.put_object(Bucket="b-kill", Key="k/two", Body=b"2" * 5000)
        client.put_object(Bucket="b-kill", Key="gone", Body=b"only in the deleted object")
        assert poll(lambda: _snapshot_keys(base) == {"k/one", "k/two", "gone"}, 5, interval=0.05)
        bodies = set((base / "snapshot" / "objects").iterdir())
        client.delete_object(Bucket="b-kill", Key="gone")
        client.copy_object(Bucket="b-kill", Key="k/three", CopySource="b-kill/k/one")
        assert poll(lambda: _snapshot_keys(base) == {"k/one", "k/two", "k/three"}, 5, interval=0.05)
        # Bodies are content-addressed: the copy reuses k/one's file, the deleted body is gone.
        assert set((base / "snapshot" / "objects").iterdir()) < bodies
        _sigkill(service)

        again.start()  # as `kl up` after a crash: same data dir and port
        s3 = again.client()
        listed = s3.list_objects_v2(Bucket="b-kill")["Contents"]
        assert sorted(o["Key"] for o in listed) == ["k/one", "k/three", "k/two"]
        one = s3.get_object(Bucket="b-kill", Key="k/one")
        assert one["Body"].read() == b"1" and one["ContentType"] == "text/plain"
        assert s3.get_object(Bucket="b-kill", Key="k/two")["Body"].read() == b"2" * 5000
        assert s3.get_object(Bucket="b-kill", Key="k/three")["Body"].read() == b"1"
    finally:
        service.stop()  # reaps the killed process; the pid file names the new one
        again.stop()


def test_embedded_app_marks_only_mutating_requests() -> None:
    # Pins what embedded_s3 takes from moto: its WSGI app, wrapped by our tracker.
    from werkzeug.test import Client

    from knative_lambda.harness.services.embedded_s3 import moto_app

    app = moto_app()
    http = Client(app)
    auth = {
        "Authorization": "AWS4-HMAC-SHA256 Credential=kl-access/20240101/us-east-1/s3/"
        "aws4_request, SignedHeaders=host, Signature=0"
    }
    bucket = f"/pin-{os.getpid()}"
    assert http.get("/", headers=auth).status_code == 200
    assert not app.dirty.is_set()
    assert http.put(bucket, headers=auth).status_code == 200
    assert app.dirty.is_set()
    app.dirty.clear()
    assert http.get(bucket, headers=auth).status_code == 200
    assert not app.dirty.is_set()
    assert http.delete(bucket, headers=auth).status_code == 204
    assert app.dirty.is_set()
