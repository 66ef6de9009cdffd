"""The budget as a hard limit: wave sizes, the measured quantile, and a property test over dense and sparse corpora."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from boxloop.config import LabelingConfig
from boxloop.human_budget import (
    CALIBRATION_WAVE_TASKS,
    FIRST_WAVE_BUDGET_SHARE,
    MIN_MEASURED_ANSWERS,
    measured_seconds_quantile,
    overshoot_seconds,
    task_seconds_estimator,
    wave_budget,
    wave_size,
)
from boxloop.initial_sample import random_sample
from boxloop.labeling_time import expected_label_seconds
from boxloop.models import HumanTaskPurpose
from boxloop.people_waves import plan_people_wave, unaided_task_seconds
from tests.core.label_records import image_records


def _config(**overrides) -> LabelingConfig:
    return LabelingConfig.model_validate({"classes": ["a"], "human_budget_hours": 1.0, **overrides})


def test_the_measured_quantile_is_high_not_the_mean():
    assert measured_seconds_quantile([]) is None
    seconds = [10.0] * 8 + [100.0] * 2
    assert measured_seconds_quantile(seconds) == pytest.approx(100.0) and np.mean(seconds) == pytest.approx(28.0)


def test_before_enough_answers_a_wave_holds_only_a_share_of_what_is_left():
    assert wave_budget(1000.0, 0) == FIRST_WAVE_BUDGET_SHARE * 1000.0
    assert wave_budget(1000.0, MIN_MEASURED_ANSWERS) == 1000.0
    assert wave_budget(-5.0, 10) == 0.0


def test_a_task_costs_the_time_model_never_less_than_the_measured_quantile():
    assert task_seconds_estimator(None, prefilled=False)(4) == expected_label_seconds(
        4, prefilled=False, cluttered=True
    )
    assert task_seconds_estimator(80.0, prefilled=True)(1) == 80.0


def test_wave_size_stops_at_the_budget():
    assert wave_size(30.0, 100.0, 10, 5) == 3 and wave_size(30.0, 100.0, 2, 5) == 2 and wave_size(30.0, 10.0, 5, 5) == 0
    assert (
        wave_size(1.0, 1000.0, 50, 0) == CALIBRATION_WAVE_TASKS
        and wave_size(1.0, 1000.0, 50, MIN_MEASURED_ANSWERS) == 50
    )
    with pytest.raises(ValueError, match="positive"):
        wave_size(0.0, 10.0, 1, 0)
    assert overshoot_seconds(110.0, 100.0) == 10.0 and overshoot_seconds(90.0, 100.0) == 0.0


def test_the_initial_sample_goes_first_then_what_is_left_in_keyed_order_never_an_image_twice():
    records = image_records(40)
    config = _config(initial_sample_size=10, expected_objects_per_image=1)
    sample = random_sample([records], 10, 0)
    tasks, wave = plan_people_wave(
        initial_sample=sample, pool=records, sent_ids=set(), labelled_ids=set(), config=config, iteration=0,
        remaining=3600.0, answer_seconds=[],
    )  # fmt: skip
    assert wave.purpose == HumanTaskPurpose.INITIAL and [t.image_id for t in tasks] == [r.image_id for r in sample]
    assert len(tasks) == CALIBRATION_WAVE_TASKS
    sent = {t.image_id for t in tasks}
    tasks, wave = plan_people_wave(
        initial_sample=sample, pool=records, sent_ids=sent, labelled_ids=sent, config=config, iteration=1,
        remaining=3600.0, answer_seconds=[12.0] * 10,
    )  # fmt: skip
    assert wave.purpose == HumanTaskPurpose.REMAINING and len(tasks) == 30 and not sent & {t.image_id for t in tasks}
    assert wave.seconds_per_task == pytest.approx(12.0) and wave.waiting == 0


def test_when_no_task_fits_the_wave_share_but_one_fits_what_is_left_one_goes():
    records = image_records(10)
    config = _config(initial_sample_size=10, expected_objects_per_image=1)  # 10 s a task
    tasks, _ = plan_people_wave(
        initial_sample=records, pool=records, sent_ids=set(), labelled_ids=set(), config=config, iteration=0,
        remaining=20.0, answer_seconds=[],
    )  # fmt: skip
    assert len(tasks) == 1
    tasks, _ = plan_people_wave(
        initial_sample=records, pool=records, sent_ids=set(), labelled_ids=set(), config=config, iteration=0,
        remaining=9.0, answer_seconds=[],
    )  # fmt: skip
    assert tasks == []


@settings(max_examples=40, deadline=None)
@given(
    objects_per_image=st.sampled_from([1, 13]),  # sparse (one product) and dense (microscopy-like) corpora
    n_images=st.integers(min_value=20, max_value=400),
    budget_hours=st.floats(min_value=0.05, max_value=4.0),
    slowness=st.floats(min_value=1.0, max_value=3.5),  # people slower than the time model, up to 3.5 x
    initial_share=st.floats(min_value=0.1, max_value=1.0),
    seed=st.integers(min_value=0, max_value=1000),
)
def test_people_waves_never_charge_more_than_the_budget_except_for_tasks_in_flight(
    objects_per_image, n_images, budget_hours, slowness, initial_share, seed
):
    rng = np.random.default_rng(seed)
    records = image_records(n_images)
    objects = {r.image_id: max(int(rng.poisson(objects_per_image)), 0) for r in records}
    config = _config(
        human_budget_hours=budget_hours, initial_sample_size=max(10, int(initial_share * n_images)), seed=seed
    )
    sample = random_sample([records], config.initial_sample_size, seed)
    budget, charged, answers, sent = config.human_budget_seconds, 0.0, [], set()
    worst_in_flight_overrun = 0.0
    for iteration in range(10_000):
        tasks, wave = plan_people_wave(
            initial_sample=sample, pool=records, sent_ids=sent, labelled_ids=sent, config=config,
            iteration=iteration, remaining=budget - charged, answer_seconds=answers,
        )  # fmt: skip
        if not tasks:
            break
        assert wave.estimated_seconds <= max(budget - charged, 0.0)  # every wave fits what is left, by its estimate
        actual = [
            slowness * expected_label_seconds(objects[t.image_id], prefilled=False, cluttered=objects[t.image_id] > 1)
            * rng.uniform(0.8, 1.2)
            for t in tasks
        ]  # fmt: skip
        if len(answers) < MIN_MEASURED_ANSWERS:
            assert len(tasks) <= CALIBRATION_WAVE_TASKS  # before people are measured, only a few tasks are at risk
        worst_in_flight_overrun = max(worst_in_flight_overrun, sum(actual) - wave.estimated_seconds)
        charged += sum(actual)
        answers.extend(actual)
        sent |= {t.image_id for t in tasks}
    assert overshoot_seconds(charged, budget) <= max(worst_in_flight_overrun, 0.0)
    assert len(sent) == n_images or budget - charged < unaided_task_seconds(config, answers)
