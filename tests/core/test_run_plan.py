"""The plan of a run without a configuration: one rule from images, budget and seconds per image."""

import math

import pytest

from boxloop.config import LabelingConfig
from boxloop.people_waves import unaided_task_seconds
from boxloop.run_plan import (
    MIN_OBJECTS_TO_LEARN,
    VALIDATION_RESOLUTION,
    derived_fields,
    describe_plan,
    too_small_reason,
    validation_needed,
)
from boxloop.validation_split import validation_count


def _config(**overrides) -> LabelingConfig:
    return LabelingConfig.model_validate({"classes": ["a"], "human_budget_hours": 3.5, **overrides})


def test_a_dense_corpus_gets_a_sample_that_fits_half_the_budget_not_the_demos_300_images():
    config = _config(expected_objects_per_image=13)  # 84 s an image
    fields = derived_fields(364, config)
    planned = config.model_copy(update=fields)
    sample_seconds = fields["initial_sample_size"] * unaided_task_seconds(config, [])
    assert fields["auto_label"] and sample_seconds <= 0.5 * config.human_budget_seconds
    assert validation_count(planned) >= validation_needed(config)  # the bound's minimum survives QC rejections
    assert validation_count(planned) == fields["initial_sample_size"] // 2  # the budget caps the sample: half validates


def test_a_large_corpus_takes_a_tenth_to_train_on_plus_a_validation_set_that_resolves_a_share_of_the_pool():
    config = _config(human_budget_hours=20.0, max_iterations=4)  # binds: pays for 2,400 of 10,000 images
    fields = derived_fields(10_000, config)
    validation = VALIDATION_RESOLUTION * validation_needed(config)
    assert fields["initial_sample_size"] == 1000 + validation - validation_needed(config)
    assert validation_count(config.model_copy(update=fields)) == validation == 102
    per_image = unaided_task_seconds(config, [])
    left = config.human_budget_seconds - fields["initial_sample_size"] * per_image
    assert fields["human_batch_size"] == math.floor(left / 4 / (per_image / 2)) < 9000 / 4


def test_a_sample_the_budget_caps_still_validates_on_the_resolving_set():
    config = _config(human_budget_hours=100.0)  # 500,000 images: half the budget pays for 6,000
    fields = derived_fields(500_000, config)
    planned = config.model_copy(update=fields)
    assert fields["initial_sample_size"] * unaided_task_seconds(config, []) <= 0.5 * config.human_budget_seconds
    assert validation_count(planned) == VALIDATION_RESOLUTION * validation_needed(config)


def test_too_small_to_learn_is_said_and_people_label_everything_instead():
    tiny = _config(human_budget_hours=0.2)
    assert "initial sample of 68 images is needed" in too_small_reason(500, tiny)
    fields = derived_fields(500, tiny)
    assert fields == {"initial_sample_size": 500, "auto_label": False}
    plan = describe_plan(500, tiny.model_copy(update=fields))
    assert not plan.learns and any("too small to learn" in line for line in plan.lines())
    assert any("nothing is auto-labelled" in line for line in plan.lines())
    sparse = _config(human_budget_hours=50.0, expected_objects_per_image=1.0)
    assert str(MIN_OBJECTS_TO_LEARN) in too_small_reason(400, sparse)  # half the corpus holds only 200 objects
    assert too_small_reason(1000, sparse) is None


def test_when_the_budget_does_not_bind_each_iteration_gets_an_equal_share_of_the_images_left():
    config = _config(human_budget_hours=100.0, max_iterations=2)  # pays for every image twice over
    fields = derived_fields(300, config)
    left = 300 - fields["initial_sample_size"]
    assert fields["human_batch_size"] == math.ceil(left / 2) < left  # not "all that is left" to the first detector
    assert derived_fields(300, config.model_copy(update={"max_iterations": 1000}))["human_batch_size"] == 1


def test_a_batch_never_exceeds_the_initial_sample_so_each_detector_is_retrained_before_people_take_the_pool():
    config = _config(human_budget_hours=100.0, max_iterations=3)  # pays for the pool; a third of it is 578
    fields = derived_fields(2000, config)
    assert fields["initial_sample_size"] == 268
    assert fields["human_batch_size"] == 268 < math.ceil((2000 - 268) / 3)


def test_the_plan_says_images_hours_of_the_sample_and_what_is_left():
    config = _config(initial_sample_size=100)
    plan = describe_plan(400, config)
    per_image = unaided_task_seconds(config, [])
    assert plan.initial_sample_hours == pytest.approx(100 * per_image / 3600)
    assert plan.hours_left_after_sample == pytest.approx(3.5 - 100 * per_image / 3600)
    first, second = plan.lines()
    assert first.startswith("plan: 400 images, budget 3.50 h") and "initial sample 100 images" in second


def test_no_images_is_a_clear_error():
    with pytest.raises(ValueError, match="no images"):
        derived_fields(0, _config())
