"""The guaranteed auto-labelling threshold (DESIGN.md, "The guarantee").

The threshold is the lowest confidence t such that a one-sided (1 - delta)
lower confidence bound of the mean quality of validation images with
confidence >= t reaches the target, found by a fixed-sequence test from high t
to low. The bound is, as configured (``quality.bound``), a betting bound (Waudby-Smith
and Ramdas, JRSSB 2024; the default: it adapts to the qualities' variance) or
Hoeffding-Bentkus, both for values in [0, 1].
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict
from scipy.optimize import elementwise
from scipy.special import betainc, rel_entr

from boxloop.config import HumanParity

_ROOT_TOLERANCE = 1e-10

Bound = Literal["betting", "hoeffding-bentkus"]

BETTING_MAX_BET_AT_TARGET = 0.9
"""Bets are capped at this / target, so every factor 1 + bet (q - m) stays positive for m up to target / 0.9."""

BETTING_ORDER_SEED = 20240101
"""Seed of the fixed, data-independent order in which the betting bound sees the validation images."""

_BISECTION_STEPS = 30


class ThresholdCurvePoint(BaseModel):
    """One candidate threshold: validation images at or above it, their mean quality and its lower bound."""

    model_config = ConfigDict(frozen=True)

    threshold: float
    n: int
    mean_quality: float
    lower_bound: float


class ThresholdDecision(BaseModel):
    """The chosen threshold (None: auto-label nothing), the bound behind it, and a plain statement."""

    model_config = ConfigDict(frozen=True)

    threshold: float | None
    lower_bound: float | None
    n_validation_above: int
    n_validation: int
    target: float
    delta: float
    statement: str
    curve: list[ThresholdCurvePoint]


class TargetDecision(BaseModel):
    """The quality target an iteration uses, and where it came from."""

    model_config = ConfigDict(frozen=True)

    target: float
    source: Literal["human-parity", "fallback"]
    n_measured: int
    measured_human_quality: float | None
    reason: str


def hoeffding_bentkus_p_value(mean_loss: np.ndarray, n: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Hoeffding-Bentkus p-value for H0: E[loss] >= alpha, losses in [0, 1] (elementwise).

    ``p = min(exp(-n h1(min(mean_loss, alpha), alpha)), e * P(Binom(n, alpha) <= ceil(n mean_loss)))``
    with ``h1(a, b) = a log(a/b) + (1-a) log((1-a)/(1-b))``: Bates et al., JACM 2021,
    Prop. 3 and Appendix A. It is non-increasing in ``alpha``.
    """
    mean_loss, n, alpha = np.broadcast_arrays(*(np.asarray(x, dtype=float) for x in (mean_loss, n, alpha)))
    below = np.minimum(mean_loss, alpha)
    hoeffding = np.exp(-n * (rel_entr(below, alpha) + rel_entr(1.0 - below, 1.0 - alpha)))
    # P(Binom(n, alpha) <= k) = I_{1 - alpha}(n - k, k + 1) for k < n (regularised incomplete beta)
    k = np.ceil(n * mean_loss)
    binomial_cdf = np.where(k >= n, 1.0, betainc(np.maximum(n - k, 1.0), k + 1.0, 1.0 - alpha))
    bentkus = math.e * binomial_cdf
    return np.minimum(hoeffding, bentkus)


def hoeffding_bentkus_lower_bound(mean_quality: np.ndarray, n: np.ndarray, delta: float) -> np.ndarray:
    """One-sided (1 - delta) lower confidence bound of a mean of n values in [0, 1] (elementwise).

    Inverts the Hoeffding-Bentkus p-value on the loss 1 - quality: the upper
    bound of the mean loss is the root in [mean loss, 1] of p(alpha) = delta,
    found with scipy's vectorised bracketing root search (the p-value is
    continuous and non-increasing in alpha, 1 at the mean loss and 0 at 1).
    The conservative end of the final bracket is returned.
    """
    mean_loss = 1.0 - np.asarray(mean_quality, dtype=float)
    n = np.asarray(n, dtype=float)
    lower = np.zeros_like(mean_loss)
    open_ = mean_loss < 1.0
    if open_.any():
        result = elementwise.find_root(
            lambda alpha, loss, count: hoeffding_bentkus_p_value(loss, count, alpha) - delta,
            (mean_loss[open_], np.ones(int(open_.sum()))),
            args=(mean_loss[open_], n[open_]),
            tolerances={"xatol": _ROOT_TOLERANCE, "xrtol": 0.0},
        )
        upper_loss = np.maximum(*result.bracket)
        lower[open_] = np.clip(1.0 - upper_loss, 0.0, 1.0)
    return lower


def betting_bets(values: np.ndarray, delta: float, max_bet: float) -> np.ndarray:
    """Predictable plug-in bets: bet i uses only values before i (Waudby-Smith & Ramdas, JRSSB 2024, eq. 26).

    ``min(sqrt(2 log(1/delta) / (n sigma2_{i-1})), max_bet)`` with the running variance estimate
    ``sigma2_i = (1/4 + sum_{j<=i} (x_j - mu_j)^2) / (i + 1)``, ``mu_i = (1/2 + sum_{j<=i} x_j) / (i + 1)``.
    """
    n = values.size
    steps = np.arange(1, n + 1)
    running_mean = (0.5 + np.cumsum(values)) / (steps + 1)
    running_variance = (0.25 + np.cumsum((values - running_mean) ** 2)) / (steps + 1)
    previous_variance = np.concatenate([[0.25], running_variance[:-1]])
    return np.minimum(np.sqrt(2.0 * np.log(1.0 / delta) / (n * previous_variance)), max_bet)


def _betting_rejects(values: np.ndarray, bets: np.ndarray, mean: float, delta: float) -> bool:
    """Whether the capital of betting against "the mean is at most ``mean``" ever reaches 1/delta (Ville)."""
    with np.errstate(divide="ignore"):
        log_capital = np.cumsum(np.log1p(bets * (values - mean)))
    return bool(log_capital.size) and float(log_capital.max()) >= math.log(1.0 / delta)


def betting_lower_bound(values: Sequence[float], delta: float, max_bet: float) -> float:
    """One-sided (1 - delta) lower confidence bound of the mean of i.i.d. values in [0, 1], by betting.

    ``values`` must be in an order that does not depend on them. The capital
    ``K_t(m) = prod_{i<=t} (1 + bet_i (x_i - m))`` is a nonnegative supermartingale when the mean is at
    most m (bets ``betting_bets`` are predictable and at most ``max_bet``, and m is at most 1 / the
    largest bet), so by Ville's inequality ``max_t K_t(m) >= 1/delta`` happens with probability at most
    delta. The bets do not depend on m, so K is non-increasing in m and the rejected means form an
    interval [0, L); L is found by bisection and the rejected end is returned (never optimistic).
    """
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return 0.0
    return _betting_bound(x, betting_bets(x, delta, max_bet), delta)


def _betting_bound(x: np.ndarray, bets: np.ndarray, delta: float) -> float:
    """``betting_lower_bound`` with the bets already computed."""
    low, high = 0.0, min(1.0, 1.0 / float(bets.max()))
    if not _betting_rejects(x, bets, low, delta):
        return 0.0
    if _betting_rejects(x, bets, high, delta):
        return high
    for _ in range(_BISECTION_STEPS):
        middle = (low + high) / 2
        low, high = (middle, high) if _betting_rejects(x, bets, middle, delta) else (low, middle)
    return low


def _betting_decisions(
    c: np.ndarray, q: np.ndarray, thresholds: np.ndarray, target: float, delta: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per candidate threshold: the betting lower bound and whether H0 "mean < target" is rejected."""
    order = np.random.default_rng(BETTING_ORDER_SEED).permutation(c.size)
    c_fixed, q_fixed = c[order], q[order]
    max_bet = BETTING_MAX_BET_AT_TARGET / max(target, 1e-9)
    bounds, rejected = np.empty(thresholds.size), np.empty(thresholds.size, dtype=bool)
    for index, threshold in enumerate(thresholds):
        subset = q_fixed[c_fixed >= threshold]
        bets = betting_bets(subset, delta, max_bet)
        rejected[index] = _betting_rejects(subset, bets, target, delta)
        bound = _betting_bound(subset, bets, delta)
        bounds[index] = max(bound, target) if rejected[index] else min(bound, np.nextafter(target, 0.0))
    return bounds, rejected


def _validated(confidences: Sequence[float], qualities: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    c = np.asarray(confidences, dtype=float).reshape(-1)
    q = np.asarray(qualities, dtype=float).reshape(-1)
    if c.shape != q.shape:
        raise ValueError(f"confidences ({c.size}) and qualities ({q.size}) must have the same length")
    for name, values in (("confidences", c), ("qualities", q)):
        bad = np.flatnonzero(~np.isfinite(values) | (values < 0.0) | (values > 1.0))
        if bad.size:
            raise ValueError(f"{name}[{bad[0]}] = {float(values[bad[0]])!r} is not in [0, 1]")
    return c, q


def _floor2(value: float) -> str:
    """A bound shown to two decimals, rounded down so it never overstates."""
    return f"{math.floor(value * 100 + 1e-9) / 100:.2f}"


def choose_threshold(
    confidences: Sequence[float],
    qualities: Sequence[float],
    target: float,
    delta: float,
    min_count: int = 30,
    bound: Bound = "betting",
) -> ThresholdDecision:
    """The lowest confidence threshold whose auto-labels meet ``target`` mean quality with prob. >= 1 - delta.

    ``confidences[i]`` and ``qualities[i]`` (both in [0, 1]) belong to validation
    image i: a random sample of the pool, human-labelled, never trained on.
    Candidates are the distinct validation confidences, tested in a fixed
    sequence from high to low, skipping those with fewer than ``min_count``
    validation images at or above them. For candidate t, H0(t) "the mean
    quality of images with confidence >= t is below target" is rejected when
    the ``bound``'s lower confidence bound of their mean quality is >= target:
    Hoeffding-Bentkus (Bates, Angelopoulos, Lei, Malik, Jordan,
    "Distribution-Free, Risk-Controlling Prediction Sets", JACM 2021, Prop. 3 /
    Appendix A), or the betting test of ``betting_lower_bound`` (the images in
    a fixed seeded permutation of the order given, bets capped at 0.9 / target;
    callers give the images in image-id order, ``threshold_step.measure_validation``,
    so a rerun gives the same bound). The
    search stops at the first candidate not rejected; the threshold is the
    lowest one rejected before it, or None (auto-label nothing).

    Every test uses the full delta, with no Bonferroni split: the order is
    fixed before the qualities are seen (it depends on confidences only), so
    a wrong acceptance needs the *first* true H0 in the sequence to be
    rejected - an event of probability <= delta - because the search stops at
    the first H0 it keeps. Hence the family-wise error is <= delta over the
    whole search (fixed-sequence testing; Angelopoulos et al., "Learn then
    Test", 2021). The guarantee is for the population the validation images
    were sampled from, i.e. this iteration's pool.
    """
    c, q = _validated(confidences, qualities)
    if not 0.0 <= target <= 1.0:
        raise ValueError(f"target {target!r} is not in [0, 1]")
    if not 0.0 < delta < 1.0:
        raise ValueError(f"delta {delta!r} is not in (0, 1)")
    if min_count < 1:
        raise ValueError(f"min_count {min_count!r} must be at least 1")

    order = np.argsort(-c, kind="stable")
    c_desc, q_desc = c[order], q[order]
    # the last position of each distinct confidence: the subset c >= t ends there
    group_ends = np.flatnonzero(np.append(c_desc[1:] != c_desc[:-1], c_desc.size > 0))
    thresholds = c_desc[group_ends]
    counts = group_ends + 1
    means = np.cumsum(q_desc)[group_ends] / counts
    if bound == "betting":
        lower_bounds, rejected = _betting_decisions(c, q, thresholds, target, delta)
    elif bound == "hoeffding-bentkus":
        lower_bounds = hoeffding_bentkus_lower_bound(means, counts, delta)
        rejected = lower_bounds >= target
    else:
        raise ValueError(f"unknown bound {bound!r}")
    curve = [
        ThresholdCurvePoint(threshold=float(t), n=int(n), mean_quality=float(m), lower_bound=float(lb))
        for t, n, m, lb in zip(thresholds, counts, means, lower_bounds, strict=True)
    ]

    tested = np.flatnonzero(counts >= min_count)
    passed = rejected[tested]
    first_kept = int(np.argmin(passed)) if not passed.all() else passed.size
    confidence_pct = f"{100 * (1 - delta):g}%"
    common = {"n_validation": int(c.size), "target": target, "delta": delta, "curve": curve}
    if first_kept == 0:
        if tested.size == 0:
            reason = (
                f"only {c.size} validation images, and at least {min_count} are needed "
                f"to bound their mean IoU with {confidence_pct} confidence"
            )
        else:
            first = tested[0]
            reason = (
                f"even the {counts[first]} most confident validation images (confidence ≥ {thresholds[first]:.3f}) "
                f"have mean IoU {means[first]:.2f} with a {confidence_pct} lower bound of "
                f"{_floor2(lower_bounds[first])}, below the target {target:.2f}"
            )
        return ThresholdDecision(
            threshold=None,
            lower_bound=None,
            n_validation_above=0,
            statement=f"nothing is auto-labelled: {reason}",
            **common,
        )
    chosen = tested[first_kept - 1]
    return ThresholdDecision(
        threshold=float(thresholds[chosen]),
        lower_bound=float(lower_bounds[chosen]),
        n_validation_above=int(counts[chosen]),
        statement=(
            f"with {confidence_pct} confidence the mean IoU of this iteration's auto-labels is ≥ {target:.2f} "
            f"(lower bound {_floor2(lower_bounds[chosen])}, n = {counts[chosen]} validation images "
            f"with confidence ≥ {thresholds[chosen]:.3f})"
        ),
        **common,
    )


def human_parity_target(human_qualities: Sequence[float], parity: HumanParity) -> TargetDecision:
    """Target = mean quality of human labels on gold/audit images minus ``parity.margin``.

    With fewer than ``parity.min_measured_images`` measurements the target is
    ``parity.fallback_target_miou``, and the reason says so.
    """
    measured = np.asarray(human_qualities, dtype=float).reshape(-1)
    bad = np.flatnonzero(~np.isfinite(measured) | (measured < 0.0) | (measured > 1.0))
    if bad.size:
        raise ValueError(f"human_qualities[{bad[0]}] = {float(measured[bad[0]])!r} is not in [0, 1]")
    if measured.size < parity.min_measured_images:
        return TargetDecision(
            target=parity.fallback_target_miou,
            source="fallback",
            n_measured=int(measured.size),
            measured_human_quality=float(measured.mean()) if measured.size else None,
            reason=(
                f"human quality measured on {measured.size} gold/audit images, fewer than the "
                f"{parity.min_measured_images} required: using the fallback target {parity.fallback_target_miou:.2f}"
            ),
        )
    human_mean = float(measured.mean())
    target = max(human_mean - parity.margin, 0.0)
    return TargetDecision(
        target=target,
        source="human-parity",
        n_measured=int(measured.size),
        measured_human_quality=human_mean,
        reason=(
            f"human labels score mean IoU {human_mean:.3f} on {measured.size} gold/audit images; "
            f"target = {human_mean:.3f} − margin {parity.margin:.2f} = {target:.3f}"
        ),
    )
