"""ComputeThreshold: the guaranteed auto-labelling threshold of this iteration (DESIGN.md "The guarantee").

For each validation image (human-labelled, never trained on) the model's prediction
gives q = ``image_miou(prediction, human boxes)`` and c = ``routing_confidence`` (the
very value RouteShard compares with the threshold, so the guarantee covers exactly
what is auto-labelled). ``choose_threshold`` picks the lowest guaranteed threshold for
the target: ``quality.target_miou``, or with ``quality.human_parity`` the measured
human quality on gold images minus the margin. Writes ``threshold.json`` (the decision
with its curve) and ``model.json`` (the training job, for the next iteration's warm start).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from boxloop.config import LabelingConfig
from boxloop.manifest import iter_records
from boxloop.models import Box, Prediction
from boxloop.quality import image_miou
from boxloop.selection import routing_confidence
from boxloop.threshold import TargetDecision, choose_threshold, human_parity_target
from lambdas.adapters.documents import iter_document_lines, write_document
from lambdas.adapters.s3_store import list_keys
from lambdas.loop.events import ComputeThresholdEvent
from lambdas.loop.run_data import ThresholdDocument, gold_qualities, iter_jsonl, read_run_config
from lambdas.loop.run_layout import RunLayout

logger = Logger()
metrics = Metrics()
tracer = Tracer()


def validation_boxes(layout: RunLayout, iteration: int, attribute: str) -> dict[str, list[Box]]:
    """Image id → human boxes of this iteration's validation channel."""
    boxes: dict[str, list[Box]] = {}
    for key in list_keys(layout.bucket, layout.training_channel(iteration, "validation")):
        for record in iter_records(iter_document_lines(layout.bucket, key), f"s3://{layout.bucket}/{key}", attribute):
            boxes[record.image_id] = record.boxes
    return boxes


def quality_target(layout: RunLayout, iteration: int, config: LabelingConfig) -> tuple[float, TargetDecision | None]:
    """The iteration's target mean IoU, and the human-parity decision behind it when configured."""
    parity = config.quality.human_parity
    if parity is None:
        return config.quality.target_miou, None
    decision = human_parity_target(gold_qualities(layout, iteration), parity)
    return decision.target, decision


def compute_threshold(event: ComputeThresholdEvent) -> dict:
    """Measure the validation images, choose the threshold, write ``threshold.json``; return its summary."""
    layout = event.layout
    config = read_run_config(layout)
    reference = validation_boxes(layout, event.iteration, config.label_attribute)
    confidences: list[float] = []
    qualities: list[float] = []
    failed = 0
    seen: set[str] = set()
    for key in list_keys(layout.bucket, layout.inference(event.iteration)):
        for prediction in iter_jsonl(layout.bucket, key, Prediction):
            if prediction.image_id not in reference or prediction.image_id in seen:
                continue
            seen.add(prediction.image_id)
            if prediction.error is not None:
                failed += 1
                continue
            confidences.append(routing_confidence(prediction))
            qualities.append(image_miou(prediction.boxes, reference[prediction.image_id]))
    target, target_decision = quality_target(layout, event.iteration, config)
    decision = choose_threshold(
        confidences,
        qualities,
        target,
        config.quality.delta,
        min_count=config.quality.min_validation_images,
        bound=config.quality.bound,
    )
    document = ThresholdDocument(
        iteration=event.iteration,
        model_version=event.model_version,
        decision=decision,
        target=target_decision,
        validation_miou=float(np.mean(qualities)) if qualities else None,
        validation_without_prediction=len(reference) - len(seen),
        validation_failed_predictions=failed,
        computed_at=datetime.now(UTC).isoformat(),
    )
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


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
@event_parser(model=ComputeThresholdEvent)
def handler(event: ComputeThresholdEvent, context: LambdaContext) -> dict:
    """Powertools entry point: see ``compute_threshold``."""
    return compute_threshold(event)
