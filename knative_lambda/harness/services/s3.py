"""S3 API providers: an external endpoint, a ``minio`` binary, a MinIO container, embedded moto.

Preference (see :func:`choose_s3`): ``KL_S3_ENDPOINT`` (+ ``KL_S3_ACCESS_KEY`` /
``KL_S3_SECRET_KEY``) if set; else ``minio`` on PATH; else a MinIO container when
Docker and the image are present; else the embedded server (moto, in a process
of its own, see :mod:`.embedded_s3`), which needs nothing but this package.
Every provider creates the platform's buckets when it starts.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from knative_lambda.errors import ConfigError, ServiceUnavailable
from knative_lambda.harness.polling import poll
from knative_lambda.harness.services import procs
from knative_lambda.harness.services.containers import Container, docker_problem
from knative_lambda.harness.services.ports import HOST, free_ports, port_open
from knative_lambda.harness.targets import versions

MINIO_IMAGE = os.environ.get("KL_MINIO_IMAGE", versions.MINIO_IMAGE)  # pinned, as the kind target
# Fixed keys for the servers we run ourselves (MinIO wants a secret of 8+ chars).
ACCESS_KEY, SECRET_KEY, REGION = "kl-access", "kl-secret", "us-east-1"
DEFAULT_BUCKETS = ("kl-source", "kl-temp")


def choose_s3(endpoint: str, minio: str | None, docker_problem: str | None) -> str:
    """Which provider kind to use: "external", "process", "container" or "embedded"."""
    if endpoint:
        return "external"
    if minio:
        return "process"
    if docker_problem is None:
        return "container"
    return "embedded"  # always possible: moto ships with this package


def boto3_client(description: dict[str, Any]) -> Any:
    """A boto3 S3 client for a provider, from its ``describe()``."""
    creds = description["credentials"]
    return boto3.client(
        "s3",
        endpoint_url=description["url"],
        aws_access_key_id=creds["access_key"],
        aws_secret_access_key=creds["secret_key"],
        region_name=creds.get("region", REGION),
        config=Config(
            retries={"max_attempts": 2},
            connect_timeout=3,
            read_timeout=10,
            s3={"addressing_style": "path"},
        ),
    )


class _S3Base:
    """What every S3 provider shares: credentials, buckets, boto3 health check."""

    name = "s3"
    kind = ""

    def __init__(
        self,
        endpoint: str,
        access_key: str,
        secret_key: str,
        region: str = REGION,
        buckets: Iterable[str] = DEFAULT_BUCKETS,
        start_timeout: float = 30.0,
    ) -> None:
        self._endpoint = endpoint
        self.credentials = {"access_key": access_key, "secret_key": secret_key, "region": region}
        self.buckets = list(buckets)
        self.start_timeout = start_timeout

    def url(self) -> str:
        return self._endpoint

    def client(self) -> Any:
        return boto3_client(self.describe())

    def health(self) -> tuple[bool, str]:
        try:
            names = {b["Name"] for b in self.client().list_buckets().get("Buckets", [])}
        except Exception as exc:  # botocore raises many unrelated types
            return False, f"S3 API at {self._endpoint} failed: {type(exc).__name__}"
        missing = [b for b in self.buckets if b not in names]
        if missing:
            return False, f"S3 API at {self._endpoint} lacks bucket(s) {', '.join(missing)}"
        return True, f"S3 API at {self._endpoint} ({self.kind}), {len(names)} bucket(s)"

    def ensure_buckets(self) -> None:
        s3 = self.client()
        existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
        for bucket in self.buckets:
            if bucket not in existing:
                s3.create_bucket(Bucket=bucket)

    def _wait_ready(self, what: str) -> None:
        def answers() -> bool:
            try:
                self.client().list_buckets()
                return True
            except Exception:
                return False

        if not poll(answers, self.start_timeout, interval=0.1):
            raise ServiceUnavailable(
                f"S3 unavailable: {what} did not answer at {self._endpoint} "
                f"within {self.start_timeout:.0f}s"
            )
        self.ensure_buckets()

    def _base_description(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "url": self._endpoint,
            "credentials": self.credentials,
            "buckets": self.buckets,
        }


class ExternalS3(_S3Base):
    """An S3 API someone else runs; start checks it answers and creates missing buckets."""

    kind = "external"

    def start(self) -> None:
        self._wait_ready("KL_S3_ENDPOINT")

    def stop(self) -> None:
        """Not ours to stop."""

    def restart(self) -> None:
        self.start()

    def describe(self) -> dict[str, Any]:
        return {**self._base_description(), "pids": {}, "ports": {}, "dirs": {}}

    @classmethod
    def from_description(cls, d: dict[str, Any]) -> ExternalS3:
        c = d["credentials"]
        return cls(
            d["url"], c["access_key"], c["secret_key"], c.get("region", REGION), d["buckets"]
        )


class _S3Process(_S3Base):
    """An S3 server process of ours (minio or embedded moto), data under ``base``."""

    def __init__(
        self,
        base: Path,
        *,
        port: int = 0,
        pids: dict[str, Any] | None = None,
        buckets: Iterable[str] = DEFAULT_BUCKETS,
        start_timeout: float = 30.0,
    ) -> None:
        self.base = Path(base).absolute()
        self.port = port or free_ports(1)[0]
        super().__init__(
            f"http://{HOST}:{self.port}", ACCESS_KEY, SECRET_KEY, REGION, buckets, start_timeout
        )
        self.pids: dict[str, Any] = pids or {}
        self.stop_grace = 30.0
        self._popen: subprocess.Popen[bytes] | None = None

    @property
    def log_file(self) -> Path:
        return self.base / f"{self.kind}-s3.log"

    def _argv(self) -> list[str]:
        raise NotImplementedError

    def _env(self) -> dict[str, str]:
        return dict(os.environ)

    @property
    def pid_file(self) -> Path:
        return self.base / "server.pid.json"

    def _server(self) -> dict[str, Any] | None:
        """The running server: as recorded, or from the pid file if another process restarted it."""
        if procs.alive(self.pids.get("server")):
            return self.pids["server"]
        with contextlib.suppress(OSError, ValueError):
            ident = json.loads(self.pid_file.read_text())
            if procs.alive(ident):
                return ident
        return None

    def start(self) -> None:
        if self._server() is not None:
            return
        if port_open(self.port):
            raise ServiceUnavailable(
                f"S3 unavailable: port {self.port} is already taken by another process"
            )
        self.base.mkdir(parents=True, exist_ok=True)
        self._popen = procs.spawn(
            self._argv(), env=self._env(), log_path=self.log_file, cwd=self.base
        )
        self.pids = {"server": procs.identity(self._popen.pid)}
        self.pid_file.write_text(json.dumps(self.pids["server"]))
        try:
            self._wait_started()
        except ServiceUnavailable as exc:
            self.stop()
            tail = procs.log_tail(self.log_file)
            raise ServiceUnavailable(
                f"{exc}; see {self.log_file}" + (f" (last line: {tail})" if tail else "")
            ) from None

    def _wait_started(self) -> None:
        self._wait_ready(self.kind)

    def stop(self) -> None:
        # Generous grace: the embedded server writes a last snapshot on SIGTERM; a
        # SIGKILL in the middle (a loaded CI box) would lose up to its last second.
        procs.terminate(self._server(), grace=self.stop_grace, popen=self._popen)
        self._popen = None
        self.pids = {}
        self.pid_file.unlink(missing_ok=True)

    def restart(self) -> None:
        self.stop()
        self.start()

    def describe(self) -> dict[str, Any]:
        return {
            **self._base_description(),
            "pids": dict(self.pids),
            "ports": {"s3": self.port},
            "dirs": {"base": str(self.base)},
        }

    @classmethod
    def from_description(cls, d: dict[str, Any]) -> _S3Process:
        return cls(
            Path(d["dirs"]["base"]), port=d["ports"]["s3"], pids=d["pids"], buckets=d["buckets"]
        )


class EmbeddedS3(_S3Process):
    """moto's S3 API in its own process, snapshotted to ``base/snapshot``.

    A changed store is snapshotted about once a second and on SIGTERM, so a restart
    keeps every object and a SIGKILL loses at most the last second or so of changes
    (see :mod:`.embedded_s3`).
    """

    kind = "embedded"

    @property
    def ready_file(self) -> Path:
        return self.base / "ready"

    def _argv(self) -> list[str]:
        self.ready_file.unlink(missing_ok=True)
        return [
            sys.executable,
            "-m",
            "knative_lambda.harness.services.embedded_s3",
            "--port",
            str(self.port),
            "--data-dir",
            str(self.base),
            "--ready-file",
            str(self.ready_file),
        ]

    def _wait_started(self) -> None:
        # The port opens before the snapshot is loaded: wait for the ready file.
        def ready() -> bool:
            if self._popen is not None and self._popen.poll() is not None:
                raise ServiceUnavailable(
                    "S3 unavailable: the embedded S3 server exited during startup"
                )
            return self.ready_file.exists()

        if not poll(ready, self.start_timeout, interval=0.05):
            raise ServiceUnavailable(
                f"S3 unavailable: the embedded S3 server was not ready "
                f"within {self.start_timeout:.0f}s"
            )
        self._wait_ready("embedded S3")


class MinioProcess(_S3Process):
    """A ``minio server`` on a free port; data on disk under ``base/data``."""

    kind = "process"

    def __init__(self, base: Path, minio: str = "minio", **kw: Any) -> None:
        super().__init__(base, **kw)
        self.minio = minio

    def _argv(self) -> list[str]:
        return [
            self.minio,
            "server",
            str(self.base / "data"),
            "--address",
            f"{HOST}:{self.port}",
            "--console-address",
            f"{HOST}:{free_ports(1)[0]}",
            "--quiet",
        ]

    def _env(self) -> dict[str, str]:
        return {**os.environ, "MINIO_ROOT_USER": ACCESS_KEY, "MINIO_ROOT_PASSWORD": SECRET_KEY}

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "minio": self.minio}

    @classmethod
    def from_description(cls, d: dict[str, Any]) -> MinioProcess:
        return cls(
            Path(d["dirs"]["base"]),
            d.get("minio", "minio"),
            port=d["ports"]["s3"],
            pids=d["pids"],
            buckets=d["buckets"],
        )


class MinioContainer(_S3Base):
    """MinIO in a container (the image must be present locally); data lives in the container."""

    kind = "container"

    def __init__(
        self,
        image: str = MINIO_IMAGE,
        port: int = 0,
        container_id: str = "",
        buckets: Iterable[str] = DEFAULT_BUCKETS,
    ) -> None:
        self.port = port or free_ports(1)[0]
        super().__init__(
            f"http://{HOST}:{self.port}", ACCESS_KEY, SECRET_KEY, REGION, buckets, 60.0
        )
        self.container = Container(
            image,
            {9000: self.port},
            {"MINIO_ROOT_USER": ACCESS_KEY, "MINIO_ROOT_PASSWORD": SECRET_KEY},
            command=["server", "/data"],
            container_id=container_id,
        )

    def start(self) -> None:
        if not self.container.container_id:
            self.container.run()
        self._wait_ready("MinIO container")

    def stop(self) -> None:
        self.container.remove()

    def restart(self) -> None:
        self.container.restart()
        self._wait_ready("MinIO container")

    def describe(self) -> dict[str, Any]:
        return {
            **self._base_description(),
            "pids": {},
            "ports": {"s3": self.port},
            "dirs": {},
            "image": self.container.image,
            "container_id": self.container.container_id,
        }

    @classmethod
    def from_description(cls, d: dict[str, Any]) -> MinioContainer:
        return cls(d["image"], d["ports"]["s3"], d["container_id"], d["buckets"])


def pick_s3(
    endpoint: str,
    access_key: str,
    secret_key: str,
    region: str,
    buckets: Iterable[str],
    data_dir: Path,
    env: Mapping[str, str] | None = None,
) -> _S3Base:
    """Pick and build (not start) the preferred S3 provider."""
    env = os.environ if env is None else env
    minio = None if endpoint else shutil.which("minio", path=env.get("PATH", ""))
    problem = None if endpoint or minio else docker_problem(MINIO_IMAGE)
    kind = choose_s3(endpoint, minio, problem)
    if kind == "external":
        if not (access_key and secret_key):
            raise ConfigError(
                "KL_S3_ENDPOINT is set but KL_S3_ACCESS_KEY / KL_S3_SECRET_KEY are empty; set both"
            )
        return ExternalS3(endpoint, access_key, secret_key, region or REGION, buckets)
    if kind == "process":
        return MinioProcess(Path(data_dir) / "minio", minio or "minio", buckets=buckets)
    if kind == "container":
        return MinioContainer(buckets=buckets)
    return EmbeddedS3(Path(data_dir) / "s3", buckets=buckets)
