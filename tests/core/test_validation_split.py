import math

import pytest

from boxloop.config import LabelingConfig
from boxloop.keyed_draw import keyed_rank
from boxloop.validation_split import channel_of, check_channel, is_validation, validation_count, validation_ids

IDS = [f"image-{n}" for n in range(200)]


def _metadata(image_id: str, source: str = "human", iteration: int = 0) -> dict:
    return {"label-source": source, "iteration": iteration, "image-id": image_id}


def _config(**overrides) -> LabelingConfig:
    return LabelingConfig.model_validate({"classes": ["a"], **overrides})


def test_validation_is_exactly_the_count_first_in_keyed_order_and_never_falls_one_short():
    chosen = validation_ids(IDS, 30, seed=0)
    assert len(chosen) == 30
    assert chosen == set(sorted(IDS, key=lambda i: keyed_rank(0, "validation", i))[:30])
    assert validation_ids(IDS, 30, seed=1) != chosen
    assert validation_ids(IDS[:10], 30, seed=0) == set(IDS[:10])


def test_a_rejected_validation_image_is_replaced_by_the_next_in_order_and_no_other_changes():
    chosen = validation_ids(IDS, 30, seed=0)
    rejected = next(iter(chosen))
    topped_up = validation_ids([i for i in IDS if i != rejected], 30, seed=0)
    assert len(topped_up) == 30 and len(topped_up - chosen) == 1 and chosen - topped_up == {rejected}


def test_the_count_is_the_share_of_the_sample_at_least_the_bounds_minimum_and_leaves_images_to_train_on():
    assert validation_count(_config(initial_sample_size=300, validation_share=0.4)) == 120
    assert validation_count(_config(initial_sample_size=80, validation_share=0.3)) == 30  # min_validation_images
    assert validation_count(_config(initial_sample_size=40, validation_share=0.3)) == 20  # at most half
    small = _config(initial_sample_size=40, validation_share=0.8)
    assert validation_count(small) == math.ceil(0.8 * 40)


def test_only_human_labels_of_validation_images_validate_and_auto_labels_are_never_trained_on():
    chosen = validation_ids(IDS, 30, seed=0)
    image_id = next(iter(chosen))
    assert channel_of(_metadata(image_id), chosen) == "validation"
    assert channel_of(_metadata("other"), chosen) == "train"
    assert channel_of(_metadata(image_id, source="audit"), chosen) == "train"
    assert channel_of(_metadata(image_id, source="auto"), chosen) is None


def test_the_benchmarks_hash_split_keeps_every_validation_image_under_a_larger_share():
    small = {image_id for image_id in IDS if is_validation(image_id, 5, 0.2)}
    large = {image_id for image_id in IDS if is_validation(image_id, 5, 0.5)}
    assert small < large


def test_an_empty_channel_is_named():
    check_channel("train", 3, 30, "run r, iteration 1")
    with pytest.raises(ValueError, match=r"run r, iteration 1: no human labels for the validation channel .*30 valid"):
        check_channel("validation", 0, 30, "run r, iteration 1")
