"""PublishManifestVersion: the iteration's manifest version, its ``metrics.json``, and whether the run is done.

Idempotent on run + iteration: an iteration already published keeps its version and
its ``metrics.json`` (written once), and the same answer is returned. The counts in the
metrics are the differences between this version's index and the previous one's, so they
are the same however often the step runs.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from boxloop.config import LabelingConfig
from boxloop.labeling_time import expected_label_seconds
from boxloop.models import HumanTaskPurpose, IterationMetrics, LabelSource, ThresholdSummary
from boxloop.publish import VersionIndex
from boxloop.quality import image_miou
from lambdas.adapters.documents import write_document_once
from lambdas.adapters.runs import get_run_state, registered_image_count
from lambdas.loop.events import PublishEvent
from lambdas.loop.manifest_versions import publish_version, version_of_iteration
from lambdas.loop.run_data import (
    ThresholdDocument,
    answer_ids,
    iter_tasks,
    latest_index,
    read_index,
    read_label,
    read_model,
    read_pool_index,
    read_run_config,
)
from lambdas.loop.run_layout import RunLayout

logger = Logger()
metrics = Metrics()
tracer = Tracer()

CHEAPEST_TASK_SECONDS = expected_label_seconds(0, prefilled=True, cluttered=False)
"""Below this much budget left no image can be sent to humans: the budget is spent."""


def _count_delta(index: VersionIndex, previous: VersionIndex | None, source: LabelSource) -> int:
    before = previous.counts.get(source.value, 0) if previous else 0
    return index.counts.get(source.value, 0) - before


def _audit_miou(layout: RunLayout, iteration: int) -> float | None:
    """Mean IoU of the auto-label candidates humans audited this iteration against the humans' labels."""
    accepted = set(answer_ids(layout, layout.labels(iteration)))
    qualities = [
        image_miou(task.prefill, read_label(layout, iteration, task.image_id).boxes)
        for task in iter_tasks(layout, iteration)
        if task.purpose == HumanTaskPurpose.AUDIT and task.image_id in accepted
    ]
    return float(np.mean(qualities)) if qualities else None


def iteration_metrics(
    layout: RunLayout, config: LabelingConfig, iteration: int, index: VersionIndex, human_seconds_total: float
) -> IterationMetrics:
    """The iteration's figures (docs: ``boxloop.models.IterationMetrics``)."""
    previous = read_index(layout, index.previous_version) if index.previous_version is not None else None
    threshold = read_model(layout, layout.threshold(iteration), ThresholdDocument)
    previous_metrics = read_model(layout, layout.metrics(iteration - 1), IterationMetrics) if iteration else None
    pool_images = read_pool_index(layout).total
    labels = len(answer_ids(layout, layout.labels(iteration)))
    rejected = len(answer_ids(layout, layout.rejected(iteration)))
    gold = len(answer_ids(layout, layout.gold(iteration)))
    sent = sum(1 for _ in iter_tasks(layout, iteration))
    summary = None
    if threshold is not None:
        decision = threshold.decision
        summary = ThresholdSummary(
            threshold=decision.threshold,
            lower_bound=decision.lower_bound,
            target=decision.target,
            delta=decision.delta,
            n_validation=decision.n_validation,
            n_validation_above=decision.n_validation_above,
            statement=decision.statement,
        )
    seconds_before = previous_metrics.human_seconds_total if previous_metrics else 0.0
    return IterationMetrics(
        run_id=layout.run_id,
        iteration=iteration,
        manifest_version=index.version,
        model_version=threshold.model_version if threshold else None,
        threshold=summary,
        validation_miou=threshold.validation_miou if threshold else None,
        audit_miou=_audit_miou(layout, iteration),
        images_in_pool=pool_images,
        auto_labelled=_count_delta(index, previous, LabelSource.AUTO),
        human_labelled=_count_delta(index, previous, LabelSource.HUMAN),
        audit_labelled=_count_delta(index, previous, LabelSource.AUDIT),
        rejected_by_qc=rejected,
        unanswered=max(sent - labels - rejected - gold, 0),
        unlabelled_remaining=max(pool_images - index.total, 0),
        human_seconds=max(human_seconds_total - seconds_before, 0.0),
        human_seconds_total=human_seconds_total,
        human_budget_seconds=config.human_budget_seconds,
        finished_at=datetime.now(UTC),
    )


def progress(config: LabelingConfig, figures: IterationMetrics, images_waiting: int) -> dict:
    """``$.progress``: the next iteration and the four reasons to finish (``IsLabellingDone``)."""
    labelled_now = figures.auto_labelled + figures.human_labelled + figures.audit_labelled
    return {
        "next_iteration": figures.iteration + 1,
        "manifest_version": figures.manifest_version,
        "pool_labelled": figures.unlabelled_remaining == 0 and images_waiting <= 0,
        "budget_spent": figures.human_budget_seconds - figures.human_seconds_total < CHEAPEST_TASK_SECONDS,
        "iteration_cap_reached": figures.iteration >= config.max_iterations,
        "no_progress": figures.iteration > 0 and labelled_now == 0,
    }


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
        figures = iteration_metrics(layout, config, event.iteration, index, used)
        if not write_document_once(layout.bucket, layout.metrics(event.iteration), figures.model_dump_json(indent=1)):
            figures = read_model(layout, layout.metrics(event.iteration), IterationMetrics)
    auto_total = index.counts.get(LabelSource.AUTO.value, 0)
    metrics.add_metric(
        name="AutoLabelledShare", unit=MetricUnit.NoUnit, value=auto_total / figures.images_in_pool if figures.images_in_pool else 0.0
    )
    metrics.add_metric(name="HumanHoursUsed", unit=MetricUnit.NoUnit, value=figures.human_seconds_total / 3600)
    metrics.add_metric(name="HumanHoursBudget", unit=MetricUnit.NoUnit, value=figures.human_budget_seconds / 3600)
    metrics.add_metric(
        name="HumanBudgetUsedPercent",
        unit=MetricUnit.Percent,
        value=100 * figures.human_seconds_total / figures.human_budget_seconds,
    )
    result = progress(config, figures, registered_image_count())
    logger.info("iteration finished", extra=result)
    return result


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
@event_parser(model=PublishEvent)
def handler(event: PublishEvent, context: LambdaContext) -> dict:
    """Powertools entry point: see ``publish_manifest_version``."""
    return publish_manifest_version(event)
