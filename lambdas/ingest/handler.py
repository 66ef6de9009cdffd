"""Ingest Lambda: S3 ObjectCreated under ``incoming/`` → SQS → here, in batches.

Every upload's outcome is logged and counted: registered, a duplicate (upload or event),
quarantined with its reason, or ignored (an S3 console folder marker, a key outside ``incoming/``).

Each SQS record carries one S3 event notification; records are processed with Powertools'
BatchProcessor so only failed messages return to the queue (partial batch response).
S3's ``s3:TestEvent`` (sent when the notification is configured) is skipped.
"""

from __future__ import annotations

import json
from urllib.parse import unquote_plus

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.ingest.events import S3EventInSqsRecord
from lambdas.ingest.intake import take_in_upload
from lambdas.observability import lambda_handler, logger, metrics, tracer

processor = BatchProcessor(event_type=EventType.SQS, model=S3EventInSqsRecord)


def is_s3_test_event(body: str) -> bool:
    """True for the ``s3:TestEvent`` message S3 sends when a notification is set up."""
    try:
        message = json.loads(body)
    except json.JSONDecodeError:
        return False
    return isinstance(message, dict) and message.get("Event") == "s3:TestEvent"


@tracer.capture_method
def record_handler(record: S3EventInSqsRecord) -> None:
    """Take in every object named by one SQS message's S3 event."""
    for s3_record in record.body.Records:
        bucket = s3_record.s3.bucket.name
        key = unquote_plus(s3_record.s3.object.key)
        outcome = take_in_upload(bucket, key)
        logger.info("took in an upload", extra=outcome.model_dump(mode="json", exclude_none=True))
        if outcome.result == "registered":
            metrics.add_metric(name="ImagesRegistered", unit=MetricUnit.Count, value=1)
        elif outcome.result == "duplicate_upload":
            metrics.add_metric(name="DuplicateUploads", unit=MetricUnit.Count, value=1)
        elif outcome.result == "quarantined":
            metrics.add_metric(name="UploadsQuarantined", unit=MetricUnit.Count, value=1)
        elif outcome.result == "folder_marker":
            metrics.add_metric(name="FolderMarkersIgnored", unit=MetricUnit.Count, value=1)
        if outcome.run_start is not None and outcome.run_start.started:
            metrics.add_metric(name="RunsStarted", unit=MetricUnit.Count, value=1)


@lambda_handler
def handler(event: dict, context: LambdaContext) -> dict:
    """Process the batch; return the SQS partial-failure response."""
    records = [record for record in event["Records"] if not is_s3_test_event(record["body"])]
    skipped = len(event["Records"]) - len(records)
    if skipped:
        logger.info("skipped S3 test events", extra={"count": skipped})
    return process_partial_response(
        event={"Records": records}, record_handler=record_handler, processor=processor, context=context
    )
