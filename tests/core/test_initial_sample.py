from boxloop.initial_sample import random_sample
from tests.core.label_records import image_records


def test_initial_sample_is_the_same_over_any_sharding_and_changes_with_the_seed():
    records = image_records(50)
    shards = [records[:20], records[20:35], records[35:]]
    whole = random_sample([records], 7, seed=3)
    assert random_sample(shards, 7, seed=3) == whole and len(whole) == 7
    assert random_sample(shards, 7, seed=4) != whole
    assert sorted(r.image_id for r in random_sample(shards, 100, seed=3)) == sorted(r.image_id for r in records)
