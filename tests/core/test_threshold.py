import math

import numpy as np
import pytest
from scipy.optimize import brentq
from scipy.stats import binom

from boxloop.config import HumanParity
from boxloop.threshold import (
    betting_bets,
    betting_lower_bound,
    choose_threshold,
    hoeffding_bentkus_lower_bound,
    hoeffding_bentkus_p_value,
    human_parity_target,
)


def test_p_value_is_the_smaller_of_hoeffding_and_bentkus():
    mean_loss, n, alpha = 0.1, 100, 0.3
    h1 = mean_loss * math.log(mean_loss / alpha) + (1 - mean_loss) * math.log((1 - mean_loss) / (1 - alpha))
    expected = min(math.exp(-n * h1), math.e * binom.cdf(math.ceil(n * mean_loss), n, alpha))
    assert float(hoeffding_bentkus_p_value(mean_loss, n, alpha)) == pytest.approx(expected)
    # at or below the observed mean loss nothing can be rejected
    assert float(hoeffding_bentkus_p_value(0.3, 50, 0.2)) == 1.0


def test_lower_bound_of_all_perfect_images_is_delta_to_the_one_over_n():
    # every quality 1: p(alpha) = (1 - alpha)^n, so the bound is delta ** (1 / n)
    assert hoeffding_bentkus_lower_bound(np.array([1.0]), np.array([100]), 0.05)[0] == pytest.approx(0.05**0.01)


def test_lower_bound_inverts_the_p_value():
    for mean_quality, n in [(0.8, 50), (0.3, 10), (0.65, 412), (0.99, 300)]:
        risk = 1 - mean_quality
        expected = 1 - brentq(lambda a, risk=risk, n=n: hoeffding_bentkus_p_value(risk, n, a) - 0.05, risk, 1)
        bound = hoeffding_bentkus_lower_bound(np.array([mean_quality]), np.array([n]), 0.05)[0]
        assert bound == pytest.approx(expected, abs=1e-8)
        assert bound <= expected + 1e-12  # never on the optimistic side


def test_lower_bound_is_below_the_mean_and_tightens_with_n():
    bounds = hoeffding_bentkus_lower_bound(np.full(4, 0.7), np.array([10, 100, 1000, 10000]), 0.05)
    assert np.all(bounds < 0.7)
    assert np.all(np.diff(bounds) > 0)
    assert hoeffding_bentkus_lower_bound(np.array([0.0]), np.array([20]), 0.05)[0] == 0.0


def _separated(n_good: int, n_bad: int) -> tuple[np.ndarray, np.ndarray]:
    confidences = np.concatenate([np.linspace(0.99, 0.5, n_good), np.linspace(0.49, 0.0, n_bad)])
    qualities = np.concatenate([np.ones(n_good), np.zeros(n_bad)])
    return confidences, qualities


def test_threshold_is_the_lowest_candidate_passing_before_the_first_failure():
    confidences, qualities = _separated(100, 100)
    decision = choose_threshold(confidences, qualities, target=0.6, delta=0.05)
    points = {point.threshold: point for point in decision.curve}
    chosen = points[decision.threshold]
    assert chosen.lower_bound >= 0.6 and decision.lower_bound == chosen.lower_bound
    assert decision.n_validation_above == chosen.n == int((confidences >= decision.threshold).sum())
    assert decision.n_validation == 200
    next_lower = max(t for t in points if t < decision.threshold)
    assert points[next_lower].lower_bound < 0.6
    tested_before = [p for p in decision.curve if p.n >= 30 and p.threshold >= decision.threshold]
    assert tested_before and all(point.lower_bound >= 0.6 for point in tested_before)
    assert decision.statement == (
        f"with 95% confidence the mean IoU of this iteration's auto-labels is ≥ 0.60 "
        f"(lower bound {math.floor(chosen.lower_bound * 100) / 100:.2f}, n = {chosen.n} validation images "
        f"with confidence ≥ {decision.threshold:.3f})"
    )


def test_search_stops_at_the_first_failure_even_if_lower_thresholds_pass_again():
    confidences = np.concatenate([np.linspace(1.0, 0.91, 50), np.linspace(0.9, 0.81, 30), np.linspace(0.8, 0.0, 400)])
    qualities = np.concatenate([np.ones(50), np.zeros(30), np.ones(400)])
    decision = choose_threshold(confidences, qualities, target=0.6, delta=0.05)
    assert decision.curve[-1].lower_bound >= 0.6  # the whole set would pass on its own
    assert decision.threshold is not None and decision.threshold > 0.8


def test_subsets_smaller_than_min_count_are_skipped_not_failed():
    confidences = np.linspace(1.0, 0.0, 105)
    qualities = np.concatenate([np.zeros(5), np.ones(100)])
    assert choose_threshold(confidences, qualities, target=0.6, delta=0.05, min_count=30).threshold == 0.0
    assert choose_threshold(confidences, qualities, target=0.6, delta=0.05, min_count=1).threshold is None


def test_too_few_validation_images_auto_labels_nothing():
    decision = choose_threshold([0.9] * 10, [1.0] * 10, target=0.6, delta=0.05, min_count=30)
    assert decision.threshold is None and decision.lower_bound is None and decision.n_validation_above == 0
    assert decision.statement.startswith("nothing is auto-labelled: only 10 validation images")
    assert "at least 30" in decision.statement
    no_validation = choose_threshold([], [], target=0.6, delta=0.05)
    assert no_validation.threshold is None and no_validation.curve == [] and no_validation.n_validation == 0


def test_bound_below_target_auto_labels_nothing_and_says_why():
    confidences, qualities = _separated(0, 100)
    decision = choose_threshold(confidences, qualities + 0.5, target=0.6, delta=0.05)
    assert decision.threshold is None
    assert decision.statement.startswith("nothing is auto-labelled: even the 30 most confident validation images")
    assert "below the target 0.60" in decision.statement


def test_tied_confidences_form_one_candidate():
    decision = choose_threshold([0.5] * 40 + [0.2] * 40, [1.0] * 80, target=0.6, delta=0.05)
    assert [(point.threshold, point.n) for point in decision.curve] == [(0.5, 40), (0.2, 80)]
    assert decision.threshold == 0.2


def test_curve_is_ordered_and_bounds_are_below_means():
    rng = np.random.default_rng(3)
    decision = choose_threshold(rng.uniform(size=200), rng.uniform(size=200), target=0.3, delta=0.1)
    thresholds = [point.threshold for point in decision.curve]
    assert thresholds == sorted(thresholds, reverse=True)
    assert all(point.lower_bound <= point.mean_quality for point in decision.curve)
    assert decision.statement.startswith("with 90% confidence")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"confidences": [0.5, 0.6], "qualities": [0.5]}, "same length"),
        ({"qualities": [0.5, 1.2]}, r"qualities\[1\] = 1.2"),
        ({"confidences": [0.5, float("nan")]}, r"confidences\[1\]"),
        ({"target": 1.5}, "target"),
        ({"delta": 0.0}, "delta"),
        ({"min_count": 0}, "min_count"),
    ],
)
def test_bad_input_is_named(kwargs, message):
    arguments = {"confidences": [0.5, 0.6], "qualities": [0.5, 0.5], "target": 0.6, "delta": 0.05} | kwargs
    with pytest.raises(ValueError, match=message):
        choose_threshold(**arguments)


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("bound", "draws"), [("hoeffding-bentkus", 1000), ("betting", 300)])
def test_guarantee_holds_over_many_calibration_draws_where_a_point_estimate_does_not(bound, draws):
    """Confidence c ~ U(0, 1); quality q ~ Beta with mean 0.35 + 0.6 c (concentration 20).

    The true mean quality of the population with c >= t is 0.35 + 0.6 (1 + t) / 2,
    so the target 0.7 is met exactly when t >= 1/6.
    """
    n_validation, target, delta = 300, 0.7, 0.05
    tolerance = 2 * math.sqrt(delta * (1 - delta) / draws)  # two binomial standard errors
    rng = np.random.default_rng(20210101)
    guaranteed_misses = point_estimate_misses = nothing_labelled = 0
    for _ in range(draws):
        confidences = rng.uniform(size=n_validation)
        mean_quality = 0.35 + 0.6 * confidences
        qualities = rng.beta(20 * mean_quality, 20 * (1 - mean_quality))
        decision = choose_threshold(confidences, qualities, target, delta, bound=bound)
        if decision.threshold is None:
            nothing_labelled += 1
        elif 0.35 + 0.6 * (1 + decision.threshold) / 2 < target:
            guaranteed_misses += 1
        point_estimate = min(p.threshold for p in decision.curve if p.n >= 30 and p.mean_quality >= target)
        point_estimate_misses += 0.35 + 0.6 * (1 + point_estimate) / 2 < target
    assert guaranteed_misses / draws <= delta + tolerance
    assert point_estimate_misses / draws > 0.30
    assert nothing_labelled / draws < 0.05  # the guarantee is not bought by never auto-labelling


def test_human_parity_target_from_enough_measurements():
    decision = human_parity_target([0.8] * 15 + [0.9] * 15, HumanParity(margin=0.05, min_measured_images=20))
    assert decision.source == "human-parity"
    assert decision.target == pytest.approx(0.8)
    assert decision.measured_human_quality == pytest.approx(0.85)
    assert decision.n_measured == 30


def test_human_parity_target_falls_back_with_a_reason():
    decision = human_parity_target([0.9] * 5, HumanParity(fallback_target_miou=0.6, min_measured_images=20))
    assert decision.source == "fallback" and decision.target == 0.6
    assert "5 gold/audit images, fewer than the 20 required" in decision.reason
    assert human_parity_target([], HumanParity()).measured_human_quality is None


def test_human_parity_target_rejects_out_of_range_quality():
    with pytest.raises(ValueError, match=r"human_qualities\[1\]"):
        human_parity_target([0.5, -0.1], HumanParity())


def test_betting_bets_use_only_earlier_values_and_respect_the_cap():
    values = np.array([0.9, 0.1, 0.8, 0.7, 0.95])
    bets = betting_bets(values, 0.05, max_bet=1.5)
    changed = values.copy()
    changed[3] = 0.0
    assert np.array_equal(betting_bets(changed, 0.05, 1.5)[:4], bets[:4])  # bet i ignores value i and later ones
    assert np.all((bets > 0) & (bets <= 1.5))


@pytest.mark.timeout(60)
def test_betting_lower_bound_covers_the_true_mean_in_at_least_1_minus_delta_of_draws():
    rng = np.random.default_rng(7)
    draws, n, delta = 2000, 60, 0.05
    true_mean = 0.85 * 30 / 34 + 0.15 * 0.15  # a mixture like image IoUs: mostly good, some misses
    misses = 0
    for _ in range(draws):
        values = np.where(rng.random(n) < 0.85, rng.beta(30, 4, n), rng.uniform(0.0, 0.3, n))
        misses += betting_lower_bound(values, delta, max_bet=1.5) > true_mean
    assert misses / draws <= delta + 2 * math.sqrt(delta * (1 - delta) / draws)


def test_betting_bound_is_tighter_than_hoeffding_bentkus_when_qualities_vary_little():
    rng = np.random.default_rng(3)
    values = np.clip(rng.normal(0.8, 0.05, 50), 0.0, 1.0)
    betting = betting_lower_bound(values, 0.05, max_bet=1.5)
    hoeffding = hoeffding_bentkus_lower_bound(np.array([values.mean()]), np.array([50]), 0.05)[0]
    assert hoeffding < betting < values.mean()


def test_betting_bound_edges():
    assert betting_lower_bound([], 0.05, 1.5) == 0.0
    assert betting_lower_bound([0.0] * 40, 0.05, 1.5) == 0.0
    ones = betting_lower_bound([1.0] * 200, 0.05, 1.5)
    assert 0.6 < ones <= 1 / 1.5  # capped where the bets stay valid: m at most 1 / the largest bet
    mixed = [0.5, 0.9] * 50
    assert betting_lower_bound(mixed, 0.01, 1.0) < betting_lower_bound(mixed, 0.2, 1.0) < 0.7


def test_betting_threshold_decision_agrees_with_its_bound():
    rng = np.random.default_rng(11)
    confidences = rng.uniform(size=150)
    qualities = np.clip(0.4 + 0.5 * confidences + rng.normal(0.0, 0.05, 150), 0.0, 1.0)
    decision = choose_threshold(confidences, qualities, target=0.7, delta=0.05, bound="betting")
    assert decision.threshold is not None and decision.lower_bound >= 0.7
    hoeffding = choose_threshold(confidences, qualities, target=0.7, delta=0.05, bound="hoeffding-bentkus")
    # the tighter bound auto-labels at least as much (None: Hoeffding-Bentkus auto-labels nothing)
    assert hoeffding.threshold is None or decision.threshold <= hoeffding.threshold


def test_unknown_bound_is_named():
    with pytest.raises(ValueError, match="unknown bound"):
        choose_threshold([0.5] * 40, [0.9] * 40, 0.6, 0.05, bound="chebyshev")
