"""Labelling policies to compare: boxloop with its defaults, a Ground Truth-style baseline and an oracle.

A policy is a real ``LabelingConfig`` plus the few choices where Ground Truth's automated labelling works
differently from boxloop: how the threshold is chosen, whether the human batch is picked for diversity,
whether human tasks show the model's boxes, and whether people's batches are budget waves. The oracle is
boxloop except that it knows each image's true quality (``Thresholding.ORACLE``, see ``simulation.oracle``).
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum

from pydantic import BaseModel, ConfigDict

from boxloop.config import HumanParity, LabelingConfig, QualityConfig
from boxloop.run_plan import derived_fields
from boxloop.threshold import ThresholdDecision, choose_threshold
from boxloop.threshold_step import ThresholdRule, guaranteed_threshold

GROUND_TRUTH_INITIAL_SHARE = 0.10
"""The Ground Truth-style policy's random initial sample: 10% of the corpus."""


class Thresholding(str, Enum):
    """How the auto-labelling threshold is chosen from the validation images."""

    LOWER_BOUND = "lower-bound"
    POINT_ESTIMATE = "point-estimate"
    ORACLE = "oracle"
    """Not a threshold: the best images by true IoU whose mean stays at the target (``simulation.oracle``)."""


class Policy(BaseModel):
    """One way to run the labelling loop."""

    model_config = ConfigDict(frozen=True)

    name: str
    summary: str
    config: LabelingConfig
    thresholding: Thresholding = Thresholding.LOWER_BOUND
    diverse_selection: bool = True
    prefilled_tasks: bool = True
    budget_waves: bool = True
    """People's batches are sized to the budget left, as the product issues them (``boxloop.human_budget``)."""


def point_estimate_threshold(
    confidences: Sequence[float], qualities: Sequence[float], target: float, delta: float, min_count: int
) -> ThresholdDecision:
    """The lowest threshold whose validation images (at least ``min_count``) have a *mean* quality ≥ ``target``.

    Ground Truth's rule: the sample mean stands in for the population's, so about half of the time the
    auto-labels at a threshold near the boundary fall short of the target. ``delta`` only fills the record.
    """
    curve = choose_threshold(confidences, qualities, target, delta, min_count=min_count).curve
    passing = [point for point in curve if point.n >= min_count and point.mean_quality >= target]
    common = {"n_validation": len(confidences), "target": target, "delta": delta, "curve": curve}
    if not passing:
        return ThresholdDecision(
            threshold=None,
            lower_bound=None,
            n_validation_above=0,
            statement=f"nothing is auto-labelled: no {min_count}+ validation images reach mean IoU {target:.2f}",
            **common,
        )
    chosen = min(passing, key=lambda point: point.threshold)
    return ThresholdDecision(
        threshold=chosen.threshold,
        lower_bound=None,
        n_validation_above=chosen.n,
        statement=(
            f"the {chosen.n} validation images with confidence ≥ {chosen.threshold:.3f} have mean IoU "
            f"{chosen.mean_quality:.2f} ≥ {target:.2f} (a point estimate, no confidence bound)"
        ),
        **common,
    )


def threshold_rule(thresholding: Thresholding, quality: QualityConfig) -> ThresholdRule:
    """The rule ``thresholding`` names, with the configuration's delta and minimum count (and bound).

    ``LOWER_BOUND`` is the rule ComputeThreshold uses (``boxloop.threshold_step.guaranteed_threshold``); the
    oracle records it too (its auto-labels are chosen by true quality instead).
    """
    if thresholding == Thresholding.POINT_ESTIMATE:

        def point_estimate(
            confidences: Sequence[float], qualities: Sequence[float], target: float
        ) -> ThresholdDecision:
            return point_estimate_threshold(
                confidences, qualities, target, quality.delta, min_count=quality.min_validation_images
            )

        return point_estimate
    return guaranteed_threshold(quality)


def _config(classes: Sequence[str], max_iterations: int, seed: int, **overrides: object) -> LabelingConfig:
    return LabelingConfig.model_validate(
        {
            "classes": list(classes),
            "max_iterations": max_iterations,
            "seed": seed,
            "workforce": {"kind": "simulated", "seed": seed},
            **overrides,
        }
    )


def boxloop_policy(
    classes: Sequence[str],
    max_iterations: int,
    seed: int = 0,
    n_images: int | None = None,
    **overrides: object,
) -> Policy:
    """boxloop with its default configuration (except the iteration cap).

    With ``n_images``, the sizes ``boxloop run`` derives for a corpus without a configuration
    (``boxloop.run_plan.derived_fields``: initial sample, validation share, batch size under the budget);
    ``overrides`` (e.g. ``human_budget_hours``, or an ablation's ``human_batch_size``) are set before the
    derivation, and win over it.
    """
    config = _config(classes, max_iterations, seed, **overrides)
    if n_images is not None:
        derived = {key: value for key, value in derived_fields(n_images, config).items() if key not in overrides}
        config = config.model_validate(config.model_dump() | derived)
    return Policy(
        name="boxloop",
        summary=(
            f"boxloop run's sizes for {n_images:,} images: {config.initial_sample_size} random images first"
            if n_images is not None
            else "defaults: 300 random images first"
        )
        + ", lower-bound threshold, uncertain × diverse batches with pre-filled boxes, audit slice and gold images",
        config=config,
    )


def oracle_policy(boxloop: Policy) -> Policy:
    """``boxloop`` whose auto-labels are the best images by true IoU that keep their mean at the target."""
    return boxloop.model_copy(
        update={
            "name": "oracle",
            "summary": "boxloop's samples and batches; auto-labels the best images by their true IoU while their "
            "mean stays at the target (knows the truth)",
            "thresholding": Thresholding.ORACLE,
        }
    )


HUMAN_PARITY = HumanParity(min_measured_images=10, fallback_target_miou=0.95)
"""Parity as a user who wants auto-labels as good as people's would set it: nothing is auto-labelled (target
0.95) until 10 gold answers have measured the people, which the default gold share gives after one batch."""


def human_parity_policy(classes: Sequence[str], max_iterations: int, seed: int = 0) -> Policy:
    """boxloop whose target is the measured human-label quality (gold images) minus the default margin."""
    return Policy(
        name="boxloop-human-parity",
        summary="boxloop with quality.human_parity: target = people's mean IoU on gold images − 0.02, "
        "0.95 until 10 gold answers exist",
        config=_config(classes, max_iterations, seed, quality={"human_parity": HUMAN_PARITY.model_dump()}),
    )


def ground_truth_style_policy(
    classes: Sequence[str], n_images: int, max_iterations: int, seed: int = 0, **overrides: object
) -> Policy:
    """Ground Truth's automated labelling as the issue describes it, on the same detector and workforce.

    10% random initial sample at every corpus size, a point-estimate threshold, the most uncertain images in
    fixed batches (no diversity), no audit slice, no gold images, tasks drawn from scratch (no pre-filled
    boxes), and batches sent whole (no budget waves). ``overrides`` set other fields (e.g. the budget).
    """
    return Policy(
        name="ground-truth-style",
        summary="10% random images first, point-estimate threshold, most-uncertain fixed batches, "
        "no audit, no gold, boxes drawn from scratch",
        config=_config(
            classes,
            max_iterations,
            seed,
            initial_sample_size=ground_truth_initial_sample(n_images),
            audit_size=0,
            qc={"gold_share": 0.0},
            **overrides,
        ),
        thresholding=Thresholding.POINT_ESTIMATE,
        diverse_selection=False,
        prefilled_tasks=False,
        budget_waves=False,
    )


def ground_truth_initial_sample(n_images: int) -> int:
    """The Ground Truth-style initial sample at every corpus size: 10% of it (at least 10 images)."""
    return max(10, round(GROUND_TRUTH_INITIAL_SHARE * n_images))


def all_manual_policy(classes: Sequence[str], seed: int = 0) -> Policy:
    """Every image boxed by people from scratch (the configuration supplies QC rules and the workforce)."""
    return Policy(
        name="all-manual",
        summary="every image boxed by people from scratch",
        config=_config(classes, 1, seed),
        prefilled_tasks=False,
    )


def with_workforce(policy: Policy, anchoring: float, prefill_factor: float) -> Policy:
    """``policy`` whose simulated people keep ``anchoring`` of pre-filled errors and adjust in ``prefill_factor``
    of the drawing time."""
    workforce = policy.config.workforce.model_copy(
        update={"simulated_anchoring": anchoring, "simulated_prefill_factor": prefill_factor}
    )
    config = LabelingConfig.model_validate(policy.config.model_copy(update={"workforce": workforce}).model_dump())
    return policy.model_copy(update={"config": config})


def with_target(policy: Policy, target: float) -> Policy:
    """``policy`` with ``quality.target_miou`` set to ``target`` (a human-parity policy keeps its own target)."""
    quality = policy.config.quality.model_copy(update={"target_miou": target})
    return policy.model_copy(update={"config": policy.config.model_copy(update={"quality": quality})})
