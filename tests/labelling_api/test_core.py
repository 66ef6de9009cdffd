"""The pure rules behind the labelling API: leases, answer checks, the answer document, cannot-label review."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from boxloop.browser_answers import AnswerOutcome, BrowserAnswer, answer_document, answer_problems
from boxloop.config import QcConfig
from boxloop.human_loop import UnlabellableAnswer, human_loop_input, parse_human_loop_output, review_output
from boxloop.models import Box, HumanTask
from boxloop.task_leases import TaskStatus, epoch_seconds, from_epoch_seconds, grant_lease, may_answer, visible_status

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
CLASSES = ["bottle", "can"]
TASK = HumanTask(image_id="c" * 64, source_ref="s3://b/incoming/c.jpg", width=100, height=50, purpose="uncertain")


def _answer(**fields) -> BrowserAnswer:
    body = {
        "outcome": "boxes",
        "boxes": [{"class_id": 0, "left": 10, "top": 5, "width": 20, "height": 20}],
        "active_seconds": 8.0,
        "opened_at": NOW.isoformat(),
        "submitted_at": (NOW + timedelta(seconds=10)).isoformat(),
        **fields,
    }
    return BrowserAnswer.model_validate(body)


def _problems(answer: BrowserAnswer, received_after: float = 60.0) -> list[str]:
    return answer_problems(
        answer, TASK.width, TASK.height, len(CLASSES), QcConfig(), NOW, NOW + timedelta(seconds=received_after)
    )


def test_a_lease_is_live_until_it_expires_and_only_its_holder_holds_it():
    lease = grant_lease("alice", NOW, 60)
    assert lease.held_by("alice", NOW + timedelta(seconds=59)) and not lease.held_by("bob", NOW)
    assert not lease.is_live(NOW + timedelta(seconds=60))
    assert visible_status(False, lease, NOW) == TaskStatus.LEASED
    assert visible_status(False, lease, NOW + timedelta(seconds=61)) == TaskStatus.OPEN
    assert visible_status(True, lease, NOW) == TaskStatus.SUBMITTED
    assert visible_status(False, None, NOW) == TaskStatus.OPEN
    with pytest.raises(ValueError, match="positive"):
        grant_lease("alice", NOW, 0)


def test_only_the_latest_lease_holder_may_answer_an_unanswered_task():
    lease = grant_lease("alice", NOW, 60)
    assert may_answer(False, lease, "alice")
    assert (
        not may_answer(False, lease, "bob")
        and not may_answer(True, lease, "alice")
        and not may_answer(False, None, "alice")
    )


def test_epoch_seconds_round_trip_and_need_a_timezone():
    moment = NOW + timedelta(microseconds=123456)
    assert from_epoch_seconds(epoch_seconds(moment)) == moment
    with pytest.raises(ValueError, match="timezone"):
        epoch_seconds(datetime(2026, 1, 1))


def test_a_good_answer_has_no_problems():
    assert _problems(_answer()) == []
    assert _problems(_answer(outcome="no_objects", boxes=[])) == []
    assert _problems(_answer(outcome="cannot_label", boxes=[], reason="too dark")) == []


def test_boxes_must_lie_inside_within_tolerance_and_name_known_classes():
    within_tolerance = {"class_id": 1, "left": -1.5, "top": 0, "width": 101.5, "height": 50}
    assert _problems(_answer(boxes=[within_tolerance])) == []
    problems = _problems(
        _answer(
            boxes=[
                {"class_id": 0, "left": 90, "top": 5, "width": 20, "height": 10},
                {"class_id": 2, "left": 1, "top": 1, "width": 9, "height": 9},
            ]
        )
    )
    assert problems[0].startswith("box 1") and "outside the 100x50 image" in problems[0]
    assert "box 2 has unknown class id 2" in problems[1]


def test_outcome_rules_and_times_are_checked():
    assert _problems(_answer(boxes=[])) == ["outcome 'boxes' needs at least one box"]
    assert "needs a reason" in _problems(_answer(outcome="cannot_label", boxes=[]))[0]
    assert "only with outcome 'cannot_label'" in _problems(_answer(reason="why"))[0]
    assert "exceeds the 10.0 s between opened_at" in _problems(_answer(active_seconds=20.0))[0]
    assert "since the task was claimed" in _problems(_answer(active_seconds=9.0), received_after=5.0)[0]
    late = _answer(submitted_at=(NOW - timedelta(seconds=1)).isoformat())
    assert "submitted_at is before opened_at" in _problems(late)


@pytest.mark.parametrize(
    "fields",
    [
        {"active_seconds": float("inf")},
        {"boxes": [{"class_id": 0, "left": float("nan"), "top": 1, "width": 1, "height": 1}]},
        {"opened_at": "2026-03-01T09:00:00"},
        {"colour": "red"},
    ],
)
def test_malformed_answers_do_not_parse(fields):
    with pytest.raises(ValueError):
        _answer(**fields)


def test_the_answer_document_is_a2i_output_that_review_reads():
    loop_input = human_loop_input(TASK, CLASSES, "run-1", 2, "runs/run-1/iterations/0002/human/tasks.jsonl")
    received = NOW + timedelta(seconds=60)
    document = answer_document("task-1", loop_input, "alice", _answer(), NOW, received)
    output = parse_human_loop_output(document.model_dump_json())
    (human,) = output.humanAnswers
    assert human.timeSpentInSeconds == 8.0 and human.openToSubmitSeconds == 10.0
    assert human.submissionTime == received and human.acceptanceTime == NOW
    review = review_output(output, len(CLASSES), QcConfig())
    assert review.kind == "accepted"
    assert review.label.boxes == [Box(class_id=0, left=10, top=5, width=20, height=20)]
    assert review.label.job_name == "task-1" and review.label.time_spent_seconds == 8.0


def test_cannot_label_is_reviewed_as_unlabellable_and_gold_scores_it_as_no_boxes():
    answer = _answer(outcome=AnswerOutcome.CANNOT_LABEL.value, boxes=[], reason="  only a white wall ")
    loop_input = human_loop_input(TASK, CLASSES, "run-1", 2, "tasks.jsonl")
    output = parse_human_loop_output(answer_document("task-1", loop_input, "alice", answer, NOW, NOW).model_dump_json())
    review = review_output(output, len(CLASSES), QcConfig())
    assert isinstance(review, UnlabellableAnswer) and review.reasons == ["worker alice: only a white wall"]
    gold_input = loop_input.model_copy(update={"purpose": "gold"})
    gold_output = output.model_copy(update={"inputContent": gold_input})
    gold = review_output(
        gold_output, len(CLASSES), QcConfig(), gold_boxes=[Box(class_id=0, left=1, top=1, width=9, height=9)]
    )
    assert gold.kind == "gold" and gold.scores["alice"].mean_miou == 0.0
