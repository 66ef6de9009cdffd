import pytest

from boxloop.config import LabelingConfig
from boxloop.human_tasks import observed_seconds_per_answer, plan_human_tasks, seconds_estimator
from boxloop.labeling_time import expected_label_seconds
from boxloop.models import HumanTaskPurpose, LabelRecord, ScoredBox
from boxloop.selection import Candidate
from tests.core.label_records import human_record

BOX = ScoredBox(class_id=0, left=1, top=1, width=5, height=5, score=0.8)
PREFILLED_SECONDS = expected_label_seconds(1, prefilled=True, cluttered=False)
DRAWN_SECONDS = expected_label_seconds(1, prefilled=False, cluttered=False)


def _config(**overrides) -> LabelingConfig:
    settings = {"classes": ["a"], "human_batch_size": 4, "audit_size": 2, "qc": {"gold_share": 0.2}, "seed": 1}
    return LabelingConfig.model_validate(settings | overrides)


def _candidate(image_id: str, uncertainty: float, source_ref: str | None = "s3://b/x.jpg") -> Candidate:
    return Candidate(
        image_id=image_id,
        source_ref=source_ref,
        width=64,
        height=48,
        uncertainty=uncertainty,
        embedding=[],
        n_boxes=1,
        prefill=[BOX],
    )


UNCERTAIN = [
    [_candidate(f"u{n}", 0.9 - n / 100) for n in range(3)],
    [_candidate(f"u{n}", 0.9 - n / 100) for n in range(3, 6)],
]
AUDIT = [[_candidate("a0", 0.1), _candidate("a1", 0.1)], [_candidate("a2", 0.1)]]


def test_seconds_are_the_expected_labelling_time_or_the_observed_seconds_whichever_is_larger():
    assert seconds_estimator(None, prefilled=True)(1) == PREFILLED_SECONDS
    assert seconds_estimator(40.0, prefilled=True)(1) == 40.0
    assert seconds_estimator(1.0, prefilled=False)(3) == expected_label_seconds(3, prefilled=False, cluttered=True)


def test_observed_seconds_per_answer_is_none_before_any_answer_and_a_margin_over_the_mean_after():
    assert observed_seconds_per_answer(100.0, 0) is None
    assert observed_seconds_per_answer(100.0, 4) == 1.25 * 25.0


def test_with_budget_enough_the_plan_is_audit_then_uncertain_then_gold():
    tasks, record = plan_human_tasks(
        UNCERTAIN, AUDIT, lambda: [human_record(f"g{n}") for n in range(5)], _config(), 1, 1e6, None
    )
    purposes = [task.purpose for task in tasks]
    assert purposes == [HumanTaskPurpose.AUDIT] * 2 + [HumanTaskPurpose.UNCERTAIN] * 4 + [HumanTaskPurpose.GOLD] * 2
    assert record.uncertain_ids == ["u0", "u1", "u2", "u3"] and record.gold_ids == ["g0", "g1"]
    assert record.audit_ids == [task.image_id for task in tasks[:2]]
    assert record.estimated_seconds == pytest.approx(6 * PREFILLED_SECONDS + 2 * DRAWN_SECONDS)
    assert record.stop_reason == "batch_full"
    assert tasks[-1].gold_boxes == human_record("g1").boxes and tasks[0].prefill == [BOX]


def test_the_plan_never_exceeds_the_budget_and_says_it_stopped_for_it():
    remaining = 3 * PREFILLED_SECONDS + 1.0
    tasks, record = plan_human_tasks(UNCERTAIN, AUDIT, lambda: [human_record("g0")], _config(), 1, remaining, None)
    assert record.estimated_seconds <= remaining and len(tasks) < 8
    assert record.stop_reason == "budget"


def test_without_budget_nobody_is_asked_and_gold_is_not_read():
    def no_gold() -> list[LabelRecord]:
        raise AssertionError("gold pool read although no gold is due")

    tasks, record = plan_human_tasks(UNCERTAIN, AUDIT, no_gold, _config(), 1, 0.0, None)
    assert tasks == [] and record.stop_reason == "budget" and record.estimated_seconds == 0.0


def test_a_candidate_without_its_image_location_is_refused():
    with pytest.raises(ValueError, match="prediction for image u0 lacks source_ref"):
        plan_human_tasks([[_candidate("u0", 0.9, source_ref=None)]], [], list, _config(audit_size=0), 1, 1e6, None)
