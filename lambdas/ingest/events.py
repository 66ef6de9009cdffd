"""S3 event notification models for our handlers: Powertools' Parser models, made to accept moto's events.

Real S3 events carry ``userIdentity``, ``requestParameters``, ``responseElements`` and the
bucket's ``ownerIdentity``; moto's (the local run's embedded AWS) omit them. None of our
handlers reads those fields, so they are optional here and everything else is validated
as Powertools does, except that a record without an ``s3`` object is a validation error
(Powertools' own check raises AttributeError there, which its BatchProcessor cannot attribute
to the message, failing the whole batch instead of that one message).
"""

from __future__ import annotations

from aws_lambda_powertools.utilities.parser.models import S3Model, S3RecordModel, SqsRecordModel
from aws_lambda_powertools.utilities.parser.models.s3 import (
    S3Bucket,
    S3Identity,
    S3Message,
    S3OwnerIdentify,
    S3RequestParameters,
    S3ResponseElements,
)
from pydantic import Json, model_validator


class S3EventBucket(S3Bucket):
    ownerIdentity: S3OwnerIdentify | None = None  # type: ignore[assignment]


class S3EventMessage(S3Message):
    bucket: S3EventBucket  # type: ignore[assignment]


class S3EventRecord(S3RecordModel):
    """One S3 event record."""

    userIdentity: S3Identity | None = None  # type: ignore[assignment]
    requestParameters: S3RequestParameters | None = None  # type: ignore[assignment]
    responseElements: S3ResponseElements | None = None  # type: ignore[assignment]
    s3: S3EventMessage  # type: ignore[assignment]

    @model_validator(mode="before")
    @classmethod
    def validate_s3_object(cls, values):
        """Size and eTag are required except for removal events (Powertools' rule, made safe)."""
        if not isinstance(values, dict) or not isinstance(values.get("s3"), dict):
            return values
        s3_object = values["s3"].get("object") or values["s3"].get("get_object") or {}
        if ":Delete" not in str(values.get("eventName")) and (
            s3_object.get("size") is None or s3_object.get("eTag") is None
        ):
            raise ValueError(
                "size and eTag are required for all events except ObjectRemoved:* and LifecycleExpiration:*"
            )
        return values


class S3Event(S3Model):
    """An S3 event notification (the payload of a direct S3 → Lambda invocation)."""

    Records: list[S3EventRecord]  # type: ignore[assignment]


class S3EventInSqsRecord(SqsRecordModel):
    """An SQS record whose body is an S3 event notification (S3 → SQS → Lambda)."""

    body: Json[S3Event]  # type: ignore[assignment]
