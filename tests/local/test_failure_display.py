"""A failed local run shows RecordFailure's cause and the state that failed, not moto's final ``States.Runtime``."""

from __future__ import annotations

import json
import time
from pathlib import Path

import boto3

from boxloop.layout import RunLayout
from boxloop.local.watcher import failed_run_message
from boxloop.run_failure import failure_record
from infra.state_names import RECORD_FAILURE, RUN_FAILED, TRAIN_DETECTOR
from tests.local.sagemaker_requests import BUCKET, training_request

RUN_ID = "run-20260101T000000Z-abcdef"


def _failing_loop(role_arn: str) -> dict:
    """TrainDetector's job fails; the Catch goes to RecordFailure, then to RunFailed, whose error paths are what
    the synthesized state machine's Fail state uses."""
    training = {k: v for k, v in training_request("unused", role_arn, fail="yes").items() if k != "TrainingJobName"}
    return {
        "StartAt": TRAIN_DETECTOR,
        "States": {
            TRAIN_DETECTOR: {
                "Type": "Task",
                "Resource": "arn:aws:states:::sagemaker:createTrainingJob.sync",
                "Parameters": {**training, "TrainingJobName.$": "States.Format('{}-train', $$.Execution.Name)"},
                "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.failure", "Next": RECORD_FAILURE}],
                "End": True,
            },
            RECORD_FAILURE: {"Type": "Pass", "Next": RUN_FAILED},
            RUN_FAILED: {"Type": "Fail", "ErrorPath": "$.failure.Error", "CausePath": "$.failure.Cause"},
        },
    }


def _run_to_the_end(sfn, role_arn: str, name: str) -> dict:
    machine = sfn.create_state_machine(name=name, definition=json.dumps(_failing_loop(role_arn)), roleArn=role_arn)
    arn = sfn.start_execution(stateMachineArn=machine["stateMachineArn"], name=name, input="{}")["executionArn"]
    deadline = time.monotonic() + 60
    while (description := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
        assert time.monotonic() < deadline, f"execution {name} still running after 60 s"
        time.sleep(0.1)
    return description


def _record_failure_as_the_lambda_does(sfn, s3, execution_arn: str, name: str) -> None:
    """What RecordFailure writes, from the error its Catch handed over."""
    events = sfn.get_execution_history(executionArn=execution_arn)["events"]
    (entered,) = [e for e in events if e.get("stateEnteredEventDetails", {}).get("name") == RECORD_FAILURE]
    failure = json.loads(entered["stateEnteredEventDetails"]["input"])["failure"]
    record = failure_record(
        run_id=RUN_ID,
        execution_name=name,
        iteration=1,
        error=failure["Error"],
        cause=failure["Cause"],
        latest=None,
        recorded_at="2026-01-01T00:00:00+00:00",
    )
    key = RunLayout(bucket=BUCKET, run_id=RUN_ID).failure(name, "i0001")
    s3.put_object(Bucket=BUCKET, Key=key, Body=record.model_dump_json().encode())


def test_a_failed_training_job_is_shown_with_its_cause_and_state(jobs: Path, role_arn: str, tmp_path: Path) -> None:
    sfn, s3 = boto3.client("stepfunctions"), boto3.client("s3")
    name = f"{RUN_ID}-i0000"
    description = _run_to_the_end(sfn, role_arn, name)
    assert description["status"] == "FAILED"
    assert description["error"] == "States.Runtime"  # moto's Fail state: what the terminal showed before
    _record_failure_as_the_lambda_does(sfn, s3, description["executionArn"], name)

    message = failed_run_message(s3, sfn, BUCKET, RUN_ID, tmp_path, description)

    assert f"failed in state {TRAIN_DETECTOR} (iteration 1): States.TaskFailed" in message
    assert "the training channel holds no usable images" in message  # the job's FailureReason
    assert "States.Runtime" not in message
    copied = tmp_path / "failures" / f"{name}-i0001.json"
    assert f"the failure record is {copied}" in message
    document = json.loads(copied.read_text())
    assert document["failed_state"] == TRAIN_DETECTOR and document["error"] == "States.TaskFailed"


def test_without_a_failure_record_the_execution_error_is_shown(jobs: Path, role_arn: str, tmp_path: Path) -> None:
    sfn, s3 = boto3.client("stepfunctions"), boto3.client("s3")
    description = _run_to_the_end(sfn, role_arn, f"{RUN_ID}-i0001")

    message = failed_run_message(s3, sfn, BUCKET, RUN_ID, tmp_path, description)

    assert message.startswith(f"execution {RUN_ID}-i0001 ended FAILED in state {TRAIN_DETECTOR}")
    assert "RecordFailure wrote no failure record" in message
    assert not (tmp_path / "failures").exists()
