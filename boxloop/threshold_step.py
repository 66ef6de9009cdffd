"""ComputeThreshold's decision: validation images measured, the iteration's target, the guaranteed threshold.

For each validation image (human-labelled, never trained on) the model's prediction gives
q = ``image_miou(prediction, human boxes)`` and c = ``routing_confidence`` (the very value
routing compares with the threshold, so the guarantee covers exactly what is auto-labelled).
The target is ``quality.target_miou``, or with ``quality.human_parity`` the measured human
quality on gold images minus the margin. ``threshold_step`` puts the decision and what it was
computed from into the ``threshold.json`` document.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np
from pydantic import BaseModel

from boxloop.config import QualityConfig
from boxloop.models import Box, Prediction
from boxloop.quality import image_miou
from boxloop.selection import routing_confidence
from boxloop.threshold import TargetDecision, ThresholdDecision, choose_threshold, human_parity_target

ThresholdRule = Callable[[Sequence[float], Sequence[float], float], ThresholdDecision]
"""(confidences, qualities, target) → the threshold decision."""


class ValidationMeasurements(BaseModel):
    """Confidence and quality of each validation image with a usable prediction, and the images without one."""

    confidences: list[float]
    qualities: list[float]
    without_prediction: int
    failed_predictions: int

    @property
    def mean_quality(self) -> float | None:
        """The validation images' mean IoU (None when none was measured)."""
        return float(np.mean(self.qualities)) if self.qualities else None


class ThresholdDocument(BaseModel):
    """``iterations/<NNNN>/threshold.json``: the decision (with its curve) and what it was computed from."""

    iteration: int
    model_version: str
    decision: ThresholdDecision
    target: TargetDecision | None
    validation_miou: float | None
    validation_without_prediction: int
    validation_failed_predictions: int
    computed_at: str


def measure_validation(
    predictions: Iterable[Prediction], reference: Mapping[str, Sequence[Box]]
) -> ValidationMeasurements:
    """(confidence, quality) of the validation images in ``reference`` (image id → human boxes), in image-id order.

    Predictions of other images are skipped, a second prediction of an image is ignored, and a failed
    prediction (``error`` set) is counted, not measured. The order is the images' ids (SHA-256 of their bytes),
    not the order predictions arrive in: the betting bound reads the images in a fixed order, so an order that
    follows how the pool was sharded, or how a set of ids happens to iterate in this process, would give the same
    model and labels a different bound on another run.
    """
    measured: dict[str, tuple[float, float]] = {}
    failed: set[str] = set()
    for prediction in predictions:
        image_id = prediction.image_id
        if image_id not in reference or image_id in measured or image_id in failed:
            continue
        if prediction.error is not None:
            failed.add(image_id)
            continue
        measured[image_id] = (routing_confidence(prediction), image_miou(prediction.boxes, reference[image_id]))
    ordered = [measured[image_id] for image_id in sorted(measured)]
    return ValidationMeasurements(
        confidences=[confidence for confidence, _ in ordered],
        qualities=[quality for _, quality in ordered],
        without_prediction=len(reference) - len(measured) - len(failed),
        failed_predictions=len(failed),
    )


def quality_target(
    quality: QualityConfig, gold_qualities: Callable[[], Sequence[float]]
) -> tuple[float, TargetDecision | None]:
    """The iteration's target mean IoU, and the human-parity decision behind it when configured.

    ``gold_qualities`` gives every gold score so far; it is called only with ``quality.human_parity``.
    """
    if quality.human_parity is None:
        return quality.target_miou, None
    decision = human_parity_target(gold_qualities(), quality.human_parity)
    return decision.target, decision


def guaranteed_threshold(quality: QualityConfig) -> ThresholdRule:
    """The configured rule: ``choose_threshold`` with the configuration's delta, minimum count and bound."""

    def rule(confidences: Sequence[float], qualities: Sequence[float], target: float) -> ThresholdDecision:
        return choose_threshold(
            confidences,
            qualities,
            target,
            quality.delta,
            min_count=quality.min_validation_images,
            bound=quality.bound,
        )

    return rule


def threshold_step(
    measurements: ValidationMeasurements,
    quality: QualityConfig,
    gold_qualities: Callable[[], Sequence[float]],
    *,
    iteration: int,
    model_version: str,
    computed_at: str,
    rule: ThresholdRule | None = None,
) -> ThresholdDocument:
    """The iteration's target and threshold decision from its validation measurements, as ``threshold.json``.

    ``rule`` chooses the threshold (default: ``guaranteed_threshold(quality)``, what the Lambda uses).
    """
    target, target_decision = quality_target(quality, gold_qualities)
    decide = rule if rule is not None else guaranteed_threshold(quality)
    return ThresholdDocument(
        iteration=iteration,
        model_version=model_version,
        decision=decide(measurements.confidences, measurements.qualities, target),
        target=target_decision,
        validation_miou=measurements.mean_quality,
        validation_without_prediction=measurements.without_prediction,
        validation_failed_predictions=measurements.failed_predictions,
        computed_at=computed_at,
    )
