"""The images table: register an image once by content hash, note duplicate uploads (DynamoDB).

Registration and the registered-images counter (runs table, ``COUNTER``/``REGISTERED``)
change in one transaction, so the counter moves exactly once per new image even when
an event is delivered twice or a Lambda dies half-way.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime

from boxloop.models import ImageRecord
from lambdas.adapters.clients import aws_client
from lambdas.adapters.transactions import transact_once
from lambdas.environment import lambda_environment

PENDING_PARTITION = "pending"
PENDING_INDEX = "pending"
TRANSACTION_IMAGES = 49
"""Images cleared per transaction: two items each plus the counter stay within DynamoDB's 100-item limit."""


def _dynamodb():
    return aws_client("dynamodb")


def _images_table() -> str:
    return lambda_environment().require("images_table")


def _runs_table() -> str:
    return lambda_environment().require("runs_table")


def _image_item(record: ImageRecord, upload_ref: str) -> dict:
    registered_at = record.registered_at.isoformat()
    return {
        "image_id": {"S": record.image_id},
        "source_ref": {"S": record.source_ref},
        "upload_ref": {"S": upload_ref},
        "width": {"N": str(record.width)},
        "height": {"N": str(record.height)},
        "registered_at": {"S": registered_at},
        "pending_since": {"S": registered_at},
        "pending_partition": {"S": PENDING_PARTITION},
    }


def register_image(record: ImageRecord, upload_ref: str | None = None) -> bool:
    """Register a new image as pending and count it; False when the image is already registered.

    ``upload_ref`` is the upload it was registered from (default: its ``source_ref``).
    """
    return transact_once(
        _dynamodb(),
        [
            {
                "Put": {
                    "TableName": _images_table(),
                    "Item": _image_item(record, upload_ref or record.source_ref),
                    "ConditionExpression": "attribute_not_exists(image_id)",
                }
            },
            {
                "Update": {
                    "TableName": _runs_table(),
                    "Key": {"pk": {"S": "COUNTER"}, "sk": {"S": "REGISTERED"}},
                    "UpdateExpression": "ADD #count :one",
                    "ExpressionAttributeNames": {"#count": "count"},
                    "ExpressionAttributeValues": {":one": {"N": "1"}},
                }
            },
        ],
    )


def record_duplicate_upload(image_id: str, upload_ref: str) -> bool:
    """Add ``upload_ref`` (an upload of an already registered image's bytes) to the image's ``duplicate_keys``.

    Returns False when ``upload_ref`` is the upload it was registered from or is already noted (a redelivered event).
    """
    client = _dynamodb()
    try:
        client.update_item(
            TableName=_images_table(),
            Key={"image_id": {"S": image_id}},
            UpdateExpression="ADD duplicate_keys :ref",
            ConditionExpression=(
                "attribute_exists(image_id) AND upload_ref <> :own "
                "AND (attribute_not_exists(duplicate_keys) OR NOT contains(duplicate_keys, :own))"
            ),
            ExpressionAttributeValues={":ref": {"SS": [upload_ref]}, ":own": {"S": upload_ref}},
        )
    except client.exceptions.ConditionalCheckFailedException:
        return False
    return True


def _record_from_item(item: dict) -> ImageRecord:
    return ImageRecord(
        image_id=item["image_id"]["S"],
        source_ref=item["source_ref"]["S"],
        width=int(item["width"]["N"]),
        height=int(item["height"]["N"]),
        registered_at=datetime.fromisoformat(item["registered_at"]["S"]),
    )


def query_pending() -> Iterator[ImageRecord]:
    """Every image waiting to join a run's pool, oldest first, page by page (the sparse ``pending`` index)."""
    paginator = _dynamodb().get_paginator("query")
    pages = paginator.paginate(
        TableName=_images_table(),
        IndexName=PENDING_INDEX,
        KeyConditionExpression="pending_partition = :pending",
        ExpressionAttributeValues={":pending": {"S": PENDING_PARTITION}},
    )
    for page in pages:
        for item in page["Items"]:
            yield _record_from_item(item)


def _clear_transaction(image_ids: list[str]) -> list[dict]:
    clears = [
        {
            "Update": {
                "TableName": _images_table(),
                "Key": {"image_id": {"S": image_id}},
                "UpdateExpression": "REMOVE pending_since, pending_partition",
                "ConditionExpression": "attribute_exists(pending_since)",
            }
        }
        for image_id in image_ids
    ]
    counter = {
        "Update": {
            "TableName": _runs_table(),
            "Key": {"pk": {"S": "COUNTER"}, "sk": {"S": "REGISTERED"}},
            "UpdateExpression": "ADD #count :minus",
            "ExpressionAttributeNames": {"#count": "count"},
            "ExpressionAttributeValues": {":minus": {"N": str(-len(image_ids))}},
        }
    }
    return [*clears, counter]


def clear_pending(image_ids: Iterable[str]) -> int:
    """Take images out of the pending index and subtract them from ``COUNTER/REGISTERED``, exactly once each.

    Each chunk is one transaction (clear ``pending_since`` where present, ADD −n to the
    counter), so the counter means "registered and not yet in a pool". A chunk holding
    an image cleared before (a retried call) is redone image by image. Returns how many
    images this call cleared.
    """
    client = _dynamodb()
    ids = list(dict.fromkeys(image_ids))
    cleared = 0
    for start in range(0, len(ids), TRANSACTION_IMAGES):
        chunk = ids[start : start + TRANSACTION_IMAGES]
        try:
            client.transact_write_items(TransactItems=_clear_transaction(chunk))
            cleared += len(chunk)
            continue
        except client.exceptions.TransactionCanceledException as exc:
            if not any(r.get("Code") == "ConditionalCheckFailed" for r in exc.response.get("CancellationReasons", [])):
                raise
        cleared += sum(transact_once(client, _clear_transaction([image_id])) for image_id in chunk)
    return cleared
