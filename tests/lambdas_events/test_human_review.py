"""Human review on moto: the consumer starts A2I loops (stubbed against botocore's model), the
answer Lambda QCs A2I outputs, charges the budget once and resumes the run when the batch is done."""

from __future__ import annotations

import json
from urllib.parse import unquote_plus

import pytest
from botocore.stub import Stubber

from boxloop.human_loop import (
    HUMAN_LOOP_NAME_PATTERN,
    CrowdBox,
    HumanLoopInput,
    HumanLoopOutputError,
    human_loop_input,
    human_loop_name,
    parse_human_loop_output,
)
from boxloop.models import Box, HumanTask, ScoredBox
from lambdas.adapters.clients import aws_client
from lambdas.adapters.runs import claim_active_run, record_human_batch
from lambdas.human_review import answer, consumer
from lambdas.human_review.outputs import handle_output
from tests.lambdas_events.conftest import BUCKET, REGION

RUN = "run-20250102T030405Z-abc123"
ITERATION = 1
TASKS_KEY = f"runs/{RUN}/iterations/0001/human/tasks.jsonl"
HUMAN = f"runs/{RUN}/iterations/0001/human/"
FLOW = f"arn:aws:sagemaker:{REGION}:123456789012:flow-definition/boxloop-review"
UNCERTAIN = HumanTask(
    image_id="a" * 64,
    source_ref=f"s3://{BUCKET}/incoming/shelf.jpg",
    width=800,
    height=600,
    purpose="uncertain",
    prefill=[ScoredBox(class_id=1, left=10.0, top=20.0, width=100.0, height=200.0, score=0.42)],
)
GOLD = HumanTask(
    image_id="b" * 64,
    source_ref=f"s3://{BUCKET}/incoming/gold.jpg",
    width=640,
    height=480,
    purpose="gold",
    gold_boxes=[Box(class_id=0, left=100, top=100, width=50, height=120)],
)


def _put_tasks(aws, tasks: list[HumanTask]) -> None:
    body = "".join(task.model_dump_json() + "\n" for task in tasks)
    aws.s3.put_object(Bucket=BUCKET, Key=TASKS_KEY, Body=body.encode())


def _review_request(token: str = "token-1") -> dict:
    body = {"run_id": RUN, "iteration": ITERATION, "bucket": BUCKET, "tasks_key": TASKS_KEY, "task_token": token}
    return {
        "Records": [
            {
                "messageId": "m-1",
                "receiptHandle": "r-1",
                "body": json.dumps(body),
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": "1735787045000",
                    "SenderId": "AIDAEXAMPLE",
                    "ApproximateFirstReceiveTimestamp": "1735787045001",
                },
                "messageAttributes": {},
                "md5OfBody": "0" * 32,
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:{REGION}:123456789012:human-review",
                "awsRegion": REGION,
            }
        ]
    }


def test_consumer_starts_one_named_loop_per_task_and_records_the_batch(aws, lambda_context):
    aws.put_run_config(RUN, workforce={"kind": "a2i"})
    _put_tasks(aws, [UNCERTAIN, GOLD])
    expected_uncertain = HumanLoopInput(
        taskObject=UNCERTAIN.source_ref,
        initialValue=[CrowdBox(label="can", left=10.0, top=20.0, width=100.0, height=200.0)],
        labels=["bottle", "can"],
        run_id=RUN,
        iteration=ITERATION,
        image_id=UNCERTAIN.image_id,
        purpose="uncertain",
        width=800,
        height=600,
        tasks_key=TASKS_KEY,
    )
    expected_gold = expected_uncertain.model_copy(
        update={
            "taskObject": GOLD.source_ref,
            "initialValue": [],
            "image_id": GOLD.image_id,
            "purpose": "gold",
            "width": 640,
            "height": 480,
        }
    )
    with Stubber(aws_client("sagemaker-a2i-runtime")) as stub:
        for content, image_id in [(expected_uncertain, UNCERTAIN.image_id), (expected_gold, GOLD.image_id)]:
            stub.add_response(
                "start_human_loop",
                {"HumanLoopArn": f"arn:aws:sagemaker:{REGION}:123456789012:human-loop/x"},
                {
                    "HumanLoopName": human_loop_name(RUN, ITERATION, image_id),
                    "FlowDefinitionArn": FLOW,
                    "HumanLoopInput": {"InputContent": content.model_dump_json()},
                },
            )
        for _ in range(2):  # the same message delivered again: both loops exist already
            stub.add_client_error("start_human_loop", service_error_code="ConflictException", http_status_code=409)
        assert consumer.handler(_review_request(), lambda_context) == {"batchItemFailures": []}
        assert consumer.handler(_review_request(), lambda_context) == {"batchItemFailures": []}
        stub.assert_no_pending_responses()
    assert "goldBoxes" not in expected_gold.model_dump_json() and "gold_boxes" not in expected_gold.model_dump_json()
    batch = aws.runs_item(f"RUN#{RUN}", "BATCH#0001")
    assert batch["task_token"]["S"] == "token-1" and batch["expected"]["N"] == "2"


def test_loop_names_are_valid_deterministic_and_distinct():
    names = {
        human_loop_name(run, iteration, image)
        for run in ("r1", "r2")
        for iteration in (0, 1)
        for image in ("a" * 64, "B" * 64)
    }
    assert len(names) == 8
    assert all(len(name) <= 63 and HUMAN_LOOP_NAME_PATTERN.fullmatch(name) for name in names)
    assert human_loop_name("r1", 0, "a" * 64) == human_loop_name("r1", 0, "a" * 64)


def test_empty_batch_resumes_the_run_at_once(aws, lambda_context):
    aws.put_run_config(RUN)
    _put_tasks(aws, [])
    with Stubber(aws_client("stepfunctions")) as stub:
        stub.add_response(
            "send_task_success", {}, {"taskToken": "token-0", "output": json.dumps({"answered": 0, "rejected": 0})}
        )
        assert consumer.handler(_review_request("token-0"), lambda_context) == {"batchItemFailures": []}
        stub.assert_no_pending_responses()


def _crowd_answer(worker: str, boxes: list[dict], width: int, height: int, seconds: float | None) -> dict:
    answer = {
        "acceptanceTime": "2025-01-02T03:10:00.000Z",
        "answerContent": {
            "annotatedResult": {
                "boundingBoxes": boxes,
                "inputImageProperties": {"height": height, "width": width},
            }
        },
        "submissionTime": "2025-01-02T03:10:41.321Z",
        "workerId": worker,
        "workerMetadata": {
            "identityData": {
                "identityProviderType": "Cognito",
                "issuer": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_example",
                "sub": f"sub-{worker}",
            }
        },
    }
    if seconds is not None:
        answer["timeSpentInSeconds"] = seconds
    return answer


def _put_output(aws, task: HumanTask, answers: list[dict]) -> str:
    """Write A2I's output.json for ``task`` where A2I would, and return its key."""
    name = human_loop_name(RUN, ITERATION, task.image_id)
    output = {
        "flowDefinitionArn": FLOW,
        "humanAnswers": answers,
        "humanLoopName": name,
        "inputContent": json.loads(
            human_loop_input(task, ["bottle", "can"], RUN, ITERATION, TASKS_KEY).model_dump_json()
        ),
    }
    key = f"a2i-output/boxloop-review/2025/01/02/03/04/05/{name}/output.json"
    aws.s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(output).encode())
    return key


@pytest.fixture
def batch_of_two(aws):
    aws.put_run_config(RUN)
    _put_tasks(aws, [UNCERTAIN, GOLD])
    claim_active_run(RUN)  # A2I's keys name no run: its answers belong to the run waiting for people
    record_human_batch(RUN, ITERATION, "token-1", expected=2)
    return aws


def _human_seconds(aws) -> float:
    return float(aws.runs_item(f"RUN#{RUN}", "STATE")["human_seconds_used"]["N"])


def _batch_counts(aws) -> tuple[int, int]:
    item = aws.runs_item(f"RUN#{RUN}", "BATCH#0001")
    return int(item.get("done", {"N": "0"})["N"]), int(item.get("rejected", {"N": "0"})["N"])


def test_one_worker_answer_is_labelled_and_charged_once(batch_of_two, lambda_context):
    aws = batch_of_two
    box = {"height": 198, "label": "can", "left": 12, "top": 21, "width": 97}
    key = _put_output(aws, UNCERTAIN, [_crowd_answer("w1", [box], 800, 600, 40.5)])
    (event,) = [event for event in aws.s3_events() if event["Records"][0]["s3"]["object"]["key"].startswith("a2i-")]
    result = answer.handler(event, lambda_context)
    assert result["handled"][0]["outcome"] == "accepted"
    answer.handler(event, lambda_context)  # redelivered event
    assert handle_output(BUCKET, key).counted is False  # even past the idempotency record
    label = aws.read_json(f"{HUMAN}labels/{UNCERTAIN.image_id}.json")
    assert label["boxes"] == [{"class_id": 1, "left": 12.0, "top": 21.0, "width": 97.0, "height": 198.0}]
    assert label["worker_ids"] == ["w1"] and label["time_spent_seconds"] == 40.5
    assert label["source_ref"] == UNCERTAIN.source_ref and label["job_name"] == key.split("/")[-2]
    assert _human_seconds(aws) == 40.5
    assert _batch_counts(aws) == (1, 0)


def test_two_workers_are_consolidated(batch_of_two):
    aws = batch_of_two
    answers = [
        _crowd_answer("w1", [{"label": "bottle", "left": 100, "top": 100, "width": 50, "height": 100}], 800, 600, 30.0),
        _crowd_answer("w2", [{"label": "bottle", "left": 110, "top": 104, "width": 50, "height": 100}], 800, 600, None),
    ]
    handle_output(BUCKET, _put_output(aws, UNCERTAIN, answers))
    label = aws.read_json(f"{HUMAN}labels/{UNCERTAIN.image_id}.json")
    assert label["boxes"] == [{"class_id": 0, "left": 105.0, "top": 102.0, "width": 50.0, "height": 100.0}]
    assert label["worker_ids"] == ["w1", "w2"]
    assert _human_seconds(aws) == pytest.approx(30.0 + 41.321)  # w2 has no timeSpentInSeconds: accept→submit


def test_qc_failure_is_rejected_with_reasons_and_counted(batch_of_two):
    aws = batch_of_two
    other = UNCERTAIN.model_copy(update={"image_id": "c" * 64})
    _put_tasks(aws, [UNCERTAIN, GOLD, other])
    record_human_batch(RUN, ITERATION, "token-1", expected=3)
    outside = {"label": "can", "left": 700, "top": 500, "width": 300, "height": 50}
    unknown = {"label": "jar", "left": 10, "top": 10, "width": 30, "height": 30}
    handle_output(BUCKET, _put_output(aws, UNCERTAIN, [_crowd_answer("w1", [outside], 800, 600, 12.0)]))
    rejected = aws.read_json(f"{HUMAN}rejected/{UNCERTAIN.image_id}.json")
    assert "outside the 800x600 image" in rejected["reasons"][0]
    assert aws.keys(f"{HUMAN}labels/") == []
    assert _batch_counts(aws) == (1, 1)
    handle_output(BUCKET, _put_output(aws, other, [_crowd_answer("w1", [unknown], 800, 600, 5.0)]))
    assert "unknown label 'jar'" in aws.read_json(f"{HUMAN}rejected/{'c' * 64}.json")["reasons"][0]


def test_gold_task_scores_the_worker_and_completing_the_batch_resumes_the_run(batch_of_two):
    aws = batch_of_two
    handle_output(
        BUCKET,
        _put_output(
            aws,
            UNCERTAIN,
            [_crowd_answer("w1", [{"label": "can", "left": 5, "top": 5, "width": 50, "height": 50}], 800, 600, 20.0)],
        ),
    )
    near_gold = {"label": "bottle", "left": 100, "top": 100, "width": 50, "height": 120}
    with Stubber(aws_client("stepfunctions")) as stub:
        stub.add_response(
            "send_task_success",
            {},
            {"taskToken": "token-1", "output": json.dumps({"answered": 2, "rejected": 0, "human_seconds_used": 45.0})},
        )
        result = handle_output(BUCKET, _put_output(aws, GOLD, [_crowd_answer("w9", [near_gold], 640, 480, 25.0)]))
        stub.assert_no_pending_responses()
    assert result.outcome == "gold" and result.batch_completed
    gold = aws.read_json(f"{HUMAN}gold/{GOLD.image_id}.json")
    assert gold["scores"]["w9"]["mean_miou"] == 1.0 and gold["workers_below_minimum"] == []
    assert aws.keys(f"{HUMAN}labels/") == [f"{HUMAN}labels/{UNCERTAIN.image_id}.json"]
    assert "success_sent_at" in aws.runs_item(f"RUN#{RUN}", "BATCH#0001")


def test_unreadable_output_names_the_field():
    with pytest.raises(HumanLoopOutputError, match="humanAnswers"):
        parse_human_loop_output(json.dumps({"humanLoopName": "x", "humanAnswers": [], "inputContent": {}}))
    with pytest.raises(HumanLoopOutputError, match="not valid JSON"):
        parse_human_loop_output(b"{")


OTHER_RUN = "run-20250102T030405Z-def456"


def _forged_output(run_id: str, iteration: int, task: HumanTask, loop_name: str) -> dict:
    content = json.loads(human_loop_input(task, ["bottle", "can"], run_id, iteration, TASKS_KEY).model_dump_json())
    box = {"label": "can", "left": 10, "top": 20, "width": 100, "height": 200}
    return {
        "humanAnswers": [_crowd_answer("mallory", [box], 800, 600, 3600.0)],
        "humanLoopName": loop_name,
        "inputContent": content,
    }


def test_forged_answers_write_nothing_in_any_run_and_charge_nothing(batch_of_two, lambda_context):
    aws = batch_of_two
    aws.put_run_config(OTHER_RUN)
    record_human_batch(OTHER_RUN, ITERATION, "token-other", expected=1)
    genuine_name = human_loop_name(RUN, ITERATION, UNCERTAIN.image_id)
    other_name = human_loop_name(OTHER_RUN, ITERATION, UNCERTAIN.image_id)
    forged = {
        # a genuine task's key, a body naming another run through "../"
        f"a2i-output/boxloop-review/2025/01/02/03/04/05/{genuine_name}/output.json": _forged_output(
            f"../{OTHER_RUN}", ITERATION, UNCERTAIN, genuine_name
        ),
        # another run's task (not the run waiting for people), consistent body
        f"a2i-output/boxloop-review/2025/01/02/03/04/05/{other_name}/output.json": _forged_output(
            OTHER_RUN, ITERATION, UNCERTAIN, other_name
        ),
        # "../" in a labelling API key
        f"answers/../runs/{OTHER_RUN}/0001/{other_name}/output.json": _forged_output(
            OTHER_RUN, ITERATION, UNCERTAIN, other_name
        ),
        # another run's key whose tasks.jsonl does not hold the task
        f"answers/{OTHER_RUN}/0001/{other_name}/output.json": _forged_output(
            OTHER_RUN, ITERATION, UNCERTAIN, other_name
        ),
        # a task the batch does not hold
        f"answers/{RUN}/0001/{human_loop_name(RUN, ITERATION, 'd' * 64)}/output.json": _forged_output(
            RUN,
            ITERATION,
            UNCERTAIN.model_copy(update={"image_id": "d" * 64}),
            human_loop_name(RUN, ITERATION, "d" * 64),
        ),
    }
    runs_before = aws.keys("runs/")
    for key, body in forged.items():
        aws.s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(body).encode())
    a2i_events = [
        event for event in aws.s3_events() if unquote_plus(event["Records"][0]["s3"]["object"]["key"]) in forged
    ]
    assert len(a2i_events) == 2
    for event in a2i_events:  # through the Lambda: outcome "untrusted", metric HumanAnswersUntrusted
        (handled,) = answer.handler(event, lambda_context)["handled"]
        assert handled["outcome"] == "untrusted" and handled["counted"] is False
    for key in forged:  # the labelling API's keys (and the A2I ones again: recorded once)
        result = handle_output(BUCKET, key)
        assert result.outcome == "untrusted" and result.stored_at.startswith("rejected-answers/")
    assert aws.keys("runs/") == runs_before
    assert len(aws.keys("rejected-answers/")) == len(forged)
    for run_id in (RUN, OTHER_RUN):
        assert "human_seconds_used" not in (aws.runs_item(f"RUN#{run_id}", "STATE") or {})
        assert "done" not in aws.runs_item(f"RUN#{run_id}", "BATCH#0001")
    record = aws.read_json(aws.keys("rejected-answers/")[0])
    assert record["answer_key"] in forged and record["reasons"]
