"""Take in one upload under ``incoming/``: validate its header, quarantine or register it, maybe start a run.

Only the HEAD, the first bytes and the last bytes are read to validate; the content hash
comes from S3's full-object SHA-256 when it has one, else from streaming the object.
Every step is safe to repeat, so a redelivered event changes nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel

from boxloop.image_header import (
    ImageHeader,
    ImageLimits,
    MoreBytesNeeded,
    QuarantineRecord,
    Rejection,
    check_ending,
    check_header,
    check_size,
)
from boxloop.models import ImageRecord
from lambdas.adapters.quarantine import quarantine_upload
from lambdas.adapters.registry import record_duplicate_upload, register_image
from lambdas.adapters.uploads import UploadHead, head_upload, read_head, read_tail, stream_sha256
from lambdas.config.run_start import RunStartOutcome, start_run_if_ready

INCOMING_PREFIX = "incoming/"


class IntakeOutcome(BaseModel):
    """What happened to one upload."""

    key: str
    result: Literal["registered", "duplicate_upload", "duplicate_event", "quarantined", "gone", "ignored"]
    image_id: str | None = None
    rejection: Rejection | None = None
    run_start: RunStartOutcome | None = None


def validate_upload(bucket: str, key: str, head: UploadHead, limits: ImageLimits) -> ImageHeader | Rejection:
    """Check size, header and ending from ranged reads of the object."""
    rejection = check_size(head.size, limits)
    if rejection is not None:
        return rejection
    head_length = min(limits.head_bytes, head.size)
    while True:
        first_bytes = read_head(bucket, key, head_length, head.etag)
        verdict = check_header(first_bytes, head.size, limits)
        if not isinstance(verdict, MoreBytesNeeded):
            break
        head_length = verdict.head_bytes
    if isinstance(verdict, Rejection):
        return verdict
    if len(first_bytes) >= head.size:
        last_bytes = first_bytes[-limits.tail_bytes :]
    else:
        last_bytes = read_tail(bucket, key, limits.tail_bytes, head.etag)
    return check_ending(verdict.format, last_bytes) or verdict


def take_in_upload(bucket: str, key: str, limits: ImageLimits | None = None) -> IntakeOutcome:
    """Quarantine a bad upload or register a good one, then start a run if one is due."""
    limits = limits or ImageLimits()
    if not key.startswith(INCOMING_PREFIX):
        return IntakeOutcome(key=key, result="ignored")
    head = head_upload(bucket, key)
    if head is None:
        return IntakeOutcome(key=key, result="gone")
    verdict = validate_upload(bucket, key, head, limits)
    if isinstance(verdict, Rejection):
        record = QuarantineRecord(
            key=key,
            reason_code=verdict.reason_code,
            message=verdict.message,
            size=head.size,
            detected_at=datetime.now(UTC),
        )
        quarantine_upload(bucket, record)
        return IntakeOutcome(key=key, result="quarantined", rejection=verdict)
    image_id = head.sha256_hex or stream_sha256(bucket, key, head.etag)
    source_ref = f"s3://{bucket}/{key}"
    image = ImageRecord(
        image_id=image_id,
        source_ref=source_ref,
        width=verdict.width,
        height=verdict.height,
        registered_at=datetime.now(UTC),
    )
    if register_image(image):
        result = "registered"
    elif record_duplicate_upload(image_id, source_ref):
        result = "duplicate_upload"
    else:
        result = "duplicate_event"
    return IntakeOutcome(key=key, result=result, image_id=image_id, run_start=start_run_if_ready(bucket))
