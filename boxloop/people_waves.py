"""SelectWaveForPeople's decision: the next wave of images people label without a model's help.

Two kinds of wave, both sized to fit what is left of the budget (``boxloop.human_budget``):

- ``initial``: the next images of the random initial sample (``boxloop.initial_sample.random_sample`` over the
  pool registered at iteration 0), until the whole sample has been sent;
- ``remaining``: once the loop has stopped learning (iteration cap, no progress, nothing the model may
  auto-label), the unlabelled images nobody was sent yet, in keyed-random order, until pool or budget runs out.

Such tasks show no boxes and their object count is unknown, so each is expected to cost the time model's
seconds for ``expected_objects_per_image`` objects, never less than the measured quantile of this run's answers.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Sequence

from pydantic import BaseModel

from boxloop.config import LabelingConfig
from boxloop.human_budget import measured_seconds_quantile, task_seconds_estimator, wave_budget, wave_size
from boxloop.keyed_draw import keyed_rank
from boxloop.models import HumanTask, HumanTaskPurpose, ImageRecord

REMAINING_PURPOSE = "remaining"
"""The keyed-draw purpose ordering the images people finish after the loop stopped learning."""


class PeopleWave(BaseModel):
    """``iterations/<NNNN>/selection.json`` of a wave people label unaided: what was sent and what it may cost."""

    iteration: int
    purpose: HumanTaskPurpose
    remaining_budget_seconds: float
    wave_budget_seconds: float
    measured_answers: int
    seconds_per_task: float
    estimated_seconds: float
    image_ids: list[str]
    waiting: int
    """Images of this kind still to send after this wave."""


def unaided_task_seconds(config: LabelingConfig, answer_seconds: Sequence[float]) -> float:
    """Expected seconds of one task without pre-filled boxes and with an unknown number of objects."""
    objects = math.ceil(config.expected_objects_per_image)
    return task_seconds_estimator(measured_seconds_quantile(answer_seconds), prefilled=False)(objects)


def _task(record: ImageRecord, purpose: HumanTaskPurpose) -> HumanTask:
    return HumanTask(
        image_id=record.image_id,
        source_ref=record.source_ref,
        width=record.width,
        height=record.height,
        purpose=purpose,
    )


def plan_people_wave(
    *,
    initial_sample: Sequence[ImageRecord],
    pool: Iterable[ImageRecord],
    sent_ids: set[str],
    labelled_ids: set[str],
    config: LabelingConfig,
    iteration: int,
    remaining: float,
    answer_seconds: Sequence[float],
) -> tuple[list[HumanTask], PeopleWave]:
    """The next wave: initial-sample images not sent yet, else (``pool``) unlabelled images nobody was sent.

    ``initial_sample`` is the random initial sample in draw order; ``sent_ids`` the images sent to people in
    earlier iterations; ``remaining`` what is left of the budget; ``answer_seconds`` this run's measured seconds
    per answer. A wave holds as many tasks as fit ``wave_budget``; when none fits it but one fits all that is
    left, it holds one.
    """
    per_task = unaided_task_seconds(config, answer_seconds)
    budget = wave_budget(remaining, len(answer_seconds))
    initial_waiting = [record for record in initial_sample if record.image_id not in sent_ids]
    if initial_waiting:
        purpose, candidates, available = HumanTaskPurpose.INITIAL, initial_waiting, len(initial_waiting)
    else:
        purpose = HumanTaskPurpose.REMAINING
        unsent = {r.image_id: r for r in pool if r.image_id not in sent_ids and r.image_id not in labelled_ids}
        available = len(unsent)
        candidates = []
    size = wave_size(per_task, budget, available, len(answer_seconds))
    if size == 0 and available and per_task <= remaining:
        size = 1
    if purpose == HumanTaskPurpose.REMAINING:
        order = heapq.nsmallest(size, unsent, key=lambda image_id: keyed_rank(config.seed, REMAINING_PURPOSE, image_id))
        candidates = [unsent[image_id] for image_id in order]
    chosen = candidates[:size]
    record = PeopleWave(
        iteration=iteration,
        purpose=purpose,
        remaining_budget_seconds=remaining,
        wave_budget_seconds=budget,
        measured_answers=len(answer_seconds),
        seconds_per_task=per_task,
        estimated_seconds=per_task * len(chosen),
        image_ids=[r.image_id for r in chosen],
        waiting=available - len(chosen),
    )
    return [_task(r, purpose) for r in chosen], record


class PeopleFinish(BaseModel):
    """What people finished after the loop stopped learning, and why any image is still unlabelled."""

    images_finished_by_people: int = 0
    learning_stopped: str | None = None
    """Why the loop stopped training (None when it never stopped before the pool was labelled)."""
    unlabelled_reason: str | None = None
    """Why images remain unlabelled (None when none does)."""


def people_finish(
    config: LabelingConfig,
    *,
    finished: int,
    finishing_waves: int,
    trained_iterations: int,
    unlabelled: int,
    budget_left: float,
    answer_seconds: Sequence[float],
) -> PeopleFinish:
    """The report's account of the finishing waves from the run's counts."""
    if not config.auto_label:
        stopped: str | None = "the corpus is too small to learn from, so no detector was trained (auto_label false)"
    elif finishing_waves and trained_iterations >= config.max_iterations:
        stopped = f"the iteration cap was reached (max_iterations {config.max_iterations})"
    elif finishing_waves:
        stopped = "a trained iteration labelled no image (no progress: nothing the model may auto-label)"
    else:
        stopped = None
    reason = None
    if unlabelled:
        if budget_left < unaided_task_seconds(config, answer_seconds):
            reason = "the budget is spent: not one more image fits what is left"
        else:
            reason = "the last wave sent to people came back without a label (unanswered or rejected by QC)"
    return PeopleFinish(images_finished_by_people=finished, learning_stopped=stopped, unlabelled_reason=reason)
