"""The human budget as a hard limit: how much one wave of human tasks may cost, and what a task is expected to cost.

Every human batch (initial sample, uncertain images, audits, gold, the finishing waves) is issued as a wave
whose expected seconds fit what is left of the budget. Until the run has answers, a task's seconds come from
the per-object time model (``boxloop.labeling_time``), which knows nothing yet of how many objects the corpus's
images hold: such a calibration wave holds at most ``CALIBRATION_WAVE_TASKS`` tasks and may spend at most
``FIRST_WAVE_BUDGET_SHARE`` of what is left, so people slower than the model overrun the budget by no more than
a few tasks before they are measured. Once
answers exist, a task costs at least the ``ANSWER_SECONDS_QUANTILE`` quantile of this run's measured seconds per
answer (a high quantile, not the mean). Only tasks in flight when a wave ran long can overshoot the budget;
``overshoot_seconds`` says by how much.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from boxloop.labeling_time import expected_label_seconds

ANSWER_SECONDS_QUANTILE = 0.9
"""Which quantile of this run's measured seconds per answer a task is expected to cost (at least)."""

FIRST_WAVE_BUDGET_SHARE = 0.25
"""Before any answer is measured, a wave may spend at most this share of what is left of the budget."""

MIN_MEASURED_ANSWERS = 5
"""Fewer measured answers than this are not trusted alone: the next wave is again a calibration wave."""

CALIBRATION_WAVE_TASKS = 10
"""The most tasks a wave holds before ``MIN_MEASURED_ANSWERS`` answers are measured."""


def measured_seconds_quantile(answer_seconds: Sequence[float]) -> float | None:
    """The ``ANSWER_SECONDS_QUANTILE`` quantile of the run's measured seconds per answer (None without answers)."""
    if not answer_seconds:
        return None
    return float(np.quantile(np.asarray(answer_seconds, dtype=float), ANSWER_SECONDS_QUANTILE))


def wave_budget(remaining_seconds: float, measured_answers: int) -> float:
    """What one wave may be expected to cost: all that is left once answers are measured, a share of it before."""
    remaining = max(remaining_seconds, 0.0)
    return remaining if measured_answers >= MIN_MEASURED_ANSWERS else FIRST_WAVE_BUDGET_SHARE * remaining


def task_seconds_estimator(measured_quantile: float | None, prefilled: bool) -> Callable[[int], float]:
    """Expected seconds of a task with ``n`` objects: the time model, never below the measured quantile."""
    floor = measured_quantile or 0.0
    return lambda n_objects: max(expected_label_seconds(n_objects, prefilled=prefilled, cluttered=n_objects > 1), floor)


def wave_size(per_task_seconds: float, budget_seconds: float, available: int, measured_answers: int) -> int:
    """How many tasks of ``per_task_seconds`` each fit in ``budget_seconds`` (at most ``available``, and at most
    ``CALIBRATION_WAVE_TASKS`` before ``MIN_MEASURED_ANSWERS`` answers are measured)."""
    if per_task_seconds <= 0:
        raise ValueError(f"per_task_seconds must be positive, got {per_task_seconds}")
    cap = available if measured_answers >= MIN_MEASURED_ANSWERS else min(available, CALIBRATION_WAVE_TASKS)
    return max(min(math.floor(budget_seconds / per_task_seconds), cap), 0)


def overshoot_seconds(used_seconds: float, budget_seconds: float) -> float:
    """Seconds charged beyond the budget (only tasks in flight when a wave ran long can cause any)."""
    return max(used_seconds - budget_seconds, 0.0)
