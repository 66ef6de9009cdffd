"""Human-answer Lambda: S3 ObjectCreated on ``a2i-output/…/output.json`` → QC, store, charge, resume.

Each output object is handled once (Powertools Idempotency keyed on the object key, DynamoDB
table ``IDEMPOTENCY_TABLE``); beneath that, the write-once label and the per-loop counting
marker keep a redelivered event from counting twice even after the idempotency record expires.
"""

from __future__ import annotations

import os
from functools import cache
from urllib.parse import unquote_plus

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.ingest.events import S3Event
from lambdas.human_review.outputs import handle_output

A2I_OUTPUT_PREFIX = "a2i-output/"
OUTPUT_FILE_NAME = "output.json"

logger = Logger()
metrics = Metrics()
tracer = Tracer()
idempotency_config = IdempotencyConfig(expires_after_seconds=7 * 24 * 3600)


@cache
def _persistence_layer() -> DynamoDBPersistenceLayer:
    return DynamoDBPersistenceLayer(table_name=os.environ["IDEMPOTENCY_TABLE"])


def _handle_output_once(bucket: str, output_key: str) -> dict:
    """``handle_output`` at most once per output object key."""

    @idempotent_function(
        data_keyword_argument="output_key", persistence_store=_persistence_layer(), config=idempotency_config
    )
    def handle_output_idempotently(output_key: str) -> dict:
        return handle_output(bucket, output_key).model_dump()

    return handle_output_idempotently(output_key=output_key)


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
@event_parser(model=S3Event)
def handler(event: S3Event, context: LambdaContext) -> dict:
    """Handle every A2I output object named by the event."""
    idempotency_config.register_lambda_context(context)
    handled = []
    for record in event.Records:
        key = unquote_plus(record.s3.object.key)
        if not (key.startswith(A2I_OUTPUT_PREFIX) and key.endswith(f"/{OUTPUT_FILE_NAME}")):
            logger.warning("ignored an event for a key that is not an A2I output", extra={"key": key})
            continue
        result = _handle_output_once(record.s3.bucket.name, key)
        logger.info("handled a human answer", extra={"key": key, **result})
        metrics.add_metric(name=f"HumanAnswers{result['outcome'].capitalize()}", unit=MetricUnit.Count, value=1)
        handled.append(result)
    return {"handled": handled}
