"""PublishManifestVersion's decisions: the iteration's figures (``metrics.json``) and whether the loop goes on.

The label counts are the differences between the iteration's manifest version and the previous one,
so they are the same however often the step runs. The run finishes (``IsLabellingDone``) when the pool
is labelled and nothing waits to join it, when the budget left cannot pay for the cheapest task, or when a
wave for people labelled nothing (none fitted the budget, none was left to send, or nobody answered).
Otherwise the next iteration is a wave for people alone (``people_only``) while the initial sample has not
all been sent, and again once the loop stopped learning (the cap on trained iterations, or a trained
iteration that labelled nothing): the images still unlabelled are finished by people as far as the budget goes.
With ``auto_label`` false (a corpus too small to learn from, ``boxloop.run_plan``) every iteration is such a wave.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

import numpy as np
from pydantic import BaseModel, Field

from boxloop.config import LabelingConfig
from boxloop.labeling_time import expected_label_seconds
from boxloop.models import Box, IterationMetrics, LabelSource, ThresholdSummary
from boxloop.publish import VersionIndex
from boxloop.quality import image_miou
from boxloop.threshold_step import ThresholdDocument

CHEAPEST_TASK_SECONDS = expected_label_seconds(0, prefilled=True, cluttered=False)
"""Below this much budget left no image can be sent to humans: the budget is spent."""


class HumanAnswerCounts(BaseModel):
    """An iteration's human tasks sent and the answers stored for them."""

    sent: int = Field(ge=0)
    accepted: int = Field(ge=0)
    rejected: int = Field(ge=0)
    gold: int = Field(ge=0)
    unlabellable: int = Field(default=0, ge=0)

    @property
    def unanswered(self) -> int:
        """Tasks without an accepted, rejected, gold or cannot-label answer (never below 0: late answers count too)."""
        return max(self.sent - self.accepted - self.rejected - self.gold - self.unlabellable, 0)


class LoopHistory(BaseModel):
    """What the run did so far, beyond the iteration's figures: the facts ``loop_progress`` decides on."""

    trained: bool
    """This iteration trained a detector (people alone labelled in it otherwise)."""
    trained_iterations: int = Field(ge=0)
    """Iterations up to this one that trained a detector."""
    initial_sample_sent: bool
    """Every image of the initial sample has been sent to people."""
    finishing: bool
    """This iteration's wave was of images finished by people after the loop stopped learning."""


class LoopProgress(BaseModel):
    """``$.progress``: the next iteration, whether it is a wave for people alone, and the reasons to finish."""

    next_iteration: int
    manifest_version: int
    pool_labelled: bool
    budget_spent: bool
    iteration_cap_reached: bool
    no_progress: bool
    people_only: bool
    """The next iteration trains nothing: people label a wave (initial sample, or finishing the pool)."""
    people_done: bool
    """A wave for people labelled nothing: no image fitted the budget, none was left to send, or none came back."""


def label_count_delta(index: VersionIndex, previous: VersionIndex | None, source: LabelSource) -> int:
    """How many ``source`` labels ``index`` has beyond ``previous``."""
    before = previous.counts.get(source.value, 0) if previous else 0
    return index.counts.get(source.value, 0) - before


def audit_miou(audited: Iterable[tuple[Sequence[Box], Sequence[Box]]]) -> float | None:
    """Mean IoU of audited auto-label candidates: (the model's boxes, the human's boxes) per audited image."""
    qualities = [image_miou(model_boxes, human_boxes) for model_boxes, human_boxes in audited]
    return float(np.mean(qualities)) if qualities else None


def _threshold_summary(document: ThresholdDocument) -> ThresholdSummary:
    decision = document.decision
    return ThresholdSummary(
        threshold=decision.threshold,
        lower_bound=decision.lower_bound,
        target=decision.target,
        delta=decision.delta,
        n_validation=decision.n_validation,
        n_validation_above=decision.n_validation_above,
        statement=decision.statement,
    )


def iteration_metrics(
    *,
    run_id: str,
    iteration: int,
    config: LabelingConfig,
    index: VersionIndex,
    previous: VersionIndex | None,
    threshold: ThresholdDocument | None,
    previous_metrics: IterationMetrics | None,
    pool_images: int,
    answers: HumanAnswerCounts,
    audited_miou: float | None,
    human_seconds_total: float,
    finished_at: datetime,
) -> IterationMetrics:
    """The iteration's figures from its version, the previous version and the iteration's documents."""
    seconds_before = previous_metrics.human_seconds_total if previous_metrics else 0.0
    return IterationMetrics(
        run_id=run_id,
        iteration=iteration,
        manifest_version=index.version,
        model_version=threshold.model_version if threshold else None,
        threshold=_threshold_summary(threshold) if threshold else None,
        validation_miou=threshold.validation_miou if threshold else None,
        audit_miou=audited_miou,
        images_in_pool=pool_images,
        auto_labelled=label_count_delta(index, previous, LabelSource.AUTO),
        human_labelled=label_count_delta(index, previous, LabelSource.HUMAN),
        audit_labelled=label_count_delta(index, previous, LabelSource.AUDIT),
        rejected_by_qc=answers.rejected,
        unanswered=answers.unanswered,
        unlabellable=answers.unlabellable,
        unlabelled_remaining=max(pool_images - index.total, 0),
        human_seconds=max(human_seconds_total - seconds_before, 0.0),
        human_seconds_total=human_seconds_total,
        human_budget_seconds=config.human_budget_seconds,
        finished_at=finished_at,
    )


def loop_progress(
    config: LabelingConfig, figures: IterationMetrics, images_waiting: int, history: LoopHistory
) -> LoopProgress:
    """Whether the run is done after ``figures``' iteration, with ``images_waiting`` registered but not pooled,
    and whether its next iteration is a wave for people alone."""
    labelled_now = figures.auto_labelled + figures.human_labelled + figures.audit_labelled
    trained = history.trained
    cap_reached = history.trained_iterations >= config.max_iterations
    no_progress = trained and labelled_now == 0
    stopped_learning = history.finishing or cap_reached or no_progress
    return LoopProgress(
        next_iteration=figures.iteration + 1,
        manifest_version=figures.manifest_version,
        pool_labelled=figures.unlabelled_remaining == 0 and images_waiting <= 0,
        budget_spent=figures.human_budget_seconds - figures.human_seconds_total < CHEAPEST_TASK_SECONDS,
        iteration_cap_reached=cap_reached,
        no_progress=no_progress,
        people_only=not config.auto_label or not history.initial_sample_sent or stopped_learning,
        people_done=not trained and labelled_now == 0,
    )
