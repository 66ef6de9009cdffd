"""The images table: register an image once by content hash, note duplicate uploads (DynamoDB).

Registration and the registered-images counter (runs table, ``COUNTER``/``REGISTERED``)
change in one transaction, so the counter moves exactly once per new image even when
an event is delivered twice or a Lambda dies half-way.
"""

from __future__ import annotations

import os
from functools import cache

import boto3

from boxloop.models import ImageRecord

PENDING_PARTITION = "pending"


@cache
def _dynamodb():
    return boto3.client("dynamodb")


def _image_item(record: ImageRecord) -> dict:
    registered_at = record.registered_at.isoformat()
    return {
        "image_id": {"S": record.image_id},
        "source_ref": {"S": record.source_ref},
        "width": {"N": str(record.width)},
        "height": {"N": str(record.height)},
        "registered_at": {"S": registered_at},
        "pending_since": {"S": registered_at},
        "pending_partition": {"S": PENDING_PARTITION},
    }


def register_image(record: ImageRecord) -> bool:
    """Register a new image as pending and count it; False when the image is already registered."""
    client = _dynamodb()
    try:
        client.transact_write_items(
            TransactItems=[
                {
                    "Put": {
                        "TableName": os.environ["IMAGES_TABLE"],
                        "Item": _image_item(record),
                        "ConditionExpression": "attribute_not_exists(image_id)",
                    }
                },
                {
                    "Update": {
                        "TableName": os.environ["RUNS_TABLE"],
                        "Key": {"pk": {"S": "COUNTER"}, "sk": {"S": "REGISTERED"}},
                        "UpdateExpression": "ADD #count :one",
                        "ExpressionAttributeNames": {"#count": "count"},
                        "ExpressionAttributeValues": {":one": {"N": "1"}},
                    }
                },
            ]
        )
    except client.exceptions.TransactionCanceledException as exc:
        reasons = exc.response.get("CancellationReasons", [])
        if reasons and reasons[0].get("Code") == "ConditionalCheckFailed":
            return False
        raise
    return True


def record_duplicate_upload(image_id: str, source_ref: str) -> bool:
    """Add ``source_ref`` to the registered image's ``duplicate_keys``.

    Returns False when ``source_ref`` is the image's own source (a redelivered event).
    """
    client = _dynamodb()
    try:
        client.update_item(
            TableName=os.environ["IMAGES_TABLE"],
            Key={"image_id": {"S": image_id}},
            UpdateExpression="ADD duplicate_keys :ref",
            ConditionExpression="attribute_exists(image_id) AND source_ref <> :own",
            ExpressionAttributeValues={":ref": {"SS": [source_ref]}, ":own": {"S": source_ref}},
        )
    except client.exceptions.ConditionalCheckFailedException:
        return False
    return True
