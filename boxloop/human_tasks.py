"""SelectImagesForHumans' decision: the global pick of what humans label this iteration, within the budget left.

Merges the shards' candidates (``merge_candidates``) and audit candidates (``merge_audit_candidates``),
then fills the tasks in this order, each image only if its estimated seconds still fit what is left of
the budget: the audit slice (purpose ``audit``: random auto-label candidates checked by humans;
publishing removes them from the auto-labels), the uncertain, diverse batch (``select_for_humans``,
purpose ``uncertain``) and gold images (purpose ``gold``, ``qc.gold_share`` of the tasks: validation
images whose human label is the known answer). Seconds per image are estimated conservatively
(``boxloop.human_budget``): the larger of ``expected_label_seconds`` and the run's measured seconds per answer
at a high quantile; the caller passes what one wave may spend (``boxloop.human_budget.wave_budget``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence

from pydantic import BaseModel

from boxloop.config import LabelingConfig
from boxloop.human_budget import task_seconds_estimator
from boxloop.keyed_draw import keyed_rank
from boxloop.models import HumanTask, HumanTaskPurpose, LabelRecord
from boxloop.selection import (
    DIVERSITY_POOL_FACTOR,
    Candidate,
    merge_audit_candidates,
    merge_candidates,
    select_for_humans,
    take_within_budget,
)

OBSERVED_SECONDS_MARGIN = 1.25
"""Where only a mean is known (``observed_seconds_per_answer``), it is scaled by this to stay on the safe side."""


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


def seconds_estimator(observed: float | None, prefilled: bool) -> Callable[[int], float]:
    """Conservative seconds to label an image with ``n`` boxes, never below ``observed`` seconds per answer."""
    return task_seconds_estimator(observed, prefilled=prefilled)


def observed_seconds_per_answer(seconds_used: float, answers: int) -> float | None:
    """``OBSERVED_SECONDS_MARGIN`` x the run's mean seconds per answer (None before any answer), where only
    totals are known; the loop itself uses ``boxloop.human_budget.measured_seconds_quantile``."""
    return OBSERVED_SECONDS_MARGIN * seconds_used / answers if answers else None


def gold_order(records: Iterable[LabelRecord], seed: int, iteration: int) -> list[LabelRecord]:
    """Validation labels in the keyed-random order gold images are drawn in (purpose ``gold:<iteration>``)."""
    return sorted(records, key=lambda record: keyed_rank(seed, f"gold:{iteration}", record.image_id))


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


def _gold_task(record: LabelRecord) -> HumanTask:
    return HumanTask(
        image_id=record.image_id,
        source_ref=record.source_ref,
        width=record.width,
        height=record.height,
        purpose=HumanTaskPurpose.GOLD,
        gold_boxes=record.boxes,
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
    labels eligible as gold in pick order (called only when gold is due). ``remaining`` is what this wave may
    spend; ``observed`` the seconds per answer no task is expected to beat (the measured quantile).
    ``prefilled`` says whether the tasks show the model's boxes (the estimate of seconds halves when they do).
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
    tasks += [_gold_task(r) for r in gold]
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
