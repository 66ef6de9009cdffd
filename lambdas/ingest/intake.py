"""Take in one upload under ``incoming/``: validate it, quarantine or register it, maybe start a run.

The HEAD and the first bytes reject most bad uploads cheaply; an upload that passes is read
whole (one GET pinned to the HEAD's ETag) and every pixel decoded with the detector's own
decoder (``boxloop.image_contract``), so what ingest registers the detector can read. A
registered image is a content-addressed copy, ``images/<sha256>.<ext>``, written from the very
bytes that were hashed and decoded: its ``source-ref`` names bytes that never change, and a
later upload of new bytes under the same key is a new image. Every step is safe to repeat, so
a redelivered event changes nothing.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel

from boxloop.image_contract import CONTENT_TYPES, FORMAT_EXTENSIONS
from boxloop.image_header import (
    DecodedImage,
    ImageLimits,
    MoreBytesNeeded,
    QuarantineRecord,
    Rejection,
    check_decodes,
    check_header,
    check_size,
)
from boxloop.layout import INCOMING_PREFIX, image_key, quarantine_key, quarantine_reason_key
from boxloop.models import ImageRecord
from lambdas.adapters.registry import record_duplicate_upload, register_image
from lambdas.adapters.storage import (
    ObjectHead,
    copy_object,
    delete_object,
    head_object,
    read_first_bytes,
    write_bytes,
    write_document,
)
from lambdas.config.run_start import RunStartOutcome, start_run_if_ready

IntakeResult = Literal[
    "registered", "duplicate_upload", "duplicate_event", "quarantined", "gone", "ignored", "folder_marker"
]


class IntakeOutcome(BaseModel):
    """What happened to one upload."""

    key: str
    result: IntakeResult
    image_id: str | None = None
    source_ref: str | None = None
    rejection: Rejection | None = None
    run_start: RunStartOutcome | None = None


class ValidUpload(BaseModel):
    """An upload that meets the image contract: its whole bytes and what decoding them found."""

    data: bytes
    image: DecodedImage


def is_folder_marker(key: str, size: int) -> bool:
    """An S3 console "folder": an empty object whose key ends in ``/`` (no image, nothing to quarantine)."""
    return key.endswith("/") and size == 0


def validate_upload(bucket: str, key: str, head: ObjectHead, limits: ImageLimits) -> ValidUpload | Rejection:
    """Check size and header from ranged reads, then decode the whole object."""
    rejection = check_size(head.size, limits)
    if rejection is not None:
        return rejection
    head_length = min(limits.head_bytes, head.size)
    while True:
        first_bytes = read_first_bytes(bucket, key, head_length, head.etag)
        verdict = check_header(first_bytes, head.size, limits)
        if not isinstance(verdict, MoreBytesNeeded):
            break
        head_length = verdict.head_bytes
    if isinstance(verdict, Rejection):
        return verdict
    data = first_bytes if len(first_bytes) >= head.size else read_first_bytes(bucket, key, head.size, head.etag)
    decoded = check_decodes(data)
    if isinstance(decoded, Rejection):
        return decoded
    return ValidUpload(data=data, image=decoded)


def quarantine_upload(bucket: str, record: QuarantineRecord) -> str:
    """Copy the upload to ``quarantine/<key>`` with its JSON reason beside it, then delete the original.

    Copy and reason are written before the delete, so a failure part-way loses nothing
    and a retry repeats the same writes. Returns the quarantined object's key.
    """
    target = quarantine_key(record.key)
    copy_object(bucket, record.key, target)
    write_document(bucket, quarantine_reason_key(record.key), record.model_dump_json(indent=2))
    delete_object(bucket, record.key)
    return target


def store_image(bucket: str, upload: ValidUpload) -> tuple[str, str]:
    """Write the upload's bytes to their content-addressed key; returns ``(image_id, source_ref)``.

    Rewriting the same key writes the same bytes, so a retry or a duplicate upload changes nothing.
    """
    image_id = hashlib.sha256(upload.data).hexdigest()
    key = image_key(image_id, FORMAT_EXTENSIONS[upload.image.format])
    write_bytes(bucket, key, upload.data, CONTENT_TYPES[upload.image.format])
    return image_id, f"s3://{bucket}/{key}"


def take_in_upload(bucket: str, key: str, limits: ImageLimits | None = None) -> IntakeOutcome:
    """Quarantine a bad upload or register a good one, then start a run if one is due."""
    limits = limits or ImageLimits()
    if not key.startswith(INCOMING_PREFIX):
        return IntakeOutcome(key=key, result="ignored")
    head = head_object(bucket, key)
    if head is None:
        return IntakeOutcome(key=key, result="gone")
    if is_folder_marker(key, head.size):
        return IntakeOutcome(key=key, result="folder_marker")
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
    image_id, source_ref = store_image(bucket, verdict)
    image = ImageRecord(
        image_id=image_id,
        source_ref=source_ref,
        width=verdict.image.width,
        height=verdict.image.height,
        registered_at=datetime.now(UTC),
    )
    upload_ref = f"s3://{bucket}/{key}"
    if register_image(image, upload_ref):
        result = "registered"
    elif record_duplicate_upload(image_id, upload_ref):
        result = "duplicate_upload"
    else:
        result = "duplicate_event"
    return IntakeOutcome(
        key=key, result=result, image_id=image_id, source_ref=source_ref, run_start=start_run_if_ready(bucket)
    )
