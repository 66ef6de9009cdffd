"""The S3 side of local jobs: URIs, the objects under a prefix, and keys relative to it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

import boto3

from boxloop.local.process_environment import PROCESS_ENVIRONMENT
from boxloop.local.sagemaker.job_code import JobFailure


def s3_client() -> Any:
    """A client of the S3 this process points at (the embedded AWS while a run executes)."""
    with PROCESS_ENVIRONMENT.steady():
        return boto3.client("s3")


def split_s3_uri(uri: str) -> tuple[str, str]:
    """(bucket, key) of ``s3://bucket/key``; JobFailure (a ClientError, as SageMaker says) for anything else."""
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise JobFailure(f"ClientError: {uri!r} is not an s3:// URI")
    return parsed.netloc, parsed.path.lstrip("/")


def keys_under(s3: Any, bucket: str, prefix: str) -> Iterator[str]:
    """Every object key under ``prefix`` (folder markers left out)."""
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            if not item["Key"].endswith("/"):
                yield item["Key"]


def relative_key(key: str, prefix: str) -> str:
    """A key's path relative to the prefix's folder (SageMaker keeps what follows the last '/')."""
    folder = prefix[: prefix.rfind("/") + 1]
    return key[len(folder) :]
