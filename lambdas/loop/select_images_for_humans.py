"""SelectImagesForHumans: the global pick of what humans label this iteration, within the remaining budget.

Merges the shards' candidates (``merge_candidates``) and audit candidates
(``merge_audit_candidates``), then fills ``tasks.jsonl`` in this order, each image only if
its estimated seconds still fit what is left of the budget: the audit slice (purpose
``audit``: random auto-label candidates checked by humans; PublishManifestVersion removes
them from the auto-labels), the uncertain, diverse batch (``select_for_humans``, purpose
``uncertain``) and gold images (purpose ``gold``, ``qc.gold_share`` of the tasks: validation
images whose human label is the known answer). Seconds per image are estimated
conservatively: the larger of ``expected_label_seconds`` and 1.25 x the run's observed
mean seconds per answer.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from boxloop.config import LabelingConfig
from boxloop.labeling_time import expected_label_seconds
from boxloop.manifest import iter_records
from boxloop.models import HumanTask, HumanTaskPurpose, LabelRecord
from boxloop.selection import (
    Candidate,
    merge_audit_candidates,
    merge_candidates,
    select_for_humans,
    take_within_budget,
)
from lambdas.adapters.documents import iter_document_lines, write_document
from lambdas.adapters.runs import get_run_state, human_batch
from lambdas.adapters.s3_store import list_keys, write_jsonl
from lambdas.loop.events import IterationEvent
from lambdas.loop.route_shard import DIVERSITY_POOL_FACTOR, RoutedCandidates
from lambdas.loop.run_data import iter_tasks, read_model, read_run_config
from lambdas.loop.run_layout import RunLayout

OBSERVED_SECONDS_MARGIN = 1.25
"""Observed mean seconds per answer are scaled by this before use, so estimates stay on the safe side."""

logger = Logger()
metrics = Metrics()
tracer = Tracer()


class SelectionRecord(BaseModel):
    """``iterations/<NNNN>/selection.json``: what was chosen, its estimated cost, and why selection stopped."""

    iteration: int
    remaining_budget_seconds: float
    seconds_per_answer_observed: float | None
    estimated_seconds: float
    audit_ids: list[str]
    uncertain_ids: list[str]
    gold_ids: list[str]
    stop_reason: str


def seconds_estimator(observed_mean: float | None, prefilled: bool) -> Callable[[int], float]:
    """Conservative seconds to label an image with ``n`` boxes."""
    floor = OBSERVED_SECONDS_MARGIN * observed_mean if observed_mean else 0.0
    return lambda n_boxes: max(expected_label_seconds(n_boxes, prefilled=prefilled, cluttered=n_boxes > 1), floor)


def observed_seconds_per_answer(run_id: str, iteration: int, seconds_used: float) -> float | None:
    """The run's human seconds so far divided by the answers counted so far (None before any answer)."""
    answers = 0
    for earlier in range(iteration):
        batch = human_batch(run_id, earlier)
        answers += batch.done if batch is not None else 0
    return seconds_used / answers if answers else None


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
    return sorted(records, key=lambda r: hashlib.sha256(f"{seed}:gold:{iteration}:{r.image_id}".encode()).hexdigest())


def _task(candidate: Candidate, purpose: HumanTaskPurpose) -> HumanTask:
    if candidate.source_ref is None or candidate.width is None or candidate.height is None:
        raise ValueError(f"prediction for image {candidate.image_id} lacks source_ref, width or height")
    return HumanTask(
        image_id=candidate.image_id,
        source_ref=candidate.source_ref,
        width=candidate.width,
        height=candidate.height,
        purpose=purpose,
        prefill=candidate.prefill,
    )


def plan_human_tasks(
    shard_candidates: Sequence[list[Candidate]],
    shard_audit: Sequence[list[Candidate]],
    gold_pool: Callable[[], Sequence[LabelRecord]],
    config: LabelingConfig,
    iteration: int,
    remaining: float,
    observed: float | None,
    prefilled: bool = True,
) -> tuple[list[HumanTask], SelectionRecord]:
    """Audit, uncertain and gold tasks whose estimated seconds together stay within ``remaining``.

    ``shard_candidates`` / ``shard_audit`` are the routed shards' lists; ``gold_pool`` gives the validation
    labels eligible as gold in pick order (called only when gold is due). ``prefilled`` says whether the
    tasks show the model's boxes (the estimate of seconds halves when they do).
    """
    seed = config.seed + iteration
    audit_pick = merge_audit_candidates(shard_audit, config.audit_size, seed)
    task_seconds = seconds_estimator(observed, prefilled=prefilled)
    audit, spent = take_within_budget(audit_pick, lambda c: task_seconds(c.n_boxes), 0.0, remaining)
    gold_factor = config.qc.gold_share / (1.0 - config.qc.gold_share)
    uncertain_budget = max(remaining - spent, 0.0) / (1.0 + gold_factor)
    selection = select_for_humans(
        merge_candidates(shard_candidates, config.human_batch_size * DIVERSITY_POOL_FACTOR),
        config.human_batch_size,
        uncertain_budget,
        lambda candidate: task_seconds(candidate.n_boxes),
        diversity_pool_factor=DIVERSITY_POOL_FACTOR,
    )
    spent += selection.estimated_seconds
    work = len(audit) + len(selection.selected)
    n_gold = math.floor(gold_factor * work + 0.5) if work else 0
    drawn_seconds = seconds_estimator(observed, prefilled=False)
    gold_candidates = list(gold_pool())[:n_gold] if n_gold else []
    gold, spent = take_within_budget(gold_candidates, lambda r: drawn_seconds(len(r.boxes)), spent, remaining)
    tasks = [_task(c, HumanTaskPurpose.AUDIT) for c in audit]
    tasks += [_task(c, HumanTaskPurpose.UNCERTAIN) for c in selection.selected]
    tasks += [
        HumanTask(
            image_id=r.image_id,
            source_ref=r.source_ref,
            width=r.width,
            height=r.height,
            purpose=HumanTaskPurpose.GOLD,
            gold_boxes=r.boxes,
        )
        for r in gold
    ]
    record = SelectionRecord(
        iteration=iteration,
        remaining_budget_seconds=remaining,
        seconds_per_answer_observed=observed,
        estimated_seconds=spent,
        audit_ids=[c.image_id for c in audit],
        uncertain_ids=[c.image_id for c in selection.selected],
        gold_ids=[r.image_id for r in gold],
        stop_reason="budget" if len(audit) < len(audit_pick) else selection.stop_reason,
    )
    return tasks, record


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
    observed = observed_seconds_per_answer(event.run_id, event.iteration, state.human_seconds_used)
    tasks, record = choose_tasks(layout, event.iteration, config, remaining, observed)
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


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
@event_parser(model=IterationEvent)
def handler(event: IterationEvent, context: LambdaContext) -> dict:
    """Powertools entry point: see ``select_images_for_humans``."""
    return select_images_for_humans(event)
