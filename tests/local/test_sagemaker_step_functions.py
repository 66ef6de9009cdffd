"""Step Functions' ``sagemaker:*.sync`` in moto's interpreter waits for the local jobs; installing is undone cleanly."""

from __future__ import annotations

import json
import time
from pathlib import Path

import boto3
import pytest
from moto.sagemaker.models import SageMakerModelBackend
from moto.stepfunctions.parser.asl.component.state.exec.state_task import state_task_factory

from boxloop.local.sagemaker.local_sagemaker import LocalSageMaker
from tests.local.sagemaker_requests import BUCKET, json_lines, put_model_and_inputs, training_request, transform_request


def _state_machine(role_arn: str, fail: str) -> dict:
    training = {k: v for k, v in training_request("unused", role_arn, fail=fail).items() if k != "TrainingJobName"}
    return {
        "StartAt": "TrainDetector",
        "States": {
            "TrainDetector": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sagemaker:createTrainingJob.sync",
                "Parameters": {**training, "TrainingJobName.$": "States.Format('{}-train', $$.Execution.Name)"},
                "ResultSelector": {"model_data.$": "$.ModelArtifacts.S3ModelArtifacts"},
                "ResultPath": "$.training",
                "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.failure", "Next": "RecordFailure"}],
                "Next": "CreateModel",
            },
            "CreateModel": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sagemaker:createModel",
                "Parameters": {
                    "ModelName.$": "$$.Execution.Name",
                    "ExecutionRoleArn": role_arn,
                    "PrimaryContainer": {"Image": "inference-image", "ModelDataUrl.$": "$.training.model_data"},
                },
                "ResultPath": None,
                "Next": "RunPoolInference",
            },
            "RunPoolInference": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sagemaker:createTransformJob.sync",
                "Parameters": {
                    **{
                        k: v
                        for k, v in transform_request("unused", "unused").items()
                        if k not in ("TransformJobName", "ModelName")
                    },
                    "TransformJobName.$": "States.Format('{}-pool', $$.Execution.Name)",
                    "ModelName.$": "$$.Execution.Name",
                },
                "ResultSelector": {"status.$": "$.TransformJobStatus"},
                "ResultPath": "$.transform",
                "End": True,
            },
            "RecordFailure": {"Type": "Pass", "End": True},
        },
    }


def _execute(role_arn: str, definition: dict, name: str) -> dict:
    sfn = boto3.client("stepfunctions")
    machine = sfn.create_state_machine(name=name, definition=json.dumps(definition), roleArn=role_arn)
    execution = sfn.start_execution(stateMachineArn=machine["stateMachineArn"], name=name, input="{}")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        description = sfn.describe_execution(executionArn=execution["executionArn"])
        if description["status"] != "RUNNING":
            return description
        time.sleep(0.1)
    raise AssertionError(f"execution {name} still running after 60 s")


def test_step_functions_train_model_and_transform_with_sync(jobs: Path, role_arn: str) -> None:
    put_model_and_inputs(role_arn)

    result = _execute(role_arn, _state_machine(role_arn, fail="no"), "loop-ok")

    assert result["status"] == "SUCCEEDED", result
    output = json.loads(result["output"])
    assert output["training"] == {"model_data": f"s3://{BUCKET}/models/loop-ok-train/output/model.tar.gz"}
    assert output["transform"] == {"status": "Completed"}
    assert json_lines("predictions/shard-0.jsonl.out") == [{"id": 1, "score": 2.5}, {"id": 2, "score": 5.0}]


def test_a_failed_training_job_is_caught_by_the_state_machine(jobs: Path, role_arn: str) -> None:
    result = _execute(role_arn, _state_machine(role_arn, fail="yes"), "loop-bad")

    assert result["status"] == "SUCCEEDED", result
    failure = json.loads(result["output"])["failure"]
    assert failure["Error"] == "States.TaskFailed"
    cause = json.loads(failure["Cause"])
    assert cause["TrainingJobStatus"] == "Failed"
    assert "the training channel holds no usable images" in cause["FailureReason"]


def _moto_hooks() -> tuple:
    return (
        SageMakerModelBackend.create_training_job,
        SageMakerModelBackend.create_transform_job,
        state_task_factory.state_task_service_for,
    )


def test_uninstalling_puts_back_what_installing_replaced_and_installs_nest() -> None:
    moto_own = _moto_hooks()
    outer, inner = LocalSageMaker(), LocalSageMaker()

    with outer:
        with pytest.raises(RuntimeError, match="already installed"):
            outer.install()
        outer_hooks = _moto_hooks()
        assert all(mine is not theirs for mine, theirs in zip(outer_hooks, moto_own, strict=True))
        with inner:
            assert inner.installed
        assert _moto_hooks() == outer_hooks and not inner.installed
    assert _moto_hooks() == moto_own and not outer.installed
