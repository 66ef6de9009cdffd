"""The one factory of AWS clients for every adapter (created lazily, so ``AWS_ENDPOINT_URL`` is honoured)."""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config


@cache
def aws_client(service_name: str) -> Any:
    """The process's client for ``service_name`` (``s3``, ``dynamodb``, ``stepfunctions``, …), created on first use.

    Tests that switch accounts call ``aws_client.cache_clear()``.
    """
    return boto3.client(service_name)


@cache
def presigning_s3_client() -> Any:
    """The process's S3 client for presigned URLs, signing with SigV4 (boto3 presigns with SigV2 in us-east-1).

    Tests that switch accounts call ``presigning_s3_client.cache_clear()``.
    """
    return boto3.client("s3", config=Config(signature_version="s3v4"))
