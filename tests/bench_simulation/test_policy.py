"""Policies and the point-estimate threshold of the Ground Truth-style baseline."""

from __future__ import annotations

import pytest

from boxloop.run_plan import derived_fields
from boxloop.threshold import choose_threshold
from simulation.bench_run import CLASSES
from simulation.policy import (
    Thresholding,
    boxloop_policy,
    ground_truth_style_policy,
    oracle_policy,
    point_estimate_threshold,
    threshold_rule,
    with_workforce,
)


def test_point_estimate_takes_the_lowest_threshold_whose_mean_reaches_the_target() -> None:
    confidences = [0.9] * 40 + [0.5] * 40 + [0.1] * 40
    qualities = [0.9] * 40 + [0.55] * 40 + [0.1] * 40
    decision = point_estimate_threshold(confidences, qualities, target=0.7, delta=0.05, min_count=30)
    assert decision.threshold == pytest.approx(0.5)  # mean over c ≥ 0.5 is 0.725
    assert decision.n_validation_above == 80
    assert decision.lower_bound is None
    bound = choose_threshold(confidences, qualities, 0.7, 0.05, min_count=30)
    assert bound.threshold == pytest.approx(0.9)  # the bound is more careful at the same target


def test_point_estimate_auto_labels_nothing_when_no_subset_reaches_the_target() -> None:
    decision = point_estimate_threshold([0.9] * 40, [0.5] * 40, target=0.6, delta=0.05, min_count=30)
    assert decision.threshold is None
    assert decision.statement.startswith("nothing is auto-labelled")


def test_point_estimate_needs_min_count_images_above_the_threshold() -> None:
    confidences = [0.95] * 10 + [0.2] * 40
    qualities = [1.0] * 10 + [0.3] * 40
    assert point_estimate_threshold(confidences, qualities, 0.6, 0.05, min_count=30).threshold is None
    assert point_estimate_threshold(confidences, qualities, 0.6, 0.05, min_count=5).threshold == pytest.approx(0.95)


def test_ground_truth_style_policy_differs_from_boxloop_where_ground_truth_does() -> None:
    ours = boxloop_policy(CLASSES, max_iterations=3)
    theirs = ground_truth_style_policy(CLASSES, n_images=4000, max_iterations=3)
    assert theirs.config.initial_sample_size == 400
    assert (theirs.config.audit_size, theirs.config.qc.gold_share) == (0, 0.0)
    assert (theirs.thresholding, theirs.diverse_selection, theirs.prefilled_tasks) == (
        Thresholding.POINT_ESTIMATE,
        False,
        False,
    )
    assert ours.config.initial_sample_size == 300 and ours.thresholding == Thresholding.LOWER_BOUND
    assert ours.config.max_iterations == theirs.config.max_iterations == 3


def test_threshold_rule_dispatches_on_the_rule() -> None:
    quality = boxloop_policy(CLASSES, 1).config.quality
    confidences = [0.9] * 40 + [0.5] * 40
    qualities = [0.9] * 40 + [0.55] * 40
    bound = threshold_rule(Thresholding.LOWER_BOUND, quality)(confidences, qualities, 0.7)
    point = threshold_rule(Thresholding.POINT_ESTIMATE, quality)(confidences, qualities, 0.7)
    assert bound.lower_bound is not None and point.lower_bound is None
    assert point.threshold <= bound.threshold


@pytest.mark.parametrize("n_images", [300, 2000, 4000, 8000, 500_000])
def test_the_ground_truth_style_initial_sample_is_ten_percent_at_every_size(n_images: int) -> None:
    policy = ground_truth_style_policy(CLASSES, n_images=n_images, max_iterations=3)
    assert policy.config.initial_sample_size == n_images // 10
    assert not policy.budget_waves and not policy.prefilled_tasks


def test_boxloop_takes_boxloop_runs_sizes_for_the_corpus_and_overrides_win() -> None:
    config = boxloop_policy(CLASSES, max_iterations=3, n_images=8000).config
    assert config.initial_sample_size == derived_fields(8000, boxloop_policy(CLASSES, 3).config)["initial_sample_size"]
    assert boxloop_policy(CLASSES, 3, n_images=500_000).config.initial_sample_size < 50_000  # half the budget's worth
    assert boxloop_policy(CLASSES, 3, n_images=8000, human_batch_size=200).config.human_batch_size == 200
    oracle = oracle_policy(boxloop_policy(CLASSES, 3, n_images=8000))
    assert oracle.thresholding == Thresholding.ORACLE and oracle.config == config


def test_with_workforce_sets_the_simulated_people() -> None:
    policy = with_workforce(boxloop_policy(CLASSES, 1), anchoring=0.3, prefill_factor=0.8)
    assert (policy.config.workforce.simulated_anchoring, policy.config.workforce.simulated_prefill_factor) == (0.3, 0.8)
