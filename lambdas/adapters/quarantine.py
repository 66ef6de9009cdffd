"""Move a rejected upload to ``quarantine/<original key>`` with a JSON reason beside it (S3)."""

from __future__ import annotations

from functools import cache

import boto3

from boxloop.image_header import QuarantineRecord

QUARANTINE_PREFIX = "quarantine/"


@cache
def _s3():
    return boto3.client("s3")


def quarantine_key(key: str) -> str:
    """Where a rejected upload goes."""
    return f"{QUARANTINE_PREFIX}{key}"


def reason_key(key: str) -> str:
    """Where the JSON reason for a rejected upload goes."""
    return f"{quarantine_key(key)}.reason.json"


def quarantine_upload(bucket: str, record: QuarantineRecord) -> str:
    """Copy the upload and its reason into quarantine, then delete the original.

    Copy and reason are written before the delete, so a failure part-way loses nothing
    and a retry repeats the same writes. Returns the quarantined object's key.
    """
    target = quarantine_key(record.key)
    _s3().copy({"Bucket": bucket, "Key": record.key}, bucket, target)  # managed copy: any size
    _s3().put_object(
        Bucket=bucket,
        Key=reason_key(record.key),
        Body=record.model_dump_json(indent=2).encode(),
        ContentType="application/json",
    )
    _s3().delete_object(Bucket=bucket, Key=record.key)
    return target
