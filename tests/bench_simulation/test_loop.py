"""A policy run end to end on a tiny corpus with the tiny detector: every image labelled once, costs add up."""

from __future__ import annotations

from pathlib import Path

import pytest

from boxloop.validation_split import validation_count
from boxloop.workforce import SimulatedWorkforce
from simulation import detector_jobs
from simulation.bench_run import CLASSES
from simulation.corpus_images import CorpusImage
from simulation.detector_jobs import DetectorJobs, DetectorSettings
from simulation.loop import Humans, RunState, all_manual, label_initial_sample, run_policy
from simulation.policy import (
    all_manual_policy,
    boxloop_policy,
    ground_truth_style_policy,
    human_parity_policy,
    oracle_policy,
    with_target,
)


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


def test_policies_with_the_same_first_training_reuse_the_model_and_predictions(
    tiny_corpus: list[CorpusImage], jobs: DetectorJobs
) -> None:
    first = _small(boxloop_policy(CLASSES, max_iterations=1), initial=24, batch=8)
    second = _small(human_parity_policy(CLASSES, max_iterations=1), initial=24, batch=8)
    run_policy(first, tiny_corpus, jobs, _workforce(tiny_corpus, first))
    again = run_policy(second, tiny_corpus, jobs, _workforce(tiny_corpus, second))
    iteration = again.iterations[0]
    assert iteration.model_reused and iteration.train_seconds == 0.0 and iteration.inference_images == 0
    assert iteration.target == pytest.approx(0.95)  # human parity falls back until 10 gold answers exist
    oracle = with_target(oracle_policy(first), 0.05)  # the same first (tiny, weak) model, so no training
    known = run_policy(oracle, tiny_corpus, jobs, _workforce(tiny_corpus, oracle)).iterations[0]
    assert known.model_reused and known.lower_bound is None and known.audit_images == 0
    assert known.auto_images > 0 and known.auto_miou >= 0.05  # never below the target on what it auto-labels


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


def test_the_initial_sample_keeps_the_exact_validation_count(tiny_corpus: list[CorpusImage]) -> None:
    policy = _small(boxloop_policy(CLASSES, max_iterations=1), initial=24, batch=8)
    state = RunState()
    first = label_initial_sample(tiny_corpus, policy, Humans(_workforce(tiny_corpus, policy), policy, state))
    assert len(first) == 24
    assert len(state.validation) == validation_count(policy.config)
    assert set(state.validation) | set(state.labels) <= {image.image_id for image in first}


def test_budget_waves_stop_the_initial_sample_when_the_budget_is_spent(
    tiny_corpus: list[CorpusImage], jobs: DetectorJobs
) -> None:
    policy = _small(boxloop_policy(CLASSES, max_iterations=1, human_budget_hours=0.02), initial=40, batch=8)
    state = RunState()
    humans = Humans(_workforce(tiny_corpus, policy), policy, state)
    label_initial_sample(tiny_corpus, policy, humans)
    assert 0 < len(humans.asks) < 40  # 72 s pay for a few images of 10–30 s
    result = run_policy(policy, tiny_corpus, jobs, _workforce(tiny_corpus, policy))
    assert result.stop_reason == "budget spent" and result.trained_iterations == 0
    assert result.human_images == len(tiny_corpus) and result.final_pass_images > len(tiny_corpus) - 40
    assert result.human_hours > result.budget_hours  # the benchmark's final pass goes beyond the budget


def test_a_finished_training_job_on_disk_is_not_trained_again(
    tiny_corpus: list[CorpusImage], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []

    def fake_job(job_dir: Path, *args, **kwargs) -> float:
        calls.append(job_dir)
        (job_dir / "output").mkdir(parents=True)
        (job_dir / "output" / "metrics.json").write_text("{}")
        return 12.5

    monkeypatch.setattr(detector_jobs, "run_training_job", fake_job)
    settings = DetectorSettings(CLASSES, model="tiny", image_size=64, epochs=2, threads=1)
    labels = {image.image_id: list(image.truth) for image in tiny_corpus}
    first = DetectorJobs(tmp_path, settings).train(tiny_corpus[:8], tiny_corpus[8:12], labels, None)
    again = DetectorJobs(tmp_path, settings).train(tiny_corpus[:8], tiny_corpus[8:12], labels, None)
    assert len(calls) == 1 and again.key == first.key and again.seconds == first.seconds == 12.5
