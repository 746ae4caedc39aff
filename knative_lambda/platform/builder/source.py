"""The S3 side of a build: fetch the function's source, upload the build context.

boto3 is synchronous; callers run these in a thread. Every failure becomes a
one-line error that names the bucket and key, never a traceback or a hang
(short connect/read timeouts, few retries).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from knative_lambda.platform.builder.errors import BuildFailed, SourceMissing
from knative_lambda.settings import Settings

_MISSING_BUCKET = {"NoSuchBucket"}
_MISSING_KEY = {"NoSuchKey", "404", "NotFound"}


@dataclass(frozen=True)
class Source:
    bucket: str
    key: str
    data: bytes
    metadata: dict[str, str] = field(default_factory=dict)  # x-amz-meta-* (filename, runtime)


def make_client(settings: Settings) -> Any:
    """An S3 client for the platform's endpoint (path-style, bounded timeouts)."""
    import boto3  # imported when needed: it takes a second to load, `kl build --help` should not wait
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=settings.s3_endpoint or None,
        aws_access_key_id=settings.s3_access_key or "test",
        aws_secret_access_key=settings.s3_secret_key or "test",
        region_name=settings.s3_region,
        config=Config(
            connect_timeout=5,
            read_timeout=30,
            retries={"max_attempts": 2, "mode": "standard"},
            s3={"addressing_style": "path"},
        ),
    )


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def fetch(client: Any, bucket: str, key: str, max_bytes: int) -> Source:
    """Read ``s3://bucket/key``; SourceMissing when the bucket or object is absent."""
    try:
        obj = client.get_object(Bucket=bucket, Key=key)
        length = int(obj.get("ContentLength") or 0)
        if length > max_bytes:
            raise BuildFailed(f"source s3://{bucket}/{key} is {length} bytes, over the limit {max_bytes} (KL_BUILD_MAX_BYTES)")
        data = obj["Body"].read()
        return Source(bucket, key, data, {k.lower(): v for k, v in (obj.get("Metadata") or {}).items()})
    except ClientError as exc:
        code = _code(exc)
        if code in _MISSING_BUCKET:
            raise SourceMissing(f"source bucket {bucket!r} does not exist (create it or set KL_SOURCE_BUCKET)") from None
        if code in _MISSING_KEY:
            raise SourceMissing(f"no source object s3://{bucket}/{key}: upload the function first (kl build)") from None
        raise BuildFailed(f"cannot read s3://{bucket}/{key}: {code or exc}") from None
    except BotoCoreError as exc:
        raise BuildFailed(f"cannot reach S3 to read s3://{bucket}/{key}: {exc}") from None


def upload(client: Any, bucket: str, key: str, data: bytes, metadata: dict[str, str] | None = None) -> None:
    """Write ``s3://bucket/key``; BuildFailed with the reason on any error."""
    try:
        client.put_object(Bucket=bucket, Key=key, Body=data, Metadata=metadata or {})
    except ClientError as exc:
        code = _code(exc)
        if code in _MISSING_BUCKET:
            raise SourceMissing(f"bucket {bucket!r} does not exist (create it or set KL_TEMP_BUCKET)") from None
        raise BuildFailed(f"cannot write s3://{bucket}/{key}: {code or exc}") from None
    except BotoCoreError as exc:
        raise BuildFailed(f"cannot reach S3 to write s3://{bucket}/{key}: {exc}") from None
