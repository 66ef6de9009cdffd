"""Small documents in the data bucket: read, stream lines, write, write-once; the labelling configuration (S3)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from functools import cache

import boto3
from botocore.exceptions import ClientError

from boxloop.config import ConfigError, LabelingConfig, parse_config

CONFIG_KEY = "config/labeling.json"
CONFIG_STATUS_KEY = "config/labeling.status.json"
LABELING_DEFAULTS_ENV = "LABELING_DEFAULTS"


@cache
def _s3():
    return boto3.client("s3")


def read_document(bucket: str, key: str) -> bytes | None:
    """The object's bytes, or None when it does not exist."""
    try:
        return _s3().get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        if exc.response["Error"]["Code"] in {"NoSuchKey", "404"}:
            return None
        raise


def iter_document_lines(bucket: str, key: str) -> Iterator[str]:
    """The object's non-empty lines, streamed (a JSONL file is never held whole)."""
    body = _s3().get_object(Bucket=bucket, Key=key)["Body"]
    for line in body.iter_lines():
        if line.strip():
            yield line.decode("utf-8")


def write_document(bucket: str, key: str, body: str) -> None:
    """Write (or replace) a JSON document."""
    _s3().put_object(Bucket=bucket, Key=key, Body=body.encode("utf-8"), ContentType="application/json")


def write_document_once(bucket: str, key: str, body: str) -> bool:
    """Write a JSON document only if the key is free (S3 conditional write); False when it exists."""
    try:
        _s3().put_object(
            Bucket=bucket, Key=key, Body=body.encode("utf-8"), ContentType="application/json", IfNoneMatch="*"
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "PreconditionFailed":
            return False
        raise
    return True


def read_labeling_config(bucket: str, key: str = CONFIG_KEY) -> LabelingConfig:
    """The bucket's labelling configuration merged over the environment's ``LABELING_DEFAULTS``.

    ConfigError (naming the field) when it is missing or invalid.
    """
    raw = read_document(bucket, key)
    if raw is None:
        raise ConfigError(f"s3://{bucket}/{key} does not exist")
    return parse_config(raw, os.environ.get(LABELING_DEFAULTS_ENV))


def run_config_key(run_id: str) -> str:
    """Where RegisterPool snapshots the validated configuration a run uses (``runs/<run-id>/config.json``)."""
    return f"runs/{run_id}/config.json"


def read_run_labeling_config(bucket: str, run_id: str) -> LabelingConfig:
    """The run's configuration snapshot (defaults merged); ConfigError when RegisterPool has not written it."""
    key = run_config_key(run_id)
    raw = read_document(bucket, key)
    if raw is None:
        raise ConfigError(f"s3://{bucket}/{key} is missing: RegisterPool has not run for run {run_id}")
    return parse_config(raw)
