"""Routing predictions and choosing what humans label (DESIGN.md, "The loop" and "Human work").

Works on shards with bounded memory. Per shard, ``route_shard`` splits
predictions into auto-labels and a bounded list of the most uncertain
candidates (plus a random audit slice of the auto-labels); the global stage
merges the shards' lists with the same ordering, so the two stages choose
exactly what one pass over the whole pool would. ``select_for_humans`` then
picks a diverse, uncertain batch that fits the remaining human budget.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Container, Iterable, Iterator, Sequence
from typing import Literal, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from boxloop.config import LabelingConfig
from boxloop.keyed_draw import keyed_rank
from boxloop.models import Prediction, ScoredBox

DIVERSITY_POOL_FACTOR = 4
"""Candidates kept per shard per image of the human batch (``select_for_humans``' diversity pool)."""


class Candidate(BaseModel):
    """An image that may go to humans, with what the human task needs (the model's boxes to pre-fill)."""

    model_config = ConfigDict(frozen=True)

    image_id: str
    source_ref: str | None
    width: int | None
    height: int | None
    uncertainty: float = Field(ge=0.0, le=1.0)
    embedding: list[float]
    n_boxes: int = Field(ge=0)
    prefill: list[ScoredBox]


class RoutingCounts(BaseModel):
    """How many predictions went where; every prediction is counted exactly once."""

    model_config = ConfigDict(frozen=True)

    predictions: int = 0
    auto: int = 0
    uncertain: int = 0
    excluded: int = 0
    failed: int = 0

    @classmethod
    def total(cls, counts: Iterable[RoutingCounts]) -> RoutingCounts:
        """The sum of several shards' counts."""
        fields = list(cls.model_fields)
        sums = dict.fromkeys(fields, 0)
        for count in counts:
            for name in fields:
                sums[name] += getattr(count, name)
        return cls(**sums)


class ShardRouting(BaseModel):
    """One shard's routing.

    ``auto``: predictions confident enough to auto-label. ``candidates``: the
    shard's ``max_candidates`` most uncertain other images. ``audit_candidates``:
    a keyed-random ``audit_size`` subset of ``auto`` (still in ``auto``).
    ``failed_image_ids``: predictions with ``error`` set, for the caller to report.
    """

    auto: list[Prediction]
    candidates: list[Candidate]
    audit_candidates: list[Candidate]
    failed_image_ids: list[str]
    counts: RoutingCounts


class RoutedCandidates(BaseModel):
    """``routing/candidates/<shard>.json``: one routed shard's candidates for humans, audit candidates and counts."""

    shard_key: str
    candidates: list[Candidate]
    audit_candidates: list[Candidate]
    failed_image_ids: list[str]
    counts: RoutingCounts


class Selection(BaseModel):
    """The images chosen for humans, their estimated cost, and why selection stopped."""

    selected: list[Candidate]
    estimated_seconds: float
    stop_reason: Literal["batch_full", "budget", "no_candidates_left"]


def uncertainty(prediction: Prediction) -> float:
    """1 - confidence in [0, 1]; a prediction with no boxes is maximally uncertain (1.0).

    An empty prediction is the model failing to see anything, not certainty that
    nothing is there. Raises ValueError for a failed prediction (``error`` set).
    """
    if prediction.error is not None:
        raise ValueError(
            f"prediction for image {prediction.image_id} failed ({prediction.error}); it has no uncertainty"
        )
    if not prediction.boxes:
        return 1.0
    return 1.0 - prediction.confidence


def routing_confidence(prediction: Prediction) -> float:
    """The confidence compared with the threshold: ``1 - uncertainty``, so 0 for an empty prediction.

    Use the same value for validation images when choosing the threshold, so the
    guarantee covers exactly the images routed to auto-labelling.
    """
    return 1.0 - uncertainty(prediction)


_Item = TypeVar("_Item")


def _bounded_smallest(items: Iterable[_Item], limit: int, key: Callable[[_Item], tuple]) -> list[_Item]:
    """``heapq.nsmallest`` that always consumes all of ``items`` and never holds more than 2 * limit + 1."""
    kept: list[_Item] = []
    for item in items:
        kept.append(item)
        if len(kept) > 2 * limit:
            kept = heapq.nsmallest(limit, kept, key=key)
    return heapq.nsmallest(limit, kept, key=key)


def _candidate_rank(candidate: Candidate) -> tuple[float, str]:
    return (-candidate.uncertainty, candidate.image_id)


def _audit_rank(image_id: str, seed: int) -> tuple[str, str]:
    return (keyed_rank(seed, None, image_id), image_id)


def _to_candidate(prediction: Prediction) -> Candidate:
    return Candidate(
        image_id=prediction.image_id,
        source_ref=prediction.source_ref,
        width=prediction.width,
        height=prediction.height,
        uncertainty=uncertainty(prediction),
        embedding=prediction.embedding,
        n_boxes=len(prediction.boxes),
        prefill=prediction.boxes,
    )


def _check_non_negative(**values: int) -> None:
    for name, value in values.items():
        if value < 0:
            raise ValueError(f"{name} must be >= 0, got {value}")


def route_shard(
    predictions: Iterable[Prediction],
    threshold: float | None,
    exclude_ids: Container[str],
    max_candidates: int,
    audit_size: int,
    seed: int,
) -> ShardRouting:
    """Route one shard of predictions.

    Failed predictions are listed, excluded ones (already labelled, validation,
    in flight) skipped; of the rest, those with ``routing_confidence >= threshold``
    are auto-labelled (none when ``threshold`` is None) and the others are
    uncertain, of which only the top ``max_candidates`` by (uncertainty desc,
    image_id asc) are kept, in bounded memory. The audit slice is the
    ``audit_size`` auto-labels with the smallest keyed rank ``sha256("<seed>:<image id>")``.
    Raises ValueError for an image id seen twice in the shard.
    """
    _check_non_negative(max_candidates=max_candidates, audit_size=audit_size)
    auto: list[Prediction] = []
    failed_image_ids: list[str] = []
    seen: set[str] = set()
    counts = dict.fromkeys(RoutingCounts.model_fields, 0)

    def uncertain_predictions() -> Iterator[Prediction]:
        # sorts each prediction into auto / failed / excluded as it streams the uncertain ones by
        for prediction in predictions:
            if prediction.image_id in seen:
                raise ValueError(f"image {prediction.image_id} appears twice in the shard")
            seen.add(prediction.image_id)
            counts["predictions"] += 1
            if prediction.error is not None:
                counts["failed"] += 1
                failed_image_ids.append(prediction.image_id)
            elif prediction.image_id in exclude_ids:
                counts["excluded"] += 1
            elif threshold is not None and routing_confidence(prediction) >= threshold:
                counts["auto"] += 1
                auto.append(prediction)
            else:
                counts["uncertain"] += 1
                yield prediction

    most_uncertain = _bounded_smallest(
        uncertain_predictions(), max_candidates, key=lambda p: (-uncertainty(p), p.image_id)
    )
    audit = heapq.nsmallest(audit_size, auto, key=lambda p: _audit_rank(p.image_id, seed))
    return ShardRouting(
        auto=auto,
        candidates=[_to_candidate(p) for p in most_uncertain],
        audit_candidates=[_to_candidate(p) for p in audit],
        failed_image_ids=failed_image_ids,
        counts=RoutingCounts(**counts),
    )


def route_for_iteration(
    predictions: Iterable[Prediction],
    threshold: float | None,
    exclude_ids: Container[str],
    config: LabelingConfig,
    iteration: int,
) -> ShardRouting:
    """``route_shard`` with the loop's settings: ``human_batch_size * DIVERSITY_POOL_FACTOR`` candidates,
    ``audit_size`` audit candidates, audit seed ``config.seed + iteration``."""
    return route_shard(
        predictions,
        threshold,
        exclude_ids,
        max_candidates=config.human_batch_size * DIVERSITY_POOL_FACTOR,
        audit_size=config.audit_size,
        seed=config.seed + iteration,
    )


def _merged(shard_results: Iterable[list[Candidate]], limit: int, key: Callable[[Candidate], tuple]) -> list[Candidate]:
    seen: set[str] = set()

    def unique(candidates: Iterable[Candidate]) -> Iterator[Candidate]:
        for candidate in candidates:
            if candidate.image_id in seen:
                raise ValueError(f"image {candidate.image_id} appears in more than one shard's list")
            seen.add(candidate.image_id)
            yield candidate

    return _bounded_smallest(unique(itertools.chain.from_iterable(shard_results)), limit, key)


def merge_candidates(shard_results: Iterable[list[Candidate]], max_candidates: int) -> list[Candidate]:
    """The global top ``max_candidates`` of the shards' candidate lists, by (uncertainty desc, image_id asc)."""
    _check_non_negative(max_candidates=max_candidates)
    return _merged(shard_results, max_candidates, _candidate_rank)


def merge_audit_candidates(shard_results: Iterable[list[Candidate]], audit_size: int, seed: int) -> list[Candidate]:
    """The global audit slice: the ``audit_size`` shard audit candidates with the smallest keyed hash."""
    _check_non_negative(audit_size=audit_size)
    return _merged(shard_results, audit_size, lambda c: _audit_rank(c.image_id, seed))


def _normalised_embeddings(pool: Sequence[Candidate]) -> np.ndarray | None:
    """Unit-length embeddings as rows, or None when any candidate has none."""
    if any(not candidate.embedding for candidate in pool):
        return None
    dimensions = {len(candidate.embedding) for candidate in pool}
    if len(dimensions) > 1:
        raise ValueError(f"candidates' embeddings differ in length: {sorted(dimensions)}")
    vectors = np.array([candidate.embedding for candidate in pool], dtype=float)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)


def _diverse_order(pool: Sequence[Candidate]) -> Iterator[int]:
    """Pool indices in pick order: uncertainty-weighted k-center greedy, or uncertainty order without embeddings.

    ``pool`` is sorted by (uncertainty desc, image_id asc); equal scores go to the earliest index,
    i.e. the more uncertain image, then the smaller image_id.
    """
    embeddings = _normalised_embeddings(pool) if pool else None
    if embeddings is None:
        yield from range(len(pool))
        return
    weights = np.array([candidate.uncertainty for candidate in pool])
    distance_to_selected = np.full(len(pool), np.inf)
    available = np.ones(len(pool), dtype=bool)
    pick = 0
    for _ in range(len(pool)):
        yield pick
        available[pick] = False
        distance = np.linalg.norm(embeddings - embeddings[pick], axis=1)
        np.minimum(distance_to_selected, distance, out=distance_to_selected)
        if not available.any():
            return
        score = np.where(available, weights * distance_to_selected, -np.inf)
        pick = int(np.argmax(score))


def select_for_humans(
    candidates: Sequence[Candidate],
    batch_size: int,
    remaining_budget_seconds: float,
    seconds_per_image: Callable[[Candidate], float],
    diversity_pool_factor: int = DIVERSITY_POOL_FACTOR,
) -> Selection:
    """Pick up to ``batch_size`` uncertain, diverse images whose estimated seconds fit the budget.

    From the ``batch_size * diversity_pool_factor`` most uncertain candidates,
    the first pick is the most uncertain; each next pick maximises uncertainty x
    L2 distance (of normalised embeddings) to the images already picked, ties
    going to the more uncertain, then the smaller image_id. Without embeddings the order is by
    uncertainty. Selection stops at ``batch_size`` or before the first image
    whose estimated seconds would take the total past the budget.
    """
    _check_non_negative(batch_size=batch_size)
    if diversity_pool_factor < 1:
        raise ValueError(f"diversity_pool_factor must be >= 1, got {diversity_pool_factor}")
    pool = heapq.nsmallest(batch_size * diversity_pool_factor, candidates, key=_candidate_rank)
    selected: list[Candidate] = []
    spent = 0.0
    stopped_by_budget = False
    for index in _diverse_order(pool):
        if len(selected) == batch_size:
            break
        seconds = seconds_per_image(pool[index])
        if seconds < 0:
            raise ValueError(f"seconds_per_image gave {seconds} for image {pool[index].image_id}; must be >= 0")
        if spent + seconds > remaining_budget_seconds:
            stopped_by_budget = True
            break
        selected.append(pool[index])
        spent += seconds
    if stopped_by_budget:
        stop_reason = "budget"
    elif len(selected) == batch_size:
        stop_reason = "batch_full"
    else:
        stop_reason = "no_candidates_left"
    return Selection(selected=selected, estimated_seconds=spent, stop_reason=stop_reason)


def take_within_budget(
    items: Iterable[_Item], seconds_of: Callable[[_Item], float], spent: float, budget_seconds: float
) -> tuple[list[_Item], float]:
    """Items in order while their estimated seconds keep the total within ``budget_seconds``.

    Stops at the first item that would go over (never skips ahead to a cheaper one); returns the items
    taken and the new total, starting from ``spent``.
    """
    taken: list[_Item] = []
    for item in items:
        seconds = seconds_of(item)
        if spent + seconds > budget_seconds:
            break
        taken.append(item)
        spent += seconds
    return taken, spent
