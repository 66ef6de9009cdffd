"""Read uploaded objects under ``incoming/``: size, byte ranges and content hash (S3)."""

from __future__ import annotations

import base64
import hashlib
from functools import cache

import boto3
from botocore.exceptions import ClientError
from pydantic import BaseModel, Field

HASH_CHUNK_BYTES = 1024 * 1024


@cache
def _s3():
    return boto3.client("s3")


class UploadHead(BaseModel):
    """What a HEAD says about an upload; ``sha256_hex`` only when S3 holds a full-object SHA-256."""

    size: int = Field(ge=0)
    etag: str
    sha256_hex: str | None = None


def full_object_sha256(checksum_sha256: str | None, checksum_type: str | None) -> str | None:
    """The object's SHA-256 (hex) from S3's checksum, or None when S3 has no full-object one.

    A multipart upload's COMPOSITE checksum hashes part checksums, not the bytes; such
    values end in ``-<parts>``. Responses that predate ``ChecksumType`` are trusted only
    without that suffix.
    """
    if not checksum_sha256 or checksum_type == "COMPOSITE":
        return None
    if checksum_type is None and "-" in checksum_sha256:
        return None
    return base64.b64decode(checksum_sha256).hex()


def head_upload(bucket: str, key: str) -> UploadHead | None:
    """HEAD the object (with checksums); None when it no longer exists."""
    try:
        response = _s3().head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    except ClientError as exc:
        if exc.response["Error"]["Code"] in {"404", "NoSuchKey", "NotFound"}:
            return None
        raise
    return UploadHead(
        size=response["ContentLength"],
        etag=response["ETag"],
        sha256_hex=full_object_sha256(response.get("ChecksumSHA256"), response.get("ChecksumType")),
    )


def read_head(bucket: str, key: str, n_bytes: int, etag: str) -> bytes:
    """The first ``n_bytes`` bytes of the object (fails if it changed since the HEAD)."""
    response = _s3().get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{n_bytes - 1}", IfMatch=etag)
    return response["Body"].read()


def read_tail(bucket: str, key: str, n_bytes: int, etag: str) -> bytes:
    """The last ``n_bytes`` bytes of the object (fails if it changed since the HEAD)."""
    response = _s3().get_object(Bucket=bucket, Key=key, Range=f"bytes=-{n_bytes}", IfMatch=etag)
    return response["Body"].read()


def stream_sha256(bucket: str, key: str, etag: str) -> str:
    """SHA-256 (hex) of the object's bytes, read in chunks (never the whole body at once)."""
    digest = hashlib.sha256()
    body = _s3().get_object(Bucket=bucket, Key=key, IfMatch=etag)["Body"]
    for chunk in body.iter_chunks(HASH_CHUNK_BYTES):
        digest.update(chunk)
    return digest.hexdigest()
