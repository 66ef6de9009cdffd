"""Run data in the data bucket: JSONL shards, key listings, scratch objects, folders (S3).

Small JSON documents (read, write, write-once, streamed lines) are in ``documents``;
this module adds what the loop needs on top: writing whole JSONL shards, listing keys
under a prefix, tagging scratch objects for lifecycle expiry, uploading a local folder,
and turning S3's throttling into ``TransientStorageError`` (which the state machine retries).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path

import boto3
from botocore.exceptions import ClientError

SCRATCH_TAG = "boxloop-retention=scratch"
"""Objects tagged so expire by the bucket's lifecycle rule (docs/stack.md, Storage)."""

TRANSIENT_ERROR_CODES = frozenset({"SlowDown", "InternalError", "ServiceUnavailable", "RequestTimeout", "503", "500"})


class TransientStorageError(RuntimeError):
    """S3 throttled or failed transiently; the state machine retries the task (its name is matched)."""


@cache
def _s3():
    return boto3.client("s3")


def _transient(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") in TRANSIENT_ERROR_CODES


def _put(bucket: str, key: str, body: bytes, content_type: str, scratch: bool) -> None:
    arguments = {"Bucket": bucket, "Key": key, "Body": body, "ContentType": content_type}
    if scratch:
        arguments["Tagging"] = SCRATCH_TAG
    try:
        _s3().put_object(**arguments)
    except ClientError as exc:
        if _transient(exc):
            raise TransientStorageError(f"writing s3://{bucket}/{key}: {exc}") from exc
        raise


def write_jsonl(bucket: str, key: str, lines: Iterable[str], *, scratch: bool = False) -> int:
    """Write one JSONL shard (one JSON text per line, newline-terminated); returns the line count.

    The caller bounds the shard's size; ``scratch`` tags it for lifecycle expiry.
    """
    texts = list(lines)
    body = "".join(f"{text}\n" for text in texts).encode("utf-8")
    _put(bucket, key, body, "application/jsonlines", scratch)
    return len(texts)


def write_bytes(bucket: str, key: str, data: bytes, content_type: str, *, scratch: bool = False) -> None:
    """Write (or replace) an object."""
    _put(bucket, key, data, content_type, scratch)


def list_keys(bucket: str, prefix: str) -> Iterator[str]:
    """Every key under ``prefix``, in S3's (lexicographic) order, page by page."""
    paginator = _s3().get_paginator("list_objects_v2")
    try:
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                yield item["Key"]
    except ClientError as exc:
        if _transient(exc):
            raise TransientStorageError(f"listing s3://{bucket}/{prefix}: {exc}") from exc
        raise


def key_exists(bucket: str, key: str) -> bool:
    """Whether the object exists."""
    try:
        _s3().head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if exc.response["Error"]["Code"] in {"404", "NoSuchKey", "NotFound"}:
            return False
        raise
    return True


def upload_directory(bucket: str, prefix: str, folder: str | os.PathLike[str]) -> list[str]:
    """Upload every file under ``folder`` to ``prefix`` + its relative path; returns the keys, sorted."""
    root = Path(folder)
    keys = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        key = f"{prefix}{path.relative_to(root).as_posix()}"
        _s3().upload_file(str(path), bucket, key)
        keys.append(key)
    return keys
