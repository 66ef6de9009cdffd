"""A policy run end to end on a tiny corpus with the tiny detector: every image labelled once, costs add up."""

from __future__ import annotations

from pathlib import Path

import pytest

from boxloop.workforce import SimulatedWorkforce
from simulation.bench_run import CLASSES
from simulation.corpus_images import CorpusImage
from simulation.detector_jobs import DetectorJobs, DetectorSettings
from simulation.loop import Humans, RunState, all_manual, run_policy
from simulation.policy import all_manual_policy, boxloop_policy, ground_truth_style_policy, human_parity_policy


def _workforce(images: list[CorpusImage], policy) -> SimulatedWorkforce:
    return SimulatedWorkforce.from_config({i.image_id: list(i.truth) for i in images}, policy.config)


def _small(policy, initial: int, batch: int):
    config = policy.config.model_copy(
        update={
            "initial_sample_size": initial,
            "human_batch_size": batch,
            "quality": policy.config.quality.model_copy(update={"min_validation_images": 5}),
        }
    )
    return policy.model_copy(update={"config": config})


@pytest.fixture
def jobs(tmp_path: Path) -> DetectorJobs:
    """A fresh job cache per test: training is step-bounded, so equal inputs give equal model keys, and a shared
    cache would let one test's predictions stand in for another's in whatever order the tests run."""
    settings = DetectorSettings(CLASSES, model="tiny", image_size=64, epochs=2, threads=1)
    return DetectorJobs(tmp_path / "jobs", settings)


def test_all_manual_labels_every_image_by_people(tiny_corpus: list[CorpusImage]) -> None:
    policy = all_manual_policy(CLASSES)
    result = all_manual(tiny_corpus, _workforce(tiny_corpus, policy), policy)
    assert result.human_images == result.images == len(tiny_corpus)
    assert result.auto_images == 0 and result.auto_miou is None
    assert 60 * 8 / 3600 < result.human_hours < 60 * 40 / 3600  # 10-30 s an image, with QC re-asks
    assert set(result.labels) == {i.image_id for i in tiny_corpus}


def test_boxloop_policy_labels_every_image_exactly_once(tiny_corpus: list[CorpusImage], jobs: DetectorJobs) -> None:
    policy = _small(boxloop_policy(CLASSES, max_iterations=2), initial=24, batch=8)
    result = run_policy(policy, tiny_corpus, jobs, _workforce(tiny_corpus, policy))
    assert set(result.labels) == {i.image_id for i in tiny_corpus}
    assert result.human_images + result.auto_images == len(tiny_corpus)
    assert 1 <= result.trained_iterations <= 2
    assert result.initial_sample_images == 24
    first = result.iterations[0]
    assert first.train_images > 0 and first.inference_images > 0 and not first.model_reused
    assert sum(it.auto_images for it in result.iterations) == result.auto_images
    assert result.human_hours * 3600 >= sum(it.human_seconds for it in result.iterations)
    assert result.stop_reason in {"pool labelled", "iteration cap", "no progress", "budget spent"}


def test_a_policy_with_the_same_first_training_reuses_the_model_and_predictions(
    tiny_corpus: list[CorpusImage], jobs: DetectorJobs
) -> None:
    first = _small(boxloop_policy(CLASSES, max_iterations=1), initial=24, batch=8)
    second = _small(human_parity_policy(CLASSES, max_iterations=1), initial=24, batch=8)
    run_policy(first, tiny_corpus, jobs, _workforce(tiny_corpus, first))
    again = run_policy(second, tiny_corpus, jobs, _workforce(tiny_corpus, second))
    iteration = again.iterations[0]
    assert iteration.model_reused and iteration.train_seconds == 0.0 and iteration.inference_images == 0
    assert iteration.target == pytest.approx(0.95)  # human parity falls back until 10 gold answers exist


def test_ground_truth_style_tasks_are_drawn_from_scratch(tiny_corpus: list[CorpusImage], jobs: DetectorJobs) -> None:
    policy = _small(ground_truth_style_policy(CLASSES, len(tiny_corpus), max_iterations=1), initial=24, batch=8)
    result = run_policy(policy, tiny_corpus, jobs, _workforce(tiny_corpus, policy))
    iteration = result.iterations[0]
    assert iteration.audit_images == 0 and iteration.gold_images == 0
    assert iteration.lower_bound is None
    assert set(result.labels) == {i.image_id for i in tiny_corpus}


def test_training_job_failure_names_the_job(tiny_corpus: list[CorpusImage], tmp_path: Path) -> None:
    broken = DetectorJobs(tmp_path, DetectorSettings(("only-class",), model="tiny", image_size=64, epochs=1))
    with pytest.raises(RuntimeError, match="training job in .* failed"):
        broken.train(tiny_corpus[:4], tiny_corpus[4:6], {i.image_id: list(i.truth) for i in tiny_corpus}, None)


def test_each_ask_of_an_image_goes_to_the_next_worker(tiny_corpus: list[CorpusImage]) -> None:
    policy = boxloop_policy(CLASSES, max_iterations=1)
    workforce = _workforce(tiny_corpus, policy)
    humans = Humans(workforce, policy, RunState())
    image = tiny_corpus[0]
    humans.label(image, prefill=None)
    asked = humans.asks[image.image_id]
    humans.label(image, prefill=None)  # e.g. the image comes back as a gold task
    assert humans.asks[image.image_id] > asked
    assert workforce.worker_for(image.image_id, asked) != workforce.worker_for(image.image_id, 0)
