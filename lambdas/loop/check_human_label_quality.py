"""CheckHumanLabelQuality: fail the run, clearly, when too many initial human labels failed QC.

Counts the initial sample's accepted labels (``human/labels/``) and rejected answers
(``human/rejected/``) and applies ``boxloop.qc.check_initial_sample``; the raised
``HumanQualityError`` becomes the run's error (RecordFailure → RunFailed).
"""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from boxloop.qc import check_initial_sample
from lambdas.loop.events import IterationEvent
from lambdas.loop.run_data import answer_ids, iter_tasks, read_run_config
from lambdas.observability import lambda_handler, logger, metrics


def check_human_label_quality(event: IterationEvent) -> dict:
    """Raise HumanQualityError when the failed share exceeds ``qc.max_initial_failure_share``."""
    layout = event.layout
    config = read_run_config(layout)
    accepted = len(answer_ids(layout, layout.labels(event.iteration)))
    rejected = len(answer_ids(layout, layout.rejected(event.iteration)))
    sent = sum(1 for _ in iter_tasks(layout, event.iteration))
    metrics.add_metric(name="InitialLabelsAccepted", unit=MetricUnit.Count, value=accepted)
    metrics.add_metric(name="InitialLabelsRejected", unit=MetricUnit.Count, value=rejected)
    result = check_initial_sample(accepted, rejected, sent, config.qc.max_initial_failure_share).model_dump()
    logger.info("initial human labels passed the quality gate", extra=result)
    return result


@lambda_handler
@event_parser(model=IterationEvent)
def handler(event: IterationEvent, context: LambdaContext) -> dict:
    """Powertools entry point: see ``check_human_label_quality``."""
    return check_human_label_quality(event)
