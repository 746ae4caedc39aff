"""The embedded S3 API server: moto's server in a process of its own.

Run as ``python -m knative_lambda.harness.services.embedded_s3 --port N [--data-dir D]
[--snapshot-interval S]``. A process of its own (not a thread of the CLI) so that
``kl up`` can leave it running and ``restart`` really restarts it.

moto keeps objects in memory. With ``--data-dir`` the server keeps a copy of every
bucket and object (body, content type and user metadata) in ``D/snapshot`` and loads it back on
start:

- every PUT/POST/DELETE request (create/delete bucket, put/copy/delete object,
  multipart upload) marks the store dirty, and at most once per
  ``--snapshot-interval`` seconds (default 1) a dirty store is written out;
- SIGTERM/SIGINT write a final snapshot before the server exits.

So a ``restart`` keeps everything, and a SIGKILL (crash, OOM, chaos "kill") loses
at most the changes of the last interval plus the time one snapshot takes (the
snapshot of a store that hardly changed is a listing per bucket plus one GET per
changed object; the first one after a start GETs every object once). Files are not fsync'ed: a killed process loses nothing the kernel
already has, a power cut may. ``--snapshot-interval 0`` writes only on stop.

Snapshot layout: object bodies are content-addressed files ``objects/<sha256>``,
written once (via a temporary file and rename) and never rewritten; ``manifest.json``
is replaced atomically last, and only then are files it no longer names removed,
so a kill at any moment leaves the previous or the new snapshot, never a mix.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

ACCESS_KEY, SECRET_KEY, REGION = "kl-access", "kl-secret", "us-east-1"
# Requests that may change buckets or objects (a copy is a PUT with x-amz-copy-source).
MUTATING_METHODS = frozenset({"PUT", "POST", "DELETE"})
# S3 listings give LastModified in whole seconds: an entry fetched less than this
# after its LastModified may hide a later same-second, same-body change (e.g. only
# the content type), so it is fetched again at the next snapshot.
_SETTLED_S = 2.0


def client(port: int) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{port}",
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name=REGION,
        config=Config(retries={"max_attempts": 1}),
    )


class MutationTracker:
    """WSGI middleware around moto's app: notes that a mutating request has run."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.dirty = threading.Event()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        try:
            return self.app(environ, start_response)
        finally:
            # Set after moto's handler ran, so a snapshot that cleared the flag
            # earlier and missed this change is followed by another one.
            if environ.get("REQUEST_METHOD") in MUTATING_METHODS:
                self.dirty.set()


def moto_app() -> MutationTracker:
    """moto's WSGI app (as ``moto.server`` and ``ThreadedMotoServer`` build it), tracked."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    return MutationTracker(DomainDispatcherApplication(create_backend_app))


class Snapshot:
    """The on-disk copy of the store under ``directory``: ``manifest.json`` + ``objects/``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.objects_dir = directory / "objects"
        self.manifest_file = directory / "manifest.json"
        # (bucket, key) -> manifest entry of the last dump, to skip unchanged objects.
        self._known: dict[tuple[str, str], dict[str, Any]] = {}

    def dump(self, s3: Any) -> int:
        """Write every bucket and object; return the object count.

        Objects whose ETag and LastModified match the last dump are not fetched;
        bodies already on disk are not rewritten.
        """
        self.objects_dir.mkdir(parents=True, exist_ok=True)
        buckets: list[str] = []
        entries: list[dict[str, Any]] = []
        for bucket in s3.list_buckets().get("Buckets", []):
            name = bucket["Name"]
            try:
                for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
                    for item in page.get("Contents", []):
                        entry = self._entry(s3, name, item)
                        if entry is not None:
                            entries.append(entry)
            except ClientError as exc:
                if _code(exc) != "NoSuchBucket":
                    raise
                # Deleted since the listing (the delete marked the store dirty).
                entries = [e for e in entries if e["bucket"] != name]
                continue
            buckets.append(name)
        tmp = self.directory / "manifest.json.tmp"
        tmp.write_text(json.dumps({"buckets": buckets, "objects": entries}))
        tmp.replace(self.manifest_file)  # atomic: a half-written snapshot is never loaded
        referenced = {e["file"] for e in entries}
        for file in self.objects_dir.iterdir():
            if file.name not in referenced:  # replaced or deleted objects, stray .tmp files
                file.unlink(missing_ok=True)
        self._known = {(e["bucket"], e["key"]): e for e in entries}
        return len(entries)

    def _entry(self, s3: Any, bucket: str, item: dict[str, Any]) -> dict[str, Any] | None:
        listed_at = item["LastModified"].timestamp()
        known = self._known.get((bucket, item["Key"]))
        if known and known["etag"] == item["ETag"] and known["last_modified"] == listed_at:
            return known
        fetched_at = time.time()
        try:
            obj = s3.get_object(Bucket=bucket, Key=item["Key"])
        except ClientError as exc:
            if _code(exc) == "NoSuchKey":
                return None  # deleted since the listing; the delete marked the store dirty
            raise
        body = obj["Body"].read()
        file = hashlib.sha256(body).hexdigest()
        path = self.objects_dir / file
        if not path.exists():
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(body)
            tmp.replace(path)  # a file under its final name is always complete
        settled = fetched_at - listed_at >= _SETTLED_S
        return {
            "bucket": bucket,
            "key": item["Key"],
            "file": file,
            "content_type": obj.get("ContentType", ""),
            "metadata": obj.get("Metadata") or {},
            "etag": obj["ETag"],
            "last_modified": listed_at if settled else None,
        }

    def load(self, s3: Any) -> int:
        """Re-create what :meth:`dump` wrote; return the object count."""
        if not self.manifest_file.exists():
            return 0
        manifest = json.loads(self.manifest_file.read_text())
        for name in manifest["buckets"]:
            s3.create_bucket(Bucket=name)
        for obj in manifest["objects"]:
            extra: dict[str, Any] = {"Metadata": obj.get("metadata") or {}}  # absent before metadata was kept
            if obj["content_type"]:
                extra["ContentType"] = obj["content_type"]
            s3.put_object(
                Bucket=obj["bucket"],
                Key=obj["key"],
                Body=(self.objects_dir / obj["file"]).read_bytes(),
                **extra,
            )
        return len(manifest["objects"])


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _interval(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument(
        "--snapshot-interval",
        type=_interval,
        default=1.0,
        help="seconds between snapshots of a changed store (0: only on stop; default 1)",
    )
    parser.add_argument(
        "--ready-file",
        type=Path,
        default=None,
        help="written once the snapshot is loaded and requests are served",
    )
    args = parser.parse_args(argv)

    # Heavy imports: only in the server process.
    from moto.moto_server.werkzeug_app import MotoRequestHandler
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request under load
    # Block the stop signals before any thread starts (threads inherit the mask) and
    # take them with sigwait: a Python handler would run only once the main thread
    # wakes, and a signal the kernel hands to a server thread does not wake it.
    stop_signals = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    app = moto_app()
    try:
        server = make_server(
            "127.0.0.1", args.port, app, threaded=True, request_handler=MotoRequestHandler
        )
    except OSError as exc:
        sys.exit(f"embedded S3: cannot listen on 127.0.0.1:{args.port}: {exc.strerror}")
    threading.Thread(target=server.serve_forever, name="s3-server", daemon=True).start()
    s3 = client(args.port)
    snapshot = Snapshot(args.data_dir / "snapshot") if args.data_dir else None
    if snapshot:
        print(f"loaded {snapshot.load(s3)} objects from {snapshot.directory}", flush=True)
        app.dirty.clear()  # the reload's own PUTs changed nothing on disk
    print(f"embedded S3 listening on 127.0.0.1:{args.port}", flush=True)
    if args.ready_file:
        args.ready_file.write_text(str(args.port))
    if snapshot and args.snapshot_interval > 0:
        # Snapshots run here, in the main thread, so they never overlap each other
        # or the final one.
        while signal.sigtimedwait(stop_signals, args.snapshot_interval) is None:
            if not app.dirty.is_set():
                continue
            app.dirty.clear()  # before the dump: a change during it sets it again
            try:
                snapshot.dump(s3)
            except Exception as exc:  # botocore and OSError alike: retry next interval
                app.dirty.set()
                when = time.strftime("%H:%M:%S")
                print(f"{when} snapshot failed: {type(exc).__name__}: {exc}", flush=True)
    else:
        signal.sigwait(stop_signals)
    if snapshot:
        print(f"saved {snapshot.dump(s3)} objects to {snapshot.directory}", flush=True)
    server.shutdown()


if __name__ == "__main__":
    main()
