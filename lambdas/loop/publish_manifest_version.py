"""PublishManifestVersion: the iteration's manifest version, its ``metrics.json``, and whether the run is done.

Idempotent on run + iteration: an iteration already published keeps its version and
its ``metrics.json`` (written once), and the same answer is returned. The counts in the
metrics are the differences between this version's index and the previous one's, so they
are the same however often the step runs.
"""

from __future__ import annotations

from datetime import UTC, datetime

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from boxloop.config import LabelingConfig
from boxloop.initial_sample import random_sample
from boxloop.iteration_outcome import HumanAnswerCounts, LoopHistory, audit_miou, iteration_metrics, loop_progress
from boxloop.layout import RunLayout
from boxloop.models import Box, HumanTaskPurpose, IterationMetrics, LabelSource, ScoredBox
from boxloop.publish import VersionIndex
from boxloop.threshold_step import ThresholdDocument
from lambdas.adapters.runs import get_run_state, registered_image_count
from lambdas.adapters.storage import write_document_once
from lambdas.loop.events import PublishEvent
from lambdas.loop.manifest_versions import publish_version, version_of_iteration
from lambdas.loop.run_data import (
    answer_ids,
    initial_pool_shards,
    iter_tasks,
    latest_index,
    read_index,
    read_label,
    read_model,
    read_pool_index,
    read_run_config,
    task_ids_up_to,
)
from lambdas.observability import lambda_handler, logger, metrics


def audited_pairs(layout: RunLayout, iteration: int) -> list[tuple[list[ScoredBox], list[Box]]]:
    """(the model's boxes, the human's boxes) of each audit task of ``iteration`` with an accepted label."""
    accepted = set(answer_ids(layout, layout.labels(iteration)))
    return [
        (task.prefill, read_label(layout, iteration, task.image_id).boxes)
        for task in iter_tasks(layout, iteration)
        if task.purpose == HumanTaskPurpose.AUDIT and task.image_id in accepted
    ]


def measure_iteration(
    layout: RunLayout, config: LabelingConfig, iteration: int, index: VersionIndex, human_seconds_total: float
) -> IterationMetrics:
    """``boxloop.iteration_outcome.iteration_metrics`` over the iteration's documents and answers in S3."""
    return iteration_metrics(
        run_id=layout.run_id,
        iteration=iteration,
        config=config,
        index=index,
        previous=read_index(layout, index.previous_version) if index.previous_version is not None else None,
        threshold=read_model(layout, layout.threshold(iteration), ThresholdDocument),
        previous_metrics=read_model(layout, layout.metrics(iteration - 1), IterationMetrics) if iteration else None,
        pool_images=read_pool_index(layout).total,
        answers=HumanAnswerCounts(
            sent=sum(1 for _ in iter_tasks(layout, iteration)),
            accepted=len(answer_ids(layout, layout.labels(iteration))),
            rejected=len(answer_ids(layout, layout.rejected(iteration))),
            gold=len(answer_ids(layout, layout.gold(iteration))),
            unlabellable=len(answer_ids(layout, layout.unlabellable(iteration))),
        ),
        audited_miou=audit_miou(audited_pairs(layout, iteration)),
        human_seconds_total=human_seconds_total,
        finished_at=datetime.now(UTC),
    )


def loop_history(layout: RunLayout, config: LabelingConfig, iteration: int) -> LoopHistory:
    """The trained iterations so far, whether the initial sample has all been sent, and this iteration's wave."""
    sent = task_ids_up_to(layout, iteration)
    sample = random_sample(initial_pool_shards(layout), config.initial_sample_size, config.seed)
    trained = [
        read_model(layout, layout.threshold(earlier), ThresholdDocument) is not None for earlier in range(iteration + 1)
    ]
    return LoopHistory(
        trained=trained[-1],
        trained_iterations=sum(trained),
        initial_sample_sent=all(record.image_id in sent for record in sample),
        finishing=any(task.purpose == HumanTaskPurpose.REMAINING for task in iter_tasks(layout, iteration)),
    )


def publish_manifest_version(event: PublishEvent) -> dict:
    """Publish (or find) the iteration's version, write its metrics once, emit them, say whether the run is done."""
    layout = event.layout
    config = read_run_config(layout)
    latest = latest_index(layout)
    index = version_of_iteration(layout, latest, event.iteration)
    if index is None:
        index = publish_version(layout, config, event.iteration, latest)
        logger.info("published a manifest version", extra={"version": index.version, "counts": index.counts})
    else:
        logger.info("iteration already published; nothing written", extra={"version": index.version})
    figures = read_model(layout, layout.metrics(event.iteration), IterationMetrics)
    if figures is None:
        state = get_run_state(event.run_id)
        used = state.human_seconds_used if state else 0.0
        figures = measure_iteration(layout, config, event.iteration, index, used)
        if not write_document_once(layout.bucket, layout.metrics(event.iteration), figures.model_dump_json(indent=1)):
            figures = read_model(layout, layout.metrics(event.iteration), IterationMetrics)
    auto_total = index.counts.get(LabelSource.AUTO.value, 0)
    metrics.add_metric(
        name="AutoLabelledShare",
        unit=MetricUnit.NoUnit,
        value=auto_total / figures.images_in_pool if figures.images_in_pool else 0.0,
    )
    metrics.add_metric(name="HumanHoursUsed", unit=MetricUnit.NoUnit, value=figures.human_seconds_total / 3600)
    metrics.add_metric(name="HumanHoursBudget", unit=MetricUnit.NoUnit, value=figures.human_budget_seconds / 3600)
    metrics.add_metric(
        name="HumanBudgetUsedPercent",
        unit=MetricUnit.Percent,
        value=100 * figures.human_seconds_total / figures.human_budget_seconds,
    )
    history = loop_history(layout, config, event.iteration)
    result = loop_progress(config, figures, registered_image_count(), history).model_dump()
    logger.info("iteration finished", extra=result)
    return result


@lambda_handler
@event_parser(model=PublishEvent)
def handler(event: PublishEvent, context: LambdaContext) -> dict:
    """Powertools entry point: see ``publish_manifest_version``."""
    return publish_manifest_version(event)
