from datetime import UTC, datetime

import pytest

from boxloop.config import LabelingConfig
from boxloop.iteration_outcome import (
    CHEAPEST_TASK_SECONDS,
    HumanAnswerCounts,
    LoopHistory,
    audit_miou,
    iteration_metrics,
    loop_progress,
)
from boxloop.models import Box
from boxloop.publish import CreatedFrom, VersionIndex
from boxloop.threshold import choose_threshold
from boxloop.threshold_step import ThresholdDocument

CONFIG = LabelingConfig.model_validate({"classes": ["a"], "human_budget_hours": 1, "max_iterations": 3})
BOX = Box(class_id=0, left=0, top=0, width=10, height=10)
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _index(version: int, counts: dict[str, int]) -> VersionIndex:
    return VersionIndex(
        version=version,
        iteration=version - 1,
        previous_version=version - 1 or None,
        attribute="bounding-box",
        n_shards=1,
        counts=counts,
        total=sum(counts.values()),
        shards=[],
        created_from=CreatedFrom(previous_index_sha256=None, new_labels=0, new_labels_sha256=""),
    )


def _metrics(**overrides):
    arguments = {
        "run_id": "r",
        "iteration": 2,
        "config": CONFIG,
        "index": _index(3, {"human": 30, "auto": 50, "audit": 2}),
        "previous": _index(2, {"human": 20, "auto": 10}),
        "threshold": None,
        "previous_metrics": None,
        "pool_images": 100,
        "answers": HumanAnswerCounts(sent=14, accepted=12, rejected=1, gold=0),
        "audited_miou": None,
        "human_seconds_total": 600.0,
        "finished_at": NOW,
    }
    return iteration_metrics(**(arguments | overrides))


def test_counts_are_differences_between_the_version_and_the_previous_one():
    figures = _metrics()
    assert (figures.auto_labelled, figures.human_labelled, figures.audit_labelled) == (40, 10, 2)
    assert figures.unlabelled_remaining == 18 and figures.unanswered == 1 and figures.rejected_by_qc == 1
    assert figures.human_seconds == 600.0 and figures.threshold is None and figures.model_version is None


def test_the_threshold_and_the_seconds_of_this_iteration_come_from_its_documents():
    decision = choose_threshold([0.9] * 40, [1.0] * 40, 0.6, 0.05, min_count=10)
    threshold = ThresholdDocument(
        iteration=2,
        model_version="job",
        decision=decision,
        target=None,
        validation_miou=1.0,
        validation_without_prediction=0,
        validation_failed_predictions=0,
        computed_at="",
    )
    previous = _metrics(iteration=1, human_seconds_total=450.0)
    figures = _metrics(threshold=threshold, previous_metrics=previous)
    assert figures.threshold.threshold == decision.threshold and figures.threshold.statement == decision.statement
    assert figures.model_version == "job" and figures.validation_miou == 1.0
    assert figures.human_seconds == 150.0 and figures.human_seconds_total == 600.0


def test_unanswered_never_goes_below_zero():
    assert HumanAnswerCounts(sent=2, accepted=3, rejected=0, gold=0).unanswered == 0


def test_images_that_cannot_be_labelled_are_counted_and_not_unanswered():
    figures = _metrics(answers=HumanAnswerCounts(sent=14, accepted=10, rejected=1, gold=0, unlabellable=2))
    assert figures.unlabellable == 2 and figures.unanswered == 1


def test_audit_miou_is_the_mean_over_audited_images():
    shifted = Box(class_id=0, left=5, top=0, width=10, height=10)
    assert audit_miou([([BOX], [BOX]), ([shifted], [BOX])]) == pytest.approx((1 + 1 / 3) / 2)
    assert audit_miou([]) is None


def _history(**overrides) -> LoopHistory:
    return LoopHistory(
        **({"trained": True, "trained_iterations": 1, "initial_sample_sent": True, "finishing": False} | overrides)
    )


def test_the_loop_trains_again_until_the_pool_or_the_budget_runs_out_or_a_people_wave_labels_nothing():
    going = loop_progress(CONFIG, _metrics(iteration=1), images_waiting=0, history=_history())
    assert going.model_dump() == {
        "next_iteration": 2,
        "manifest_version": 3,
        "pool_labelled": False,
        "budget_spent": False,
        "iteration_cap_reached": False,
        "no_progress": False,
        "people_only": False,
        "people_done": False,
    }
    assert loop_progress(CONFIG, _metrics(pool_images=82), 0, _history()).pool_labelled
    assert not loop_progress(CONFIG, _metrics(pool_images=82), 5, _history()).pool_labelled
    spent = 3600.0 - CHEAPEST_TASK_SECONDS + 0.1
    assert loop_progress(CONFIG, _metrics(human_seconds_total=spent), 0, _history()).budget_spent
    same = _index(3, {"human": 20, "auto": 10})
    assert loop_progress(CONFIG, _metrics(index=same), 0, _history(trained=False)).people_done


def test_people_label_alone_until_the_initial_sample_is_sent_and_again_once_learning_stopped():
    assert loop_progress(CONFIG, _metrics(), 0, _history(trained=False, initial_sample_sent=False)).people_only
    capped = loop_progress(CONFIG, _metrics(), 0, _history(trained_iterations=CONFIG.max_iterations))
    assert capped.iteration_cap_reached and capped.people_only and not capped.people_done
    same = _index(3, {"human": 20, "auto": 10})
    stalled = loop_progress(CONFIG, _metrics(index=same), 0, _history())
    assert stalled.no_progress and stalled.people_only and not stalled.people_done
    finishing = loop_progress(CONFIG, _metrics(), 0, _history(trained=False, finishing=True))
    assert finishing.people_only and not finishing.people_done
