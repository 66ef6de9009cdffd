"""The simulated workforce driver: queue message → batch item → A2I-format outputs (or a failed batch)."""

from __future__ import annotations

import json
import re
import time

import boto3
import pytest

from boxloop.config import LabelingConfig
from boxloop.human_loop import parse_human_loop_output
from boxloop.local.human_workforce import NO_TRUTH_ERROR, SimulatedHumanReview
from boxloop.local.resources import HUMAN_REVIEW_CONSUMER_HANDLER, LocalResources
from boxloop.models import Box, HumanTask, ScoredBox
from boxloop.workforce import SimulatedWorkforce

BUCKET, RUNS_TABLE, FLOW = "data", "runs", "boxloop-dev-flow-abc"
IMAGES = {f"{n:064x}": [Box(class_id=n % 2, left=10, top=12, width=30, height=20)] for n in range(1, 4)}


@pytest.fixture
def resources(mocked_aws: None, role_arn: str) -> LocalResources:
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    boto3.client("dynamodb").create_table(
        TableName=RUNS_TABLE,
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        BillingMode="PAY_PER_REQUEST",
    )
    queue_url = boto3.client("sqs").create_queue(QueueName="human-review")["QueueUrl"]
    definition = {
        "StartAt": "LabelByHumans",
        "States": {
            "LabelByHumans": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                "Parameters": {
                    "QueueUrl": queue_url,
                    "MessageBody": {
                        "run_id": "run-1", "iteration": 0, "bucket": BUCKET,
                        "tasks_key": "runs/run-1/iterations/0000/human/tasks.jsonl", "task_token.$": "$$.Task.Token",
                    },
                },
                "End": True,
            }
        },
    }  # fmt: skip
    machine = boto3.client("stepfunctions").create_state_machine(
        name="human", definition=json.dumps(definition), roleArn=role_arn
    )["stateMachineArn"]
    return LocalResources(
        stack_name="boxloop-dev",
        data_bucket=BUCKET,
        state_machine_arn=machine,
        human_review_queue_url=queue_url,
        flow_definition_arn=f"arn:aws:sagemaker:us-east-1:123456789012:flow-definition/{FLOW}",
        images_table="images",
        runs_table=RUNS_TABLE,
        idempotency_table="idempotency",
        function_names={},
        function_environment={HUMAN_REVIEW_CONSUMER_HANDLER: {"RUNS_TABLE": RUNS_TABLE, "DATA_BUCKET": BUCKET}},
        definition=definition,
        skipped_event_source_mappings=(),
    )


def _put_tasks(image_ids: list[str]) -> None:
    lines = [
        HumanTask(
            image_id=image_id, source_ref=f"s3://{BUCKET}/incoming/{image_id[-4:]}.jpg", width=64, height=48,
            purpose="initial", prefill=[ScoredBox(class_id=0, left=9, top=11, width=31, height=21, score=0.4)],
        ).model_dump_json()
        for image_id in image_ids
    ]  # fmt: skip
    boto3.client("s3").put_object(
        Bucket=BUCKET, Key="runs/run-1/iterations/0000/human/tasks.jsonl", Body="\n".join(lines).encode()
    )


def _driver(config: LabelingConfig, resources: LocalResources) -> SimulatedHumanReview:
    workforce = SimulatedWorkforce(IMAGES, n_classes=2, error_rate=0.0, n_workers=3, seed=1)
    return SimulatedHumanReview(resources, config, workforce, IMAGES, answer_threads=2)


def _start_execution(resources: LocalResources) -> str:
    return boto3.client("stepfunctions").start_execution(
        stateMachineArn=resources.state_machine_arn, name="run-1-i0000", input="{}"
    )["executionArn"]


def test_a_batch_is_recorded_and_answered_in_a2i_format(resources: LocalResources) -> None:
    config = LabelingConfig.model_validate(
        {"classes": ["mug", "toy"], "qc": {"workers_per_image": 2}, "workforce": {"kind": "simulated"}}
    )
    _put_tasks(sorted(IMAGES))
    _start_execution(resources)
    driver = _driver(config, resources)

    assert driver.poll_once(wait_seconds=5) == 1

    assert driver.errors == []
    batch_item = boto3.client("dynamodb").get_item(
        TableName=RUNS_TABLE, Key={"pk": {"S": "RUN#run-1"}, "sk": {"S": "BATCH#0000"}}
    )["Item"]
    assert batch_item["expected"] == {"N": "3"} and batch_item["task_token"]["S"]
    keys = [item["Key"] for item in boto3.client("s3").list_objects_v2(Bucket=BUCKET, Prefix="a2i-output/")["Contents"]]
    assert len(keys) == 3
    pattern = rf"^a2i-output/{FLOW}/\d{{4}}/\d{{2}}/\d{{2}}/\d{{2}}/\d{{2}}/\d{{2}}/(i0000-[a-z0-9-]+)/output\.json$"
    outputs = [
        parse_human_loop_output(boto3.client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read()) for key in keys
    ]
    for key, output in zip(keys, outputs, strict=True):
        assert re.match(pattern, key).group(1) == output.humanLoopName
        assert len(output.humanAnswers) == 2
        assert output.inputContent.run_id == "run-1" and output.inputContent.iteration == 0
        assert output.inputContent.purpose == "initial"
        boxes = output.humanAnswers[0].answerContent.annotatedResult.boundingBoxes
        assert [box.label for box in boxes] == [config.classes[IMAGES[output.inputContent.image_id][0].class_id]]
    assert sorted(output.inputContent.image_id for output in outputs) == sorted(IMAGES)
    assert driver.batches[0].human_seconds == pytest.approx(
        sum(answer.timeSpentInSeconds for output in outputs for answer in output.humanAnswers)
    )


def test_a_task_without_known_truth_fails_the_batch(resources: LocalResources) -> None:
    config = LabelingConfig.model_validate({"classes": ["mug", "toy"]})
    _put_tasks([*sorted(IMAGES)[:1], "f" * 64])
    execution = _start_execution(resources)
    driver = _driver(config, resources)

    driver.poll_once(wait_seconds=5)

    assert "no known truth" in driver.errors[0] and "f" * 16 in driver.errors[0]
    sfn = boto3.client("stepfunctions")
    deadline = time.monotonic() + 10
    while (description := sfn.describe_execution(executionArn=execution))["status"] == "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert description["status"] == "FAILED"
    assert description["error"] == NO_TRUTH_ERROR  # moto 5.2.5 drops SendTaskFailure's cause


def test_the_polling_thread_survives_a_failed_receive_and_answers_the_batch(
    resources: LocalResources, monkeypatch: pytest.MonkeyPatch
) -> None:
    from boxloop.local import human_workforce

    real_client, failures = human_workforce._client, ["KeyError"]

    def flaky_client(service: str) -> object:
        if service == "sqs" and failures:  # as when another thread deleted a variable os.environ was iterating
            raise KeyError(failures.pop())
        return real_client(service)

    monkeypatch.setattr(human_workforce, "_client", flaky_client)
    monkeypatch.setattr(human_workforce, "POLL_RETRY_SECONDS", 0.01)
    config = LabelingConfig.model_validate({"classes": ["mug", "toy"], "workforce": {"kind": "simulated"}})
    _put_tasks(sorted(IMAGES))
    _start_execution(resources)

    with _driver(config, resources) as driver:
        deadline = time.monotonic() + 30
        while not driver.batches and time.monotonic() < deadline:
            time.sleep(0.05)

    assert [batch.tasks for batch in driver.batches] == [3]
    assert len(driver.errors) == 1 and "retrying: KeyError" in driver.errors[0]
