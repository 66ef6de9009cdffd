"""The run report's data: ``report.json`` for scripts, and what ``boxloop.report_html`` draws for people.

The report states the quality guarantee for all auto-labels of a run together
and the human time spent. Per-iteration statements (``boxloop.threshold``)
each hold with probability at least 1 - delta_i; the run's statement is the
count-weighted mean of the per-iteration lower bounds, which holds with
probability at least 1 - sum(delta_i) over the iterations that auto-labelled
images (union bound). This module builds the figures, the statement, the
per-iteration rows and picks the gallery's images; rendering lives in
``boxloop.report_html``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict

from boxloop.config import LabelingConfig
from boxloop.human_budget import overshoot_seconds
from boxloop.human_loop import UnlabellableAnswer
from boxloop.models import Box, IterationMetrics, LabelRecord, LabelSource
from boxloop.people_waves import PeopleFinish
from boxloop.quality import image_miou
from boxloop.threshold import ThresholdCurvePoint


class IterationSummary(BaseModel):
    """One iteration's figures as the report shows them."""

    model_config = ConfigDict(frozen=True)

    iteration: int
    threshold: float | None
    lower_bound: float | None
    target: float | None
    delta: float | None
    n_validation: int | None
    n_validation_above: int | None
    images_in_pool: int
    auto_labelled: int
    human_labelled: int
    audit_labelled: int
    rejected_by_qc: int
    unanswered: int
    unlabellable: int = 0
    unlabelled_remaining: int
    human_seconds: float
    human_seconds_total: float
    validation_miou: float | None
    validation_map50: float | None
    audit_miou: float | None
    auto_in_manifest: int
    auto_miou_true: float | None
    statement: str | None


class UnlabellableImage(BaseModel):
    """An image a labeller said cannot be labelled: it left the pool with their reasons."""

    model_config = ConfigDict(frozen=True)

    image_id: str
    source_ref: str
    iteration: int
    reasons: list[str]

    @classmethod
    def of(cls, answer: UnlabellableAnswer, iteration: int) -> UnlabellableImage:
        """The image of a cannot-label answer given in ``iteration``."""
        return cls(image_id=answer.image_id, source_ref=answer.source_ref, iteration=iteration, reasons=answer.reasons)


class RunReport(BaseModel):
    """A run's outcome: counts, human time, the guarantee, per-iteration figures and threshold curves."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    generated_at: datetime
    images_total: int
    images_auto_labelled: int
    images_human_labelled: int
    images_unlabelled: int
    human_seconds: float
    human_budget_seconds: float
    iterations: int
    target_miou: float
    delta: float
    auto_miou_lower_bound: float | None
    auto_miou_confidence: float | None
    auto_miou_true: float | None
    human_miou_true: float | None
    statement: str
    per_iteration: list[IterationSummary]
    unlabellable: list[UnlabellableImage] = []
    human_overshoot_seconds: float = 0.0
    """Seconds charged beyond the budget: only by tasks in flight when a wave ran long."""
    finish: PeopleFinish = PeopleFinish()
    threshold_curves: dict[int, list[ThresholdCurvePoint]]

    def to_json(self) -> dict:
        """The figures as a JSON-ready dict (``report.json``); the curves are left to the HTML."""
        return self.model_dump(mode="json", exclude={"threshold_curves"})


@dataclass
class _QualityTally:
    """Count of images and, where truth is known, the sum of their quality."""

    count: int = 0
    quality_sum: float = 0.0

    def add(self, quality: float | None) -> None:
        self.count += 1
        if quality is not None:
            self.quality_sum += quality

    def mean(self) -> float | None:
        return self.quality_sum / self.count if self.count else None


def build_report(
    run_id: str,
    config: LabelingConfig,
    iterations: Sequence[IterationMetrics],
    records: Iterable[LabelRecord],
    threshold_curves: Mapping[int, Sequence[ThresholdCurvePoint]] | None = None,
    truth: Mapping[str, Sequence[Box]] | None = None,
    images_total: int | None = None,
    unlabellable: Sequence[UnlabellableImage] = (),
    finish: PeopleFinish | None = None,
) -> RunReport:
    """Summarise a run from its iteration metrics and its final manifest's records.

    ``records`` (one per labelled image) is streamed once, keeping only counts
    and sums. ``truth`` (image id to reference boxes, known for generated
    corpora) adds the realised mean IoU of auto- and human-labelled images;
    every labelled image must then have a reference. ``images_total`` defaults to the labelled images plus the last
    iteration's ``unlabelled_remaining``. ``unlabellable`` lists the images labellers said cannot be labelled,
    with their reasons; ``finish`` what people finished after the loop stopped learning and why images remain
    (``boxloop.people_waves.people_finish``). Raises ValueError on inconsistent
    input, naming the iteration or image.
    """
    ordered = _ordered_iterations(run_id, iterations)
    curves = {int(iteration): list(points) for iteration, points in (threshold_curves or {}).items()}
    unknown_curves = sorted(set(curves) - set(ordered))
    if unknown_curves:
        raise ValueError(f"threshold_curves for iterations without metrics: {unknown_curves}")

    auto_by_iteration: dict[int, _QualityTally] = {}
    human = _QualityTally()
    for record in records:
        quality = _true_quality(record, truth)
        if record.label_source is LabelSource.AUTO:
            if record.iteration not in ordered:
                raise ValueError(
                    f"record {record.image_id}: auto-labelled in iteration {record.iteration}, which has no metrics"
                )
            auto_by_iteration.setdefault(record.iteration, _QualityTally()).add(quality)
        else:
            human.add(quality)

    for iteration, tally in auto_by_iteration.items():
        stated = ordered[iteration].threshold
        if stated is None or stated.lower_bound is None:
            raise ValueError(
                f"iteration {iteration}: {tally.count} auto-labelled records, but its metrics state no lower bound"
            )

    auto_count = sum(tally.count for tally in auto_by_iteration.values())
    last = ordered[max(ordered)] if ordered else None
    if images_total is None:
        images_unlabelled = last.unlabelled_remaining if last else 0
        images_total = auto_count + human.count + images_unlabelled
    else:
        images_unlabelled = images_total - auto_count - human.count
        if images_unlabelled < 0:
            raise ValueError(
                f"images_total {images_total} is less than the {auto_count + human.count} labelled records"
            )

    lower_bound, confidence = _combined_bound(ordered, auto_by_iteration)
    auto_true = _pooled_mean(auto_by_iteration.values()) if truth is not None else None
    human_true = human.mean() if truth is not None else None
    human_seconds = last.human_seconds_total if last else 0.0
    return RunReport(
        run_id=run_id,
        generated_at=datetime.now(UTC),
        images_total=images_total,
        images_auto_labelled=auto_count,
        images_human_labelled=human.count,
        images_unlabelled=images_unlabelled,
        human_seconds=human_seconds,
        human_budget_seconds=config.human_budget_seconds,
        iterations=len(ordered),
        target_miou=config.quality.target_miou,
        delta=config.quality.delta,
        auto_miou_lower_bound=lower_bound,
        auto_miou_confidence=confidence,
        auto_miou_true=auto_true,
        human_miou_true=human_true,
        statement=_statement(
            auto_count,
            human.count,
            images_unlabelled,
            lower_bound,
            confidence,
            deltas=[ordered[iteration].threshold.delta for iteration in sorted(auto_by_iteration)],
            why_none=_why_nothing_auto_labelled(list(ordered.values()), config),
            target=config.quality.target_miou,
            human_seconds=human_seconds,
            budget_seconds=config.human_budget_seconds,
        )
        + _people_finish_sentences(
            finish or PeopleFinish(), overshoot_seconds(human_seconds, config.human_budget_seconds)
        ),
        per_iteration=[
            _iteration_summary(metrics, auto_by_iteration.get(iteration), truth is not None)
            for iteration, metrics in ordered.items()
        ],
        unlabellable=sorted(unlabellable, key=lambda image: (image.iteration, image.image_id)),
        human_overshoot_seconds=overshoot_seconds(human_seconds, config.human_budget_seconds),
        finish=finish or PeopleFinish(),
        threshold_curves=curves,
    )


def gallery_candidates(records: Iterable[LabelRecord], per_source: int = 6, seed: int = 0) -> list[LabelRecord]:
    """A seeded random sample of up to ``per_source`` auto-labelled and as many human-labelled records.

    Streams ``records`` once with reservoir sampling, so memory stays bounded;
    the caller fetches these images' bytes for ``boxloop.report_html.render_report_html(gallery=...)``.
    Audit labels count as human-labelled.
    """
    rng = random.Random(seed)
    reservoirs: dict[bool, list[LabelRecord]] = {True: [], False: []}
    seen = {True: 0, False: 0}
    for record in records:
        is_auto = record.label_source is LabelSource.AUTO
        seen[is_auto] += 1
        reservoir = reservoirs[is_auto]
        if len(reservoir) < per_source:
            reservoir.append(record)
        else:
            slot = rng.randrange(seen[is_auto])
            if slot < per_source:
                reservoir[slot] = record
    return reservoirs[True] + reservoirs[False]


def _ordered_iterations(run_id: str, iterations: Sequence[IterationMetrics]) -> dict[int, IterationMetrics]:
    ordered: dict[int, IterationMetrics] = {}
    for metrics in iterations:
        if metrics.run_id != run_id:
            raise ValueError(f"iteration {metrics.iteration}: metrics are for run {metrics.run_id!r}, not {run_id!r}")
        if metrics.iteration in ordered:
            raise ValueError(f"iteration {metrics.iteration}: metrics given twice")
        ordered[metrics.iteration] = metrics
    return dict(sorted(ordered.items()))


def _true_quality(record: LabelRecord, truth: Mapping[str, Sequence[Box]] | None) -> float | None:
    if truth is None:
        return None
    if record.image_id not in truth:
        raise ValueError(f"record {record.image_id}: no reference boxes in truth")
    return image_miou(record.boxes, truth[record.image_id])


def _pooled_mean(tallies: Iterable[_QualityTally]) -> float | None:
    tallies = list(tallies)
    count = sum(tally.count for tally in tallies)
    return sum(tally.quality_sum for tally in tallies) / count if count else None


def _combined_bound(
    ordered: Mapping[int, IterationMetrics], auto_by_iteration: Mapping[int, _QualityTally]
) -> tuple[float | None, float | None]:
    """Count-weighted mean of per-iteration lower bounds and its confidence 1 - sum(delta) (union bound).

    None for both when nothing was auto-labelled or the deltas sum to 1 or more.
    """
    total = sum(tally.count for tally in auto_by_iteration.values())
    if total == 0:
        return None, None
    stated = {iteration: ordered[iteration].threshold for iteration in auto_by_iteration}
    confidence = 1.0 - sum(summary.delta for summary in stated.values())
    if confidence <= 0.0:
        return None, None
    weighted = sum(stated[iteration].lower_bound * tally.count for iteration, tally in auto_by_iteration.items())
    return weighted / total, confidence


def _why_nothing_auto_labelled(iterations: Sequence[IterationMetrics], config: LabelingConfig) -> str:
    """Why a run auto-labelled nothing: no detector was to be trained, none was trained, or the bound refused."""
    if not config.auto_label:
        return "the run was set not to train a detector (auto_label false: too small to learn from)"
    decided = [metrics for metrics in iterations if metrics.threshold is not None]
    if not decided:
        return "no detector was trained before the images were labelled"
    last = decided[-1]
    if last.threshold.threshold is not None:
        return f"no image left for the detector reached its confidence threshold {last.threshold.threshold:.3f}"
    quality = "" if last.validation_miou is None else f" (validation mean IoU {last.validation_miou:.2f})"
    return (
        f"the last detector{quality} had no confidence threshold whose {1 - last.threshold.delta:.0%} lower bound on "
        f"the auto-labels' mean IoU reached the target {last.threshold.target:.2f}"
    )


def floor_hundredths(value: float) -> str:
    """A bound shown to two decimals, rounded down so it never overstates."""
    return f"{math.floor(value * 100 + 1e-9) / 100:.2f}"


def floor_percent(value: float) -> str:
    """A confidence as a percentage, rounded down so it never overstates."""
    return f"{math.floor(value * 1000 + 1e-9) / 10:g}%"


def _statement(
    auto_count: int,
    human_count: int,
    unlabelled: int,
    lower_bound: float | None,
    confidence: float | None,
    *,
    deltas: Sequence[float],
    why_none: str,
    target: float,
    human_seconds: float,
    budget_seconds: float,
) -> str:
    """The plain-language guarantee for the whole run (``why_none``: why nothing was auto-labelled, if so)."""
    people = (
        f"People labelled {human_count:,} images in {human_seconds / 3600:.1f} of the "
        f"{budget_seconds / 3600:.1f} budgeted hours; {unlabelled:,} images remain unlabelled."
    )
    if auto_count == 0:
        return f"No image was auto-labelled: every label was drawn by people, because {why_none}. {people}"
    if lower_bound is None:
        return (
            f"{auto_count:,} images were auto-labelled over {len(deltas)} iterations, each with its own "
            f"per-iteration guarantee; their confidence levels are too low to combine into one statement "
            f"(the per-iteration δ sum to 1 or more). {people}"
        )
    iterations = "1 iteration" if len(deltas) == 1 else f"{len(deltas)} iterations"
    each = f"δ = {deltas[0]:g} each" if len(set(deltas)) == 1 else "δ = " + ", ".join(f"{d:g}" for d in deltas)
    return (
        f"With at least {floor_percent(confidence)} confidence, the mean IoU of all {auto_count:,} auto-labelled "
        f"images is ≥ {floor_hundredths(lower_bound)} (target {target:.2f}). This is the count-weighted mean of the "
        f"lower bounds stated by the {iterations} that auto-labelled images ({each}); each holds with "
        f"probability at least 1 − δ, so all hold together with probability at least 1 − Σδ (union bound). "
        f"{people}"
    )


def _people_finish_sentences(finish: PeopleFinish, overshoot: float) -> str:
    """What people finished after the loop stopped learning, why images remain, and any overshoot of the budget."""
    said = ""
    if finish.learning_stopped:
        said += (
            f" The loop stopped learning because {finish.learning_stopped}; people then finished "
            f"{finish.images_finished_by_people:,} images in budget-sized waves."
        )
    if finish.unlabelled_reason:
        said += f" Images remain unlabelled because {finish.unlabelled_reason}."
    if overshoot > 0:
        said += (
            f" People were charged {overshoot:,.0f} s beyond the budget, for tasks already in flight when a wave "
            "took longer than expected."
        )
    return said


def _iteration_summary(metrics: IterationMetrics, auto: _QualityTally | None, truth_known: bool) -> IterationSummary:
    stated = metrics.threshold
    return IterationSummary(
        iteration=metrics.iteration,
        threshold=stated.threshold if stated else None,
        lower_bound=stated.lower_bound if stated else None,
        target=stated.target if stated else None,
        delta=stated.delta if stated else None,
        n_validation=stated.n_validation if stated else None,
        n_validation_above=stated.n_validation_above if stated else None,
        images_in_pool=metrics.images_in_pool,
        auto_labelled=metrics.auto_labelled,
        human_labelled=metrics.human_labelled,
        audit_labelled=metrics.audit_labelled,
        rejected_by_qc=metrics.rejected_by_qc,
        unanswered=metrics.unanswered,
        unlabellable=metrics.unlabellable,
        unlabelled_remaining=metrics.unlabelled_remaining,
        human_seconds=metrics.human_seconds,
        human_seconds_total=metrics.human_seconds_total,
        validation_miou=metrics.validation_miou,
        validation_map50=metrics.validation_map50,
        audit_miou=metrics.audit_miou,
        auto_in_manifest=auto.count if auto else 0,
        auto_miou_true=auto.mean() if auto and truth_known else None,
        statement=stated.statement if stated else None,
    )
