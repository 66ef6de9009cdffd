"""Human-answer Lambda: S3 ObjectCreated on ``a2i-output/…/output.json`` (A2I) or ``answers/…/output.json``
(boxloop's labelling API, the same format) → QC, store, charge, resume; an answer that matches no open task is
recorded under ``rejected-answers/`` and counted in the ``HumanAnswersUntrusted`` metric.

Each output object is handled once (Powertools Idempotency keyed on the object key, DynamoDB
table ``IDEMPOTENCY_TABLE``); beneath that, the write-once label and the per-loop counting
marker keep a redelivered event from counting twice even after the idempotency record expires.
"""

from __future__ import annotations

from functools import cache
from urllib.parse import unquote_plus

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from boxloop.layout import is_human_answer_key
from lambdas.adapters.clients import aws_client
from lambdas.environment import lambda_environment
from lambdas.human_review.outputs import UNTRUSTED, handle_output
from lambdas.ingest.events import S3Event
from lambdas.observability import lambda_handler, logger, metrics

idempotency_config = IdempotencyConfig(expires_after_seconds=7 * 24 * 3600)


@cache
def _persistence_layer() -> DynamoDBPersistenceLayer:
    return DynamoDBPersistenceLayer(
        table_name=lambda_environment().require("idempotency_table"), boto3_client=aws_client("dynamodb")
    )


def _handle_output_once(bucket: str, output_key: str) -> dict:
    """``handle_output`` at most once per output object key."""

    @idempotent_function(
        data_keyword_argument="output_key", persistence_store=_persistence_layer(), config=idempotency_config
    )
    def handle_output_idempotently(output_key: str) -> dict:
        return handle_output(bucket, output_key).model_dump()

    return handle_output_idempotently(output_key=output_key)


@lambda_handler
@event_parser(model=S3Event)
def handler(event: S3Event, context: LambdaContext) -> dict:
    """Handle every human-answer object (A2I's or the labelling API's) named by the event."""
    idempotency_config.register_lambda_context(context)
    handled = []
    for record in event.Records:
        key = unquote_plus(record.s3.object.key)
        if not is_human_answer_key(key):
            logger.warning("ignored an event for a key that is not a human answer", extra={"key": key})
            continue
        result = _handle_output_once(record.s3.bucket.name, key)
        if result["outcome"] == UNTRUSTED:
            logger.warning("rejected an answer that matches no open task", extra={"key": key, **result})
        else:
            logger.info("handled a human answer", extra={"key": key, **result})
        metrics.add_metric(name=f"HumanAnswers{result['outcome'].capitalize()}", unit=MetricUnit.Count, value=1)
        handled.append(result)
    return {"handled": handled}
