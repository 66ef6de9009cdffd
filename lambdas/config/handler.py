"""Config Lambda: validate an uploaded ``config/labeling.json``, record the verdict, maybe start a run.

Event: S3 ObjectCreated on ``config/labeling.json`` (direct S3 notification). The verdict
goes to ``config/labeling.status.json``: ``{"valid": true, ...}`` or ``{"valid": false,
"error": "<message naming the field>"}``. No run starts on an invalid configuration.
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import unquote_plus

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from boxloop.config import ConfigError
from boxloop.layout import CONFIG_KEY, CONFIG_STATUS_KEY
from lambdas.adapters.labeling_config import read_labeling_config
from lambdas.adapters.storage import write_document
from lambdas.config.run_start import start_run_if_ready
from lambdas.ingest.events import S3Event
from lambdas.observability import lambda_handler, logger, metrics, tracer


class ConfigStatus(BaseModel):
    """``config/labeling.status.json``."""

    valid: bool
    checked_at: datetime
    error: str | None = None
    classes: list[str] | None = None
    min_images_to_start: int | None = None
    human_budget_hours: float | None = None


@tracer.capture_method
def check_config(bucket: str) -> ConfigStatus:
    """Validate the bucket's configuration, write its status, and start a run if it is valid and ready."""
    now = datetime.now(UTC)
    try:
        config = read_labeling_config(bucket)
    except ConfigError as exc:
        status = ConfigStatus(valid=False, checked_at=now, error=str(exc))
        write_document(bucket, CONFIG_STATUS_KEY, status.model_dump_json(indent=2, exclude_none=True))
        logger.error("rejected the labelling configuration", extra={"bucket": bucket, "error": str(exc)})
        metrics.add_metric(name="ConfigRejected", unit=MetricUnit.Count, value=1)
        return status
    status = ConfigStatus(
        valid=True,
        checked_at=now,
        classes=config.classes,
        min_images_to_start=config.min_images_to_start,
        human_budget_hours=config.human_budget_hours,
    )
    write_document(bucket, CONFIG_STATUS_KEY, status.model_dump_json(indent=2, exclude_none=True))
    metrics.add_metric(name="ConfigAccepted", unit=MetricUnit.Count, value=1)
    outcome = start_run_if_ready(bucket)
    logger.info("accepted the labelling configuration", extra={"bucket": bucket, "run_start": outcome.model_dump()})
    if outcome.started:
        metrics.add_metric(name="RunsStarted", unit=MetricUnit.Count, value=1)
    return status


@lambda_handler
@event_parser(model=S3Event)
def handler(event: S3Event, context: LambdaContext) -> dict:
    """Check the configuration once per event record naming ``config/labeling.json``."""
    verdicts = []
    for record in event.Records:
        key = unquote_plus(record.s3.object.key)
        if key != CONFIG_KEY:
            logger.warning("ignored an event for another key", extra={"key": key})
            continue
        verdicts.append(check_config(record.s3.bucket.name).valid)
    return {"checked": len(verdicts), "valid": verdicts}
