"""Human-review consumer Lambda: SQS (human-review queue) → one A2I human loop per task.

Powertools BatchProcessor parses each message body into a ``HumanReviewRequest``; a
failing message alone returns to the queue (and, after its retries, to the DLQ).
"""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.parser.models import SqsRecordModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import Json

from lambdas.human_review.requests import HumanReviewRequest, start_review
from lambdas.observability import lambda_handler, logger, metrics, tracer


class HumanReviewRecord(SqsRecordModel):
    """An SQS record whose body is a human-review request."""

    body: Json[HumanReviewRequest]  # type: ignore[assignment]


processor = BatchProcessor(event_type=EventType.SQS, model=HumanReviewRecord)


@tracer.capture_method
def record_handler(record: HumanReviewRecord) -> None:
    """Start the human loops of one request."""
    request = record.body
    outcome = start_review(request)
    logger.info(
        "started human loops",
        extra={"run_id": request.run_id, "iteration": request.iteration, **outcome.model_dump()},
    )
    metrics.add_metric(name="HumanLoopsStarted", unit=MetricUnit.Count, value=outcome.started)


@lambda_handler
def handler(event: dict, context: LambdaContext) -> dict:
    """Process the batch; return the SQS partial-failure response."""
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
