"""The one keyed-hash draw: values and orders pinned to what the loop drew before it had one module."""

import hashlib
from datetime import UTC, datetime

from boxloop.human_tasks import gold_order
from boxloop.initial_sample import random_sample
from boxloop.keyed_draw import keyed_rank, keyed_share
from boxloop.models import ImageRecord, Prediction, ScoredBox
from boxloop.selection import route_shard
from boxloop.validation_split import is_validation
from tests.core.label_records import human_record

IDS = [hashlib.sha256(f"image-{n}".encode()).hexdigest() for n in range(12)]


def _numbers(image_ids: list[str]) -> list[int]:
    return [IDS.index(image_id) for image_id in image_ids]


def test_rank_is_the_hex_sha256_of_seed_purpose_and_image_id():
    assert keyed_rank(3, "initial", "img7") == "167ff9a526bd9899ef99acafcc753491955130f3b0891fa958bde1db5c48975d"
    assert keyed_rank(4, "gold:2", "img7") == "243bec44f34d625ce18ad4afaab376fc4ab6a5cec2d27b89eb50f6c2fddcb055"
    assert keyed_rank(3, "initial", IDS[0]) == "70ea5f274d6fb17b3bf8595845244151d77aaae1abc72bab93b028f26134c66a"


def test_without_a_purpose_the_key_is_seed_and_image_id():
    assert keyed_rank(7, None, "img7") == "cbaaf52d8bd3db86c03e5f39391fb536f0207bb9fa607a31d85399bc7d042a08"
    assert keyed_rank(7, None, "img7") == hashlib.sha256(b"7:img7").hexdigest()


def test_share_is_the_first_eight_digest_bytes_over_two_to_the_64():
    assert keyed_share(3, "validation", "a" * 64) == 0.4537959090030146
    assert keyed_share(3, "validation", "img7") == 0.9373763012876812
    assert 0.0 <= keyed_share(0, "validation", "") < 1.0


def test_initial_sample_order_is_unchanged():
    records = [
        ImageRecord(
            image_id=i, source_ref="s3://b/x", width=1, height=1, registered_at=datetime(2026, 1, 1, tzinfo=UTC)
        )
        for i in IDS
    ]
    assert _numbers([r.image_id for r in random_sample([records[:5], records[5:]], 4, seed=3)]) == [6, 9, 7, 0]


def test_validation_split_is_unchanged():
    assert [n for n, image_id in enumerate(IDS) if is_validation(image_id, 3, 0.4)] == [0, 2, 5, 8, 9]


def test_audit_slice_is_unchanged():
    box = ScoredBox(class_id=0, left=1, top=1, width=5, height=5, score=0.8)
    predictions = [
        Prediction(image_id=i, source_ref="s3://b/x", width=64, height=48, boxes=[box], confidence=0.9, embedding=[])
        for i in IDS
    ]
    routing = route_shard(predictions, 0.5, set(), max_candidates=0, audit_size=4, seed=7)
    assert _numbers([c.image_id for c in routing.audit_candidates]) == [2, 11, 3, 7]


def test_gold_order_is_unchanged():
    records = [human_record(i) for i in IDS]
    assert _numbers([r.image_id for r in gold_order(records, seed=4, iteration=2)])[:5] == [7, 10, 6, 9, 0]
