"""The embedded S3 API server: moto's server in a process of its own.

Run as ``python -m knative_lambda.harness.services.embedded_s3 --port N [--data-dir D]``.
A process of its own (not a thread of the CLI) so that ``kl up`` can leave it
running and ``restart`` really restarts it.

moto keeps objects in memory. With ``--data-dir`` the server writes every bucket
and object to ``D/snapshot`` when it is stopped with SIGTERM/SIGINT and loads
them back on start, so a ``restart`` keeps data. A SIGKILL loses what changed
since the last start (as a crashed disk-less server would).
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

ACCESS_KEY, SECRET_KEY, REGION = "kl-access", "kl-secret", "us-east-1"


def client(port: int) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{port}",
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name=REGION,
        config=Config(retries={"max_attempts": 1}),
    )


def dump(s3: Any, snapshot: Path) -> int:
    """Write every bucket and object to ``snapshot``; return the object count."""
    objects_dir = snapshot / "objects"
    objects_dir.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, Any] = {"buckets": [], "objects": []}
    for bucket in s3.list_buckets().get("Buckets", []):
        name = bucket["Name"]
        manifest["buckets"].append(name)
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
            for item in page.get("Contents", []):
                obj = s3.get_object(Bucket=name, Key=item["Key"])
                file = f"{len(manifest['objects'])}.bin"
                (objects_dir / file).write_bytes(obj["Body"].read())
                manifest["objects"].append(
                    {
                        "bucket": name,
                        "key": item["Key"],
                        "file": file,
                        "content_type": obj.get("ContentType", ""),
                    }
                )
    tmp = snapshot / "manifest.json.tmp"
    tmp.write_text(json.dumps(manifest))
    tmp.replace(snapshot / "manifest.json")  # atomic: a half-written snapshot is never loaded
    return len(manifest["objects"])


def load(s3: Any, snapshot: Path) -> int:
    """Re-create what :func:`dump` wrote; return the object count."""
    manifest_file = snapshot / "manifest.json"
    if not manifest_file.exists():
        return 0
    manifest = json.loads(manifest_file.read_text())
    for name in manifest["buckets"]:
        s3.create_bucket(Bucket=name)
    for obj in manifest["objects"]:
        extra = {"ContentType": obj["content_type"]} if obj["content_type"] else {}
        s3.put_object(
            Bucket=obj["bucket"],
            Key=obj["key"],
            Body=(snapshot / "objects" / obj["file"]).read_bytes(),
            **extra,
        )
    return len(manifest["objects"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument(
        "--ready-file",
        type=Path,
        default=None,
        help="written once the snapshot is loaded and requests are served",
    )
    args = parser.parse_args(argv)

    from moto.server import ThreadedMotoServer  # heavy import: only in the server process

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request under load
    # Block the stop signals before any thread starts (threads inherit the mask) and
    # take them with sigwait: a Python handler would run only once the main thread
    # wakes, and a signal the kernel hands to a server thread does not wake it.
    stop_signals = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=args.port, verbose=False)
    server.start()
    s3 = client(args.port)
    snapshot = args.data_dir / "snapshot" if args.data_dir else None
    if snapshot:
        print(f"loaded {load(s3, snapshot)} objects from {snapshot}", flush=True)
    print(f"embedded S3 listening on 127.0.0.1:{args.port}", flush=True)
    if args.ready_file:
        args.ready_file.write_text(str(args.port))
    signal.sigwait(stop_signals)
    if snapshot:
        print(f"saved {dump(s3, snapshot)} objects to {snapshot}", flush=True)
    server.stop()


if __name__ == "__main__":
    main()
