"""An answer is trusted only as far as its stored task: keys parsed strictly, ids by pattern, body checked."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from boxloop.answer_trust import UntrustedAnswerError, answer_address, answered_task, trusted_output
from boxloop.human_loop import HumanAnswer, HumanLoopOutput, human_loop_input, human_loop_name
from boxloop.layout import a2i_output_key, browser_answer_key, rejected_answer_key
from boxloop.models import HumanTask

RUN = "run-20260101T000000Z-abcdef"
TASK = HumanTask(image_id="a" * 64, source_ref="s3://data/images/a.jpg", width=80, height=60, purpose="uncertain")
TASK_ID = human_loop_name(RUN, 3, TASK.image_id)


def test_both_answer_keys_give_the_task_and_iteration_and_only_the_api_key_a_run():
    a2i = answer_address(a2i_output_key("flow", TASK_ID, datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)))
    assert (a2i.task_id, a2i.iteration, a2i.run_id) == (TASK_ID, 3, None)
    browser = answer_address(browser_answer_key(RUN, 3, TASK_ID))
    assert (browser.task_id, browser.iteration, browser.run_id) == (TASK_ID, 3, RUN)


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        (f"answers/../runs/{RUN}/0003/{TASK_ID}/output.json", "nor a labelling API answer key"),
        (f"answers/../0003/{TASK_ID}/output.json", "not a run id"),
        (f"answers/{RUN}/0004/{TASK_ID}/output.json", "is not the task's"),
        (f"answers/{RUN}/0003/../output.json", "not a task id"),
        (f"answers/{RUN}/x/0003/{TASK_ID}/output.json", "nor a labelling API answer key"),
        (f"a2i-output/flow/{TASK_ID}/output.json", "nor a labelling API answer key"),
        (f"answers/{RUN}/0003/{TASK_ID}/other.json", "not an answer key"),
    ],
)
def test_malformed_keys_are_untrusted(key, reason):
    with pytest.raises(UntrustedAnswerError, match=reason):
        answer_address(key)


def test_the_task_is_found_by_its_id_and_a_bad_run_id_is_refused():
    other = TASK.model_copy(update={"image_id": "b" * 64})
    assert answered_task([other, TASK], RUN, 3, TASK_ID) == TASK
    assert answered_task([TASK], RUN, 2, TASK_ID) is None
    with pytest.raises(UntrustedAnswerError, match="not a run id"):
        answered_task([TASK], "../x", 3, TASK_ID)


def _output(run_id: str, image_id: str, name: str) -> HumanLoopOutput:
    task = TASK.model_copy(update={"image_id": image_id})
    answer = HumanAnswer.model_validate(
        {
            "answerContent": {
                "annotatedResult": {"boundingBoxes": [], "inputImageProperties": {"width": 80, "height": 60}}
            },
            "workerId": "w1",
            "submissionTime": "2026-01-02T00:00:00Z",
        }
    )
    return HumanLoopOutput(
        humanLoopName=name, humanAnswers=[answer], inputContent=human_loop_input(task, ["a"], run_id, 3, "forged")
    )


def test_the_output_takes_its_input_from_the_task_and_a_disagreeing_body_is_untrusted():
    checked = trusted_output(_output(RUN, TASK.image_id, TASK_ID), TASK, ["a"], RUN, 3, "runs/x/tasks.jsonl")
    assert checked.inputContent.tasks_key == "runs/x/tasks.jsonl"
    with pytest.raises(UntrustedAnswerError, match=r"inputContent.run_id is '../other'.*inputContent.image_id"):
        trusted_output(_output("../other", "c" * 64, TASK_ID), TASK, ["a"], RUN, 3, "k")


def test_rejected_answer_records_have_safe_names():
    key = rejected_answer_key("answers/../../etc/output.json")
    assert key.startswith("rejected-answers/") and "/.." not in key and key.endswith(".json")
