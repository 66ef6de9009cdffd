import hashlib
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from boxloop.models import Prediction, ScoredBox
from boxloop.selection import (
    Candidate,
    RoutingCounts,
    merge_audit_candidates,
    merge_candidates,
    route_shard,
    routing_confidence,
    select_for_humans,
    take_within_budget,
    uncertainty,
)

BOX = ScoredBox(class_id=0, left=1, top=1, width=5, height=5, score=0.8)


def prediction(image_id: str, confidence: float, *, empty: bool = False, embedding=(), error=None) -> Prediction:
    return Prediction(
        image_id=image_id,
        source_ref=f"s3://bucket/{image_id}.jpg",
        width=64,
        height=48,
        boxes=[] if empty or error else [BOX],
        confidence=confidence,
        embedding=list(embedding),
        error=error,
    )


def candidate(image_id: str, uncertainty_: float, embedding=()) -> Candidate:
    return Candidate(
        image_id=image_id,
        source_ref=None,
        width=None,
        height=None,
        uncertainty=uncertainty_,
        embedding=list(embedding),
        n_boxes=1,
        prefill=[BOX],
    )


def test_uncertainty_is_one_minus_confidence_and_maximal_when_empty():
    assert uncertainty(prediction("a", 0.8)) == pytest.approx(0.2)
    assert uncertainty(prediction("a", 0.95, empty=True)) == 1.0
    assert routing_confidence(prediction("a", 0.95, empty=True)) == 0.0
    with pytest.raises(ValueError, match="image a failed"):
        uncertainty(prediction("a", 0.0, error="cannot decode"))


def test_route_shard_sends_each_prediction_to_exactly_one_place():
    predictions = [
        prediction("confident", 0.9),
        prediction("borderline", 0.7),
        prediction("unsure", 0.3),
        prediction("empty", 0.99, empty=True),
        prediction("labelled", 0.1),
        prediction("broken", 0.0, error="cannot decode"),
    ]
    routing = route_shard(predictions, threshold=0.7, exclude_ids={"labelled"}, max_candidates=10, audit_size=5, seed=1)
    assert [p.image_id for p in routing.auto] == ["confident", "borderline"]
    assert [c.image_id for c in routing.candidates] == ["empty", "unsure"]
    assert {c.image_id for c in routing.audit_candidates} == {"confident", "borderline"}
    assert routing.failed_image_ids == ["broken"]
    assert routing.counts == RoutingCounts(predictions=6, auto=2, uncertain=2, excluded=1, failed=1)
    empty = routing.candidates[0]
    assert (empty.uncertainty, empty.n_boxes, empty.width, empty.height) == (1.0, 0, 64, 48)
    assert routing.candidates[1].prefill == [BOX]


def test_route_shard_without_threshold_auto_labels_nothing():
    routing = route_shard(
        [prediction("a", 1.0), prediction("b", 0.2)], None, set(), max_candidates=10, audit_size=3, seed=0
    )
    assert routing.auto == [] and routing.audit_candidates == []
    assert [c.image_id for c in routing.candidates] == ["b", "a"]


def test_route_shard_keeps_the_most_uncertain_with_image_id_tie_break():
    predictions = [prediction(f"img{i}", confidence) for i, confidence in enumerate([0.5, 0.1, 0.5, 0.9, 0.1])]
    routing = route_shard(predictions, 0.95, set(), max_candidates=3, audit_size=0, seed=0)
    assert [c.image_id for c in routing.candidates] == ["img1", "img4", "img0"]
    assert routing.counts.uncertain == 5


def test_audit_slice_is_the_smallest_keyed_hashes():
    predictions = [prediction(f"img{i}", 0.9) for i in range(50)]
    routing = route_shard(predictions, 0.5, set(), max_candidates=0, audit_size=4, seed=7)
    expected = sorted((f"img{i}" for i in range(50)), key=lambda i: hashlib.sha256(f"7:{i}".encode()).hexdigest())[:4]
    assert [c.image_id for c in routing.audit_candidates] == expected
    other_seed = route_shard(predictions, 0.5, set(), max_candidates=0, audit_size=4, seed=8)
    assert [c.image_id for c in other_seed.audit_candidates] != expected


def test_duplicates_are_rejected():
    with pytest.raises(ValueError, match="image a appears twice"):
        route_shard([prediction("a", 0.1), prediction("a", 0.2)], 0.5, set(), 5, 0, 0)
    with pytest.raises(ValueError, match="image a appears in more than one"):
        merge_candidates([[candidate("a", 0.5)], [candidate("a", 0.5)]], 5)


def _pool(rng: random.Random, size: int) -> list[Prediction]:
    pool = []
    for i in range(size):
        kind = rng.random()
        pool.append(
            prediction(
                f"img{i:04d}",
                round(rng.random(), 1),  # coarse values: many ties
                empty=kind < 0.1,
                error="unreadable" if kind > 0.95 else None,
                embedding=[rng.gauss(0, 1) for _ in range(4)],
            )
        )
    rng.shuffle(pool)
    return pool


def _assert_two_stage_equals_single_pass(seed: int, size: int, n_shards: int, threshold: float | None, limit: int):
    rng = random.Random(seed)
    pool = _pool(rng, size)
    excluded = {p.image_id for p in pool if rng.random() < 0.1}
    shards = [[] for _ in range(n_shards)]
    for p in pool:
        shards[rng.randrange(n_shards)].append(p)

    def route(predictions):
        return route_shard(predictions, threshold, excluded, max_candidates=limit, audit_size=limit // 2, seed=seed)

    single = route(pool)
    routed = [route(shard) for shard in shards]
    merged = merge_candidates((r.candidates for r in routed), limit)
    merged_audit = merge_audit_candidates((r.audit_candidates for r in routed), limit // 2, seed)

    assert sorted(p.image_id for r in routed for p in r.auto) == sorted(p.image_id for p in single.auto)
    assert merged == single.candidates
    assert merged_audit == single.audit_candidates
    assert RoutingCounts.total(r.counts for r in routed) == single.counts
    assert single.counts.predictions == size

    def cost(c: Candidate) -> float:
        return 5.0 + 10 * c.uncertainty

    batch = limit // 3
    budget = 40.0 * batch
    assert select_for_humans(merged, batch, budget, cost) == select_for_humans(single.candidates, batch, budget, cost)


@settings(max_examples=100, deadline=None)
@given(
    st.integers(0, 2**32 - 1),
    st.integers(0, 150),
    st.integers(1, 6),
    st.sampled_from([None, 0.0, 0.55, 0.8]),
    st.integers(0, 20),
)
def test_two_stage_routing_equals_a_single_pass(seed, size, n_shards, threshold, limit):
    _assert_two_stage_equals_single_pass(seed, size, n_shards, threshold, limit)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_two_stage_routing_equals_a_single_pass_on_a_larger_pool(seed):
    _assert_two_stage_equals_single_pass(seed, size=2000, n_shards=7, threshold=0.65, limit=120)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.floats(0, 1), st.floats(0.5, 40)), max_size=40),
    st.integers(0, 30),
    st.floats(0, 300),
)
def test_budget_is_never_exceeded(items, batch_size, budget):
    candidates = [candidate(f"img{i:03d}", u, embedding=(i % 3, 1.0)) for i, (u, _) in enumerate(items)]
    seconds = {c.image_id: s for c, (_, s) in zip(candidates, items, strict=True)}
    selection = select_for_humans(candidates, batch_size, budget, lambda c: seconds[c.image_id])
    assert selection.estimated_seconds == pytest.approx(sum(seconds[c.image_id] for c in selection.selected))
    assert selection.estimated_seconds <= budget
    assert len(selection.selected) <= batch_size
    assert len({c.image_id for c in selection.selected}) == len(selection.selected)


def test_stop_reasons():
    candidates = [candidate(f"img{i}", 0.5 + i / 100) for i in range(10)]
    assert select_for_humans(candidates, 3, 100.0, lambda c: 10.0).stop_reason == "batch_full"
    by_budget = select_for_humans(candidates, 5, 25.0, lambda c: 10.0)
    assert (by_budget.stop_reason, len(by_budget.selected), by_budget.estimated_seconds) == ("budget", 2, 20.0)
    assert select_for_humans(candidates[:2], 5, 100.0, lambda c: 10.0).stop_reason == "no_candidates_left"
    assert select_for_humans(candidates, 5, -1.0, lambda c: 10.0).selected == []


def test_empty_predictions_are_picked_first():
    predictions = [prediction("sure", 0.2), prediction("blank", 0.99, empty=True), prediction("unsure", 0.05)]
    routing = route_shard(predictions, 0.9, set(), max_candidates=10, audit_size=0, seed=0)
    selection = select_for_humans(routing.candidates, 1, 100.0, lambda c: 5.0)
    assert [c.image_id for c in selection.selected] == ["blank"]


def test_near_duplicates_are_not_both_picked_when_a_distinct_image_is_available():
    candidates = [
        candidate("a", 0.90, embedding=(1.0, 0.0, 0.0)),
        candidate("b", 0.89, embedding=(0.999, 0.01, 0.0)),
        candidate("c", 0.50, embedding=(0.0, 1.0, 0.0)),
    ]
    selection = select_for_humans(candidates, 2, 100.0, lambda c: 5.0)
    assert [c.image_id for c in selection.selected] == ["a", "c"]


def test_without_embeddings_selection_follows_uncertainty():
    candidates = [candidate("a", 0.90), candidate("b", 0.89), candidate("c", 0.50)]
    assert [c.image_id for c in select_for_humans(candidates, 2, 100.0, lambda c: 5.0).selected] == ["a", "b"]


def test_selection_is_deterministic_whatever_the_input_order():
    rng = random.Random(3)
    candidates = [
        candidate(f"img{i:03d}", round(rng.random(), 1), embedding=(rng.random(), rng.random())) for i in range(60)
    ]
    first = select_for_humans(candidates, 10, 1000.0, lambda c: 7.0)
    shuffled = rng.sample(candidates, len(candidates))
    assert select_for_humans(shuffled, 10, 1000.0, lambda c: 7.0) == first
    assert len(first.selected) == 10


def test_mismatched_embedding_lengths_are_rejected():
    with pytest.raises(ValueError, match="differ in length"):
        select_for_humans([candidate("a", 0.5, (1.0,)), candidate("b", 0.4, (1.0, 0.0))], 2, 100.0, lambda c: 1.0)


def test_negative_arguments_are_rejected():
    with pytest.raises(ValueError, match="max_candidates"):
        route_shard([], 0.5, set(), max_candidates=-1, audit_size=0, seed=0)
    with pytest.raises(ValueError, match="diversity_pool_factor"):
        select_for_humans([], 1, 10.0, lambda c: 1.0, diversity_pool_factor=0)
    with pytest.raises(ValueError, match="seconds_per_image gave -1"):
        select_for_humans([candidate("a", 0.5)], 1, 10.0, lambda c: -1.0)


def test_take_within_budget_stops_at_the_first_item_that_does_not_fit():
    taken, spent = take_within_budget([4.0, 5.0, 3.0, 1.0], lambda seconds: seconds, 2.0, 12.0)
    assert taken == [4.0, 5.0]
    assert spent == 11.0
    assert take_within_budget([], float, 1.0, 1.0) == ([], 1.0)
