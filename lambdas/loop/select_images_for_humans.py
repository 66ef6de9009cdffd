"""SelectImagesForHumans: the global pick of what humans label this iteration, within the remaining budget.

Reads the routed shards' candidates, the validation labels not yet used as gold, the run's
budget and its measured answer seconds; ``boxloop.human_tasks.plan_human_tasks`` chooses the audit,
uncertain and gold tasks of a wave whose expected seconds fit ``boxloop.human_budget.wave_budget`` (each task
expected to cost at least the measured quantile); writes ``tasks.jsonl`` and ``selection.json``.
"""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from boxloop.config import LabelingConfig
from boxloop.human_budget import measured_seconds_quantile, wave_budget
from boxloop.human_tasks import SelectionRecord, gold_order, plan_human_tasks
from boxloop.layout import RunLayout
from boxloop.manifest import iter_records
from boxloop.models import HumanTask, HumanTaskPurpose, LabelRecord
from boxloop.selection import Candidate, RoutedCandidates
from lambdas.adapters.runs import answer_seconds, get_run_state
from lambdas.adapters.storage import iter_document_lines, list_keys, write_document, write_jsonl
from lambdas.loop.events import IterationEvent
from lambdas.loop.run_data import iter_tasks, read_model, read_run_config
from lambdas.observability import lambda_handler, logger, metrics


def _read_routed(layout: RunLayout, iteration: int) -> tuple[list[list[Candidate]], list[list[Candidate]]]:
    candidates, audit = [], []
    for key in list_keys(layout.bucket, layout.routing_prefix(iteration, "candidates")):
        routed = read_model(layout, key, RoutedCandidates)
        candidates.append(routed.candidates)
        audit.append(routed.audit_candidates)
    return candidates, audit


def gold_pool(layout: RunLayout, iteration: int, attribute: str, seed: int) -> list[LabelRecord]:
    """Validation labels not used as gold before, in keyed-random order."""
    used = {
        task.image_id
        for earlier in range(iteration)
        for task in iter_tasks(layout, earlier)
        if task.purpose == HumanTaskPurpose.GOLD
    }
    records = []
    for key in list_keys(layout.bucket, layout.training_channel(iteration, "validation")):
        for record in iter_records(iter_document_lines(layout.bucket, key), f"s3://{layout.bucket}/{key}", attribute):
            if record.image_id not in used:
                records.append(record)
    return gold_order(records, seed, iteration)


def choose_tasks(
    layout: RunLayout, iteration: int, config: LabelingConfig, remaining: float, observed: float | None
) -> tuple[list[HumanTask], SelectionRecord]:
    """``plan_human_tasks`` over this iteration's routed shards and validation labels in S3."""
    shard_candidates, shard_audit = _read_routed(layout, iteration)
    return plan_human_tasks(
        shard_candidates,
        shard_audit,
        lambda: gold_pool(layout, iteration, config.label_attribute, config.seed + iteration),
        config,
        iteration,
        remaining,
        observed,
    )


def select_images_for_humans(event: IterationEvent) -> dict:
    """Write ``tasks.jsonl`` and ``selection.json``; returns ``tasks_key`` and ``task_count`` (and the split)."""
    layout = event.layout
    config = read_run_config(layout)
    state = get_run_state(event.run_id)
    if state is None:
        raise RuntimeError(f"run {event.run_id} has no state item: RegisterPool has not run")
    remaining = max(state.human_budget_seconds - state.human_seconds_used, 0.0)
    measured = answer_seconds(event.run_id)
    budget = wave_budget(remaining, len(measured))
    tasks, record = choose_tasks(layout, event.iteration, config, budget, measured_seconds_quantile(measured))
    key = layout.tasks(event.iteration)
    write_jsonl(layout.bucket, key, (task.model_dump_json() for task in tasks))
    write_document(layout.bucket, layout.selection(event.iteration), record.model_dump_json(indent=1))
    metrics.add_metric(name="HumanTasks", unit=MetricUnit.Count, value=len(tasks))
    metrics.add_metric(name="EstimatedHumanSeconds", unit=MetricUnit.Seconds, value=record.estimated_seconds)
    result = {
        "tasks_key": key,
        "task_count": len(tasks),
        "audit": len(record.audit_ids),
        "uncertain": len(record.uncertain_ids),
        "gold": len(record.gold_ids),
        "estimated_seconds": record.estimated_seconds,
        "remaining_budget_seconds": remaining,
        "stop_reason": record.stop_reason,
    }
    logger.info("selected images for humans", extra=result)
    return result


@lambda_handler
@event_parser(model=IterationEvent)
def handler(event: IterationEvent, context: LambdaContext) -> dict:
    """Powertools entry point: see ``select_images_for_humans``."""
    return select_images_for_humans(event)
