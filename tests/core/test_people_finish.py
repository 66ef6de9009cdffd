"""Finish with people: the report says what people finished after the loop stopped, what remains and why."""

from datetime import UTC, datetime

from boxloop.config import LabelingConfig
from boxloop.models import IterationMetrics
from boxloop.people_waves import PeopleFinish, people_finish
from boxloop.report import build_report

CONFIG = LabelingConfig.model_validate({"classes": ["a"], "human_budget_hours": 1.0, "max_iterations": 2})


def _finish(**overrides) -> PeopleFinish:
    arguments = {
        "finished": 12, "finishing_waves": 2, "trained_iterations": 2, "unlabelled": 3, "budget_left": 5.0,
        "answer_seconds": [20.0] * 10,
    }  # fmt: skip
    return people_finish(CONFIG, **(arguments | overrides))


def _iteration(seconds_total: float) -> IterationMetrics:
    return IterationMetrics(
        run_id="r", iteration=0, manifest_version=1, images_in_pool=15, auto_labelled=0, human_labelled=12,
        audit_labelled=0, rejected_by_qc=0, unanswered=0, unlabelled_remaining=3, human_seconds=seconds_total,
        human_seconds_total=seconds_total, human_budget_seconds=3600.0, finished_at=datetime(2026, 1, 1, tzinfo=UTC),
    )  # fmt: skip


def test_each_reason_to_stop_learning_and_to_leave_images_is_named():
    assert "iteration cap" in _finish().learning_stopped and "budget is spent" in _finish().unlabelled_reason
    assert "no progress" in _finish(trained_iterations=1).learning_stopped
    assert _finish(finishing_waves=0).learning_stopped is None
    assert "without a label" in _finish(budget_left=1000.0).unlabelled_reason
    assert _finish(unlabelled=0).unlabelled_reason is None
    too_small = people_finish(
        CONFIG.model_copy(update={"auto_label": False}), finished=0, finishing_waves=0, trained_iterations=0,
        unlabelled=0, budget_left=0.0, answer_seconds=[],
    )  # fmt: skip
    assert "too small to learn" in too_small.learning_stopped


def test_the_report_counts_the_finished_images_states_why_some_remain_and_any_overshoot():
    report = build_report("r", CONFIG, [_iteration(3650.0)], [], images_total=15, finish=_finish())
    figures = report.to_json()
    assert figures["finish"]["images_finished_by_people"] == 12 and figures["human_overshoot_seconds"] == 50.0
    assert "people then finished 12 images in budget-sized waves" in report.statement
    assert "Images remain unlabelled because the budget is spent" in report.statement
    assert "charged 50 s beyond the budget, for tasks already in flight" in report.statement
    within = build_report("r", CONFIG, [_iteration(3000.0)], [], images_total=15)
    assert within.human_overshoot_seconds == 0.0 and "beyond the budget" not in within.statement
