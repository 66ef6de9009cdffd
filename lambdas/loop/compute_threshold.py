"""ComputeThreshold: the guaranteed auto-labelling threshold of this iteration (DESIGN.md "The guarantee").

Reads the validation channel's human boxes, the pool inference output and (with
``quality.human_parity``) the gold scores; ``boxloop.threshold_step`` measures the validation
images and decides. Writes ``threshold.json`` (the decision with its curve) and ``model.json``
(the training job, for the next iteration's warm start).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from boxloop.layout import RunLayout
from boxloop.models import Prediction
from boxloop.threshold_step import measure_validation, threshold_step
from lambdas.adapters.storage import list_keys, write_document
from lambdas.loop.events import ComputeThresholdEvent
from lambdas.loop.run_data import gold_qualities, iter_jsonl, read_run_config, validation_boxes
from lambdas.observability import lambda_handler, logger, metrics


def iter_predictions(layout: RunLayout, iteration: int) -> Iterator[Prediction]:
    """The iteration's pool inference output, shard by shard."""
    for key in list_keys(layout.bucket, layout.inference(iteration)):
        yield from iter_jsonl(layout.bucket, key, Prediction)


def compute_threshold(event: ComputeThresholdEvent) -> dict:
    """Measure the validation images, choose the threshold, write ``threshold.json``; return its summary."""
    layout = event.layout
    config = read_run_config(layout)
    reference = validation_boxes(layout, event.iteration, config.label_attribute)
    document = threshold_step(
        measure_validation(iter_predictions(layout, event.iteration), reference),
        config.quality,
        lambda: gold_qualities(layout, event.iteration),
        iteration=event.iteration,
        model_version=event.model_version,
        computed_at=datetime.now(UTC).isoformat(),
    )
    decision = document.decision
    target = decision.target
    write_document(layout.bucket, layout.threshold(event.iteration), document.model_dump_json(indent=1))
    write_document(
        layout.bucket,
        layout.model_record(event.iteration),
        json.dumps(
            {
                "training_job_name": event.model_version,
                "model_artifact_key": layout.model_artifact(event.iteration, event.model_version),
            },
            indent=1,
        ),
    )
    if decision.threshold is not None:
        metrics.add_metric(name="Threshold", unit=MetricUnit.NoUnit, value=decision.threshold)
        metrics.add_metric(name="LowerBound", unit=MetricUnit.NoUnit, value=decision.lower_bound)
    metrics.add_metric(name="TargetMiou", unit=MetricUnit.NoUnit, value=target)
    logger.info("chose the threshold", extra={"statement": decision.statement, "n_validation": decision.n_validation})
    return {
        "threshold": decision.threshold,
        "lower_bound": decision.lower_bound,
        "target": target,
        "n_validation": decision.n_validation,
        "n_validation_above": decision.n_validation_above,
        "statement": decision.statement,
        "threshold_key": layout.threshold(event.iteration),
    }


@lambda_handler
@event_parser(model=ComputeThresholdEvent)
def handler(event: ComputeThresholdEvent, context: LambdaContext) -> dict:
    """Powertools entry point: see ``compute_threshold``."""
    return compute_threshold(event)
