"""The guaranteed auto-labelling threshold (DESIGN.md, "The guarantee").

The threshold is the lowest confidence t such that a one-sided (1 - delta)
lower confidence bound of the mean quality of validation images with
confidence >= t reaches the target, found by a fixed-sequence test from high t
to low. The bound is Hoeffding-Bentkus for values in [0, 1].
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
) -> ThresholdDecision:
    """The lowest confidence threshold whose auto-labels meet ``target`` mean quality with prob. >= 1 - delta.

    ``confidences[i]`` and ``qualities[i]`` (both in [0, 1]) belong to validation
    image i: a random sample of the pool, human-labelled, never trained on.
    Candidates are the distinct validation confidences, tested in a fixed
    sequence from high to low, skipping those with fewer than ``min_count``
    validation images at or above them. For candidate t, H0(t) "the mean
    quality of images with confidence >= t is below target" is rejected when
    the Hoeffding-Bentkus lower confidence bound (Bates, Angelopoulos, Lei,
    Malik, Jordan, "Distribution-Free, Risk-Controlling Prediction Sets",
    JACM 2021, Prop. 3 / Appendix A) of their mean quality is >= target. The
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
    lower_bounds = hoeffding_bentkus_lower_bound(means, counts, delta)
    curve = [
        ThresholdCurvePoint(threshold=float(t), n=int(n), mean_quality=float(m), lower_bound=float(lb))
        for t, n, m, lb in zip(thresholds, counts, means, lower_bounds)
    ]

    tested = np.flatnonzero(counts >= min_count)
    passed = lower_bounds[tested] >= target
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
