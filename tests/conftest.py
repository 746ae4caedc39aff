"""Shared fixtures: one RabbitMQ and one S3 API server for the whole test session.

``rabbitmq`` honours ``KL_AMQP_URL`` and ``s3`` honours ``KL_S3_ENDPOINT`` (+ keys):
set them to test against servers you already run. Otherwise a private RabbitMQ
node and an S3 server (minio if on PATH, else the embedded moto server) are
started once and stopped at the end. When no RabbitMQ can be had at all, tests
that need it are skipped with the one-line reason; a server that is there but
fails to start is an error.

Also shared: ``schemas_dir`` (the Knative CRD schemas manifests are validated
against), ``serve_app`` (an aiohttp app on a free local port), ``Conn`` (a raw
HTTP/1.1 client connection, for the front servers), and for tests that run a
platform part as a subprocess, ``wait_healthz`` and ``stop_popen`` (import them:
``from tests.conftest import ...``).
"""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web

from knative_lambda.bench.functions import tar_gz  # noqa: F401 - tests import it from here
from knative_lambda.errors import ServiceUnavailable
from knative_lambda.harness.kube import knative_schemas_dir
from knative_lambda.harness.polling import poll
from knative_lambda.harness.services import (
    Service,
    boto3_client,
    resolve_rabbitmq,
    resolve_s3,
    with_services,
)
from knative_lambda.harness.services.ports import HOST, free_port
from knative_lambda.settings import Settings


@pytest.fixture(scope="session")
def rabbitmq(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    try:
        service = resolve_rabbitmq(os.environ, tmp_path_factory.mktemp("rabbitmq"))
    except ServiceUnavailable as exc:
        pytest.skip(str(exc))
    service.start()
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture(scope="session")
def amqp_url(rabbitmq: Service) -> str:
    return rabbitmq.url()


@pytest.fixture(scope="session")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    service = resolve_s3(os.environ, tmp_path_factory.mktemp("s3"))
    service.start()
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture(scope="session")
def s3_client(s3: Service) -> Any:
    """A boto3 S3 client for the session's S3 server (buckets kl-source and kl-temp exist)."""
    return boto3_client(s3.describe())


@pytest.fixture(scope="session")
def service_settings(
    rabbitmq: Service, s3: Service, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    """Settings pointing at the session's RabbitMQ and S3 (other fields at their defaults)."""
    source, temp = s3.describe()["buckets"]
    base = Settings(
        source_bucket=source, temp_bucket=temp, data_dir=tmp_path_factory.mktemp("kl-data")
    )
    return with_services(base, rabbitmq, s3)


@pytest.fixture(scope="session")
def schemas_dir() -> Path:
    found = knative_schemas_dir()
    if found is None:
        pytest.skip(
            "Knative CRD schemas not found: set KL_SCHEMAS_DIR or check out shared/ beside the repo"
        )
    return found


@pytest.fixture
async def serve_app() -> AsyncIterator[Callable[[web.Application], Awaitable[str]]]:
    """``await serve_app(app)`` serves ``app`` on a free local port and returns its base URL;
    every app served is cleaned up after the test."""
    runners: list[web.AppRunner] = []

    async def serve(app: web.Application) -> str:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        runners.append(runner)
        port = free_port()
        await web.TCPSite(runner, HOST, port).start()
        return f"http://{HOST}:{port}"

    yield serve
    for runner in runners:
        await runner.cleanup()


def stop_popen(proc: subprocess.Popen[Any], grace: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if it is still running after ``grace`` seconds."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def wait_healthz(proc: subprocess.Popen[bytes], url: str, name: str, log: Path,
                 timeout: float = 30.0) -> None:
    """Wait until ``url``/healthz answers 200; if ``proc`` exits or ``timeout`` passes
    first, stop it and fail with the tail of its ``log``."""

    def tail() -> str:
        return log.read_text(errors="replace")[-2000:] if log.exists() else ""

    def healthy() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"{name} exited {proc.returncode}: {tail()}")
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200

    if not poll(healthy, timeout, interval=0.1, ignore=(httpx.HTTPError,)):
        stop_popen(proc)
        raise AssertionError(f"{name} not healthy in {timeout:g} s: {tail()}")


class Conn:
    """A raw HTTP/1.1 client connection: write bytes, read whole responses."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.buf = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> bool:
        data = self.sock.recv(65536)
        self.buf += data
        return bool(data)

    def response(self, head: bool = False) -> tuple[str, dict[str, str], bytes]:
        """(status line, headers lower-cased, body framed by Content-Length; none for HEAD)."""
        while b"\r\n\r\n" not in self.buf:
            assert self._fill(), f"connection closed before a response head: {self.buf!r}"
        raw, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = raw.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
        size = 0 if head or lines[0].split()[1].startswith("1") else int(headers.get("content-length", "0"))
        while len(self.buf) < size:
            assert self._fill(), "connection closed inside a response body"
        body, self.buf = self.buf[:size], self.buf[size:]
        return lines[0], headers, body

    def closed(self) -> bool:
        """The server closed the connection (nothing more after what was read)."""
        try:
            return not self.buf and not self._fill()
        except ConnectionResetError:
            return True

    def close(self) -> None:
        self.sock.close()
