"""The data bucket (S3): documents, JSONL shards, listings, heads, ranged reads, copies, folder uploads.

The only module that calls S3. Every call maps a transient failure (throttling, a 5xx, a
dropped connection, a read that timed out) to ``TransientStorageError``, which the state
machine retries by that name (``infra/task_retries.py``) and which returns an
event-side message to its queue; any other failure is raised as it is. Keys come from
``boxloop.layout``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from botocore.exceptions import ClientError, HTTPClientError, IncompleteReadError
from botocore.exceptions import ConnectionError as BotocoreConnectionError
from pydantic import BaseModel, Field

from lambdas.adapters.clients import aws_client, presigning_s3_client

SCRATCH_TAG = "boxloop-retention=scratch"
"""Objects tagged so expire by the bucket's lifecycle rule (docs/stack.md, Storage)."""

TRANSIENT_ERROR_CODES = frozenset({"SlowDown", "InternalError", "ServiceUnavailable", "RequestTimeout", "503", "500"})
NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NotFound"})
TRANSIENT_TRANSPORT_ERRORS = (BotocoreConnectionError, HTTPClientError, IncompleteReadError)
"""Connection failures, timed-out or broken reads (botocore's own retries spent)."""


class TransientStorageError(RuntimeError):
    """S3 throttled or failed transiently; the state machine retries the task (its name is matched)."""


def _error_code(exc: ClientError) -> str | None:
    return exc.response.get("Error", {}).get("Code")


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc``, or the error it was raised from, is a transient S3 or transport failure."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ClientError):
            return _error_code(current) in TRANSIENT_ERROR_CODES
        if isinstance(current, TRANSIENT_TRANSPORT_ERRORS):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


@contextmanager
def _mapped_errors(action: str, bucket: str, key: str) -> Iterator[None]:
    """Raise a transient failure inside the block as TransientStorageError naming the action and object."""
    try:
        yield
    except TransientStorageError:
        raise
    except Exception as exc:
        if is_transient(exc):
            raise TransientStorageError(f"{action} s3://{bucket}/{key}: {exc}") from exc
        raise


UPLOAD_THREADS = 16
SINGLE_PUT_BYTES = 8 * 1024 * 1024
"""Files up to this size go up in one PUT (boto3's own multipart threshold); larger ones in parts."""


def _s3():
    return aws_client("s3")


def read_document(bucket: str, key: str) -> bytes | None:
    """The object's bytes, or None when it does not exist."""
    try:
        with _mapped_errors("reading", bucket, key):
            return _s3().get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        if _error_code(exc) in NOT_FOUND_CODES:
            return None
        raise


def presigned_get_url(bucket: str, key: str, seconds: int) -> str:
    """A URL that lets its holder GET this one object for ``seconds`` (SigV4, signed with this function's role)."""
    return presigning_s3_client().generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=seconds
    )


def iter_document_lines(bucket: str, key: str) -> Iterator[str]:
    """The object's non-empty lines, streamed (a JSONL file is never held whole)."""
    with _mapped_errors("reading", bucket, key):
        body = _s3().get_object(Bucket=bucket, Key=key)["Body"]
        for line in body.iter_lines():
            if line.strip():
                yield line.decode("utf-8")


def _put(bucket: str, key: str, body: bytes, content_type: str, *, scratch: bool = False, **conditions: str) -> None:
    arguments = {"Bucket": bucket, "Key": key, "Body": body, "ContentType": content_type, **conditions}
    if scratch:
        arguments["Tagging"] = SCRATCH_TAG
    with _mapped_errors("writing", bucket, key):
        _s3().put_object(**arguments)


def write_document(bucket: str, key: str, body: str) -> None:
    """Write (or replace) a JSON document."""
    _put(bucket, key, body.encode("utf-8"), "application/json")


def write_document_once(bucket: str, key: str, body: str) -> bool:
    """Write a JSON document only if the key is free (S3 conditional write); False when it exists."""
    try:
        _put(bucket, key, body.encode("utf-8"), "application/json", IfNoneMatch="*")
    except ClientError as exc:
        if _error_code(exc) == "PreconditionFailed":
            return False
        raise
    return True


def write_jsonl(bucket: str, key: str, lines: Iterable[str], *, scratch: bool = False) -> int:
    """Write one JSONL shard (one JSON text per line, newline-terminated); returns the line count.

    The caller bounds the shard's size; ``scratch`` tags it for lifecycle expiry.
    """
    texts = list(lines)
    body = "".join(f"{text}\n" for text in texts).encode("utf-8")
    _put(bucket, key, body, "application/jsonlines", scratch=scratch)
    return len(texts)


def write_bytes(bucket: str, key: str, data: bytes, content_type: str, *, scratch: bool = False) -> None:
    """Write (or replace) an object."""
    _put(bucket, key, data, content_type, scratch=scratch)


def list_keys(bucket: str, prefix: str) -> Iterator[str]:
    """Every key under ``prefix``, in S3's (lexicographic) order, page by page."""
    with _mapped_errors("listing", bucket, prefix):
        for page in _s3().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                yield item["Key"]


def _head(bucket: str, key: str, **options: str) -> dict | None:
    try:
        with _mapped_errors("reading the head of", bucket, key):
            return _s3().head_object(Bucket=bucket, Key=key, **options)
    except ClientError as exc:
        if _error_code(exc) in NOT_FOUND_CODES:
            return None
        raise


def key_exists(bucket: str, key: str) -> bool:
    """Whether the object exists."""
    return _head(bucket, key) is not None


class ObjectHead(BaseModel):
    """What a HEAD says about an object."""

    size: int = Field(ge=0)
    etag: str


def head_object(bucket: str, key: str) -> ObjectHead | None:
    """HEAD the object; None when it does not exist."""
    response = _head(bucket, key)
    if response is None:
        return None
    return ObjectHead(
        size=response["ContentLength"],
        etag=response["ETag"],
    )


def _read_range(bucket: str, key: str, byte_range: str, etag: str) -> bytes:
    with _mapped_errors("reading", bucket, key):
        return _s3().get_object(Bucket=bucket, Key=key, Range=byte_range, IfMatch=etag)["Body"].read()


def read_first_bytes(bucket: str, key: str, n_bytes: int, etag: str) -> bytes:
    """The first ``n_bytes`` bytes of the object (fails if it changed since the HEAD that gave ``etag``)."""
    return _read_range(bucket, key, f"bytes=0-{n_bytes - 1}", etag)


def copy_object(bucket: str, source_key: str, target_key: str) -> None:
    """Copy an object within the bucket (managed copy: any size)."""
    with _mapped_errors(f"copying s3://{bucket}/{source_key} to", bucket, target_key):
        _s3().copy({"Bucket": bucket, "Key": source_key}, bucket, target_key)


def delete_object(bucket: str, key: str) -> None:
    """Delete the object (deleting a missing key succeeds)."""
    with _mapped_errors("deleting", bucket, key):
        _s3().delete_object(Bucket=bucket, Key=key)


def _upload_file(bucket: str, key: str, path: Path) -> None:
    with _mapped_errors("uploading", bucket, key):
        if path.stat().st_size <= SINGLE_PUT_BYTES:
            _s3().put_object(Bucket=bucket, Key=key, Body=path.read_bytes())
        else:
            _s3().upload_file(str(path), bucket, key)


def upload_directory(bucket: str, prefix: str, folder: str | os.PathLike[str]) -> list[str]:
    """Upload every file under ``folder`` to ``prefix`` + its relative path; returns the keys, sorted.

    Files go up ``UPLOAD_THREADS`` at a time (an export holds a small file per image), each small one in a single
    PUT and a large one in parts; the first failure is raised once the others have finished.
    """
    root = Path(folder)
    paths = sorted(p for p in root.rglob("*") if p.is_file())
    keys = [f"{prefix}{path.relative_to(root).as_posix()}" for path in paths]
    with ThreadPoolExecutor(max_workers=UPLOAD_THREADS) as pool:
        for done in [pool.submit(_upload_file, bucket, key, path) for key, path in zip(keys, paths, strict=True)]:
            done.result()
    return keys
