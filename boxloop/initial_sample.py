"""The random initial sample humans label first (DESIGN.md "The loop"), sent in waves by SelectWaveForPeople.

The sample is the ``initial_sample_size`` pool images with the smallest keyed rank for ``initial``
(``boxloop.keyed_draw``): a uniform random sample, the same on every retry and over any sharding of
the pool, drawn by streaming the pool shards through a bounded heap.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable

from boxloop.keyed_draw import keyed_rank
from boxloop.models import ImageRecord

INITIAL_PURPOSE = "initial"


def random_sample(shards: Iterable[Iterable[ImageRecord]], size: int, seed: int) -> list[ImageRecord]:
    """The ``size`` records with the smallest ``initial`` rank, streamed over ``shards`` (iterables of records)."""
    kept: list[tuple[str, ImageRecord]] = []
    for records in shards:
        # stage one: each shard's best ``size``; stage two: the global best of those
        ranked = ((keyed_rank(seed, INITIAL_PURPOSE, record.image_id), record) for record in records)
        shard_best = heapq.nsmallest(size, ranked, key=lambda pair: pair[0])
        kept = heapq.nsmallest(size, kept + shard_best, key=lambda pair: pair[0])
    return [record for _, record in kept]
