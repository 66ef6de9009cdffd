"""Local SageMaker: training and transform jobs run for real; ``.sync`` works in Step Functions."""

from __future__ import annotations

import io
import json
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from boxloop.local import sagemaker_runtime
from boxloop.local.sagemaker_runtime import SageMakerJobCode, mini_batches, training_environment
from tests.local import stand_in_inference

BUCKET = "jobs"
HERE = Path(__file__).parent


@pytest.fixture
def jobs(mocked_aws: None, tmp_path: Path) -> Iterator[Path]:
    """Moto's SageMaker running the stand-in script and inference module; yields the log folder."""
    log_dir = tmp_path / "logs"
    sagemaker_runtime.install(
        SageMakerJobCode(
            training_script=HERE / "stand_in_train.py",
            inference_module=stand_in_inference.__name__,
            log_dir=log_dir,
        )
    )
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="data/train/a.txt", Body=b"1\n2\n3\n")
    s3.put_object(Bucket=BUCKET, Key="data/train/sub/b.txt", Body=b"4\n")
    s3.put_object(Bucket=BUCKET, Key="data/validation/v.txt", Body=b"5\n")
    yield log_dir
    sagemaker_runtime.install()


def _training_request(name: str, role_arn: str, **hyperparameters: str) -> dict:
    return {
        "TrainingJobName": name,
        "HyperParameters": {"scale": "2.5", **hyperparameters},
        "AlgorithmSpecification": {
            "TrainingImage": "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.5-cpu-py311",
            "TrainingInputMode": "File",
            "MetricDefinitions": [{"Name": "train_loss", "Regex": r"train_loss=([0-9.]+);"}],
        },
        "RoleArn": role_arn,
        "InputDataConfig": [
            {
                "ChannelName": name_,
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/data/{name_}/"}},
            }
            for name_ in ("train", "validation")
        ],
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/models"},
        "ResourceConfig": {"InstanceType": "ml.g5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 10},
        "StoppingCondition": {"MaxRuntimeInSeconds": 60},
    }


def _wait(describe, status_key: str, **name) -> dict:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        description = describe(**name)
        if description[status_key] not in ("InProgress", "Stopping"):
            return description
        time.sleep(0.05)
    raise AssertionError(f"{name} still in progress after 30 s")


def _model_json(key: str) -> dict:
    body = boto3.client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as archive:
        return json.loads(archive.extractfile("model.json").read())


def test_a_training_job_runs_the_script_with_the_container_contract(jobs: Path, role_arn: str) -> None:
    sagemaker = boto3.client("sagemaker")
    sagemaker.create_training_job(**_training_request("train-ok", role_arn))

    assert sagemaker.describe_training_job(TrainingJobName="train-ok")["TrainingJobStatus"] == "InProgress"
    description = _wait(sagemaker.describe_training_job, "TrainingJobStatus", TrainingJobName="train-ok")

    assert description["TrainingJobStatus"] == "Completed", description.get("FailureReason")
    artifact = description["ModelArtifacts"]["S3ModelArtifacts"]
    assert artifact == f"s3://{BUCKET}/models/train-ok/output/model.tar.gz"
    model = _model_json("models/train-ok/output/model.tar.gz")
    assert model["lines"] == 4
    assert model["scale"] == 2.5
    assert model["hps"] == {"scale": 2.5}
    assert model["files"] == ["a.txt", "sub/b.txt"]
    assert model["channels"] == ["train", "validation"]
    assert [(m["MetricName"], m["Value"]) for m in description["FinalMetricDataList"]] == [("train_loss", 0.2)]
    assert "train_loss=0.2000;" in (jobs / "train-ok.log").read_text()


def test_a_failing_script_fails_the_job_with_its_output_tail(jobs: Path, role_arn: str) -> None:
    sagemaker = boto3.client("sagemaker")
    sagemaker.create_training_job(**_training_request("train-bad", role_arn, fail="yes"))

    description = _wait(sagemaker.describe_training_job, "TrainingJobStatus", TrainingJobName="train-bad")

    assert description["TrainingJobStatus"] == "Failed"
    assert "exited with code 3" in description["FailureReason"]
    assert "the training channel holds no usable images" in description["FailureReason"]
    listed = boto3.client("s3").list_objects_v2(Bucket=BUCKET, Prefix="models/train-bad/")
    assert listed["KeyCount"] == 0


def test_a_job_over_its_max_runtime_is_stopped(jobs: Path, role_arn: str) -> None:
    request = _training_request("train-slow", role_arn, sleep="30")
    request["StoppingCondition"] = {"MaxRuntimeInSeconds": 1}
    sagemaker = boto3.client("sagemaker")
    sagemaker.create_training_job(**request)

    description = _wait(sagemaker.describe_training_job, "TrainingJobStatus", TrainingJobName="train-slow")

    assert description["TrainingJobStatus"] == "Stopped"
    assert description["SecondaryStatus"] == "MaxRuntimeExceeded"


def _put_model_and_inputs(role_arn: str) -> None:
    model = io.BytesIO()
    with tarfile.open(fileobj=model, mode="w:gz") as archive:
        payload = json.dumps({"scale": 10}).encode()
        info = tarfile.TarInfo("model.json")
        info.size = len(payload)
        archive.addfile(info, io.BytesIO(payload))
    s3 = boto3.client("s3")
    s3.put_object(Bucket=BUCKET, Key="given/model.tar.gz", Body=model.getvalue())
    s3.put_object(Bucket=BUCKET, Key="pool/shard-0.jsonl", Body=b'{"id": 1, "value": 1}\n{"id": 2, "value": 2}\n')
    s3.put_object(Bucket=BUCKET, Key="pool/deeper/shard-1.jsonl", Body=b'{"id": 3, "value": 3}\n')
    boto3.client("sagemaker").create_model(
        ModelName="given",
        ExecutionRoleArn=role_arn,
        PrimaryContainer={"Image": "inference-image", "ModelDataUrl": f"s3://{BUCKET}/given/model.tar.gz"},
    )


def _transform_request(name: str, model_name: str, input_prefix: str = "pool/") -> dict:
    return {
        "TransformJobName": name,
        "ModelName": model_name,
        "BatchStrategy": "MultiRecord",
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/{input_prefix}"}},
            "ContentType": "application/jsonlines",
            "SplitType": "Line",
        },
        "TransformOutput": {"S3OutputPath": f"s3://{BUCKET}/predictions", "AssembleWith": "Line", "Accept": "application/jsonlines"},
        "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
    }


def _lines(key: str) -> list[dict]:
    body = boto3.client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read().decode()
    return [json.loads(line) for line in body.splitlines()]


def test_a_transform_job_writes_one_output_per_input_object(jobs: Path, role_arn: str) -> None:
    _put_model_and_inputs(role_arn)
    sagemaker = boto3.client("sagemaker")
    sagemaker.create_transform_job(**_transform_request("xform-ok", "given"))

    description = _wait(sagemaker.describe_transform_job, "TransformJobStatus", TransformJobName="xform-ok")

    assert description["TransformJobStatus"] == "Completed", description.get("FailureReason")
    assert _lines("predictions/shard-0.jsonl.out") == [{"id": 1, "score": 10}, {"id": 2, "score": 20}]
    assert _lines("predictions/deeper/shard-1.jsonl.out") == [{"id": 3, "score": 30}]


def test_a_transform_error_fails_the_job_naming_the_input_object(jobs: Path, role_arn: str) -> None:
    _put_model_and_inputs(role_arn)
    boto3.client("s3").put_object(Bucket=BUCKET, Key="broken/shard.jsonl", Body=b'{"id": 9}\n')
    sagemaker = boto3.client("sagemaker")
    sagemaker.create_transform_job(**_transform_request("xform-bad", "given", input_prefix="broken/"))

    description = _wait(sagemaker.describe_transform_job, "TransformJobStatus", TransformJobName="xform-bad")

    assert description["TransformJobStatus"] == "Failed"
    assert f"s3://{BUCKET}/broken/shard.jsonl: KeyError" in description["FailureReason"]


def test_mini_batches_respect_the_payload_limit_and_the_strategy() -> None:
    body = b"aaaa\nbbbb\n\ncccc\n"

    assert list(mini_batches(body, "Line", "MultiRecord", max_payload_bytes=10)) == [b"aaaa\nbbbb\n", b"cccc\n"]
    assert list(mini_batches(body, "Line", "SingleRecord", max_payload_bytes=10)) == [b"aaaa\n", b"bbbb\n", b"cccc\n"]
    assert list(mini_batches(body, "None", "MultiRecord", max_payload_bytes=1)) == [body]


def _state_machine(role_arn: str, fail: str) -> dict:
    training = {k: v for k, v in _training_request("unused", role_arn, fail=fail).items() if k != "TrainingJobName"}
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
                    **{k: v for k, v in _transform_request("unused", "unused").items() if k not in ("TransformJobName", "ModelName")},
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
    _put_model_and_inputs(role_arn)

    result = _execute(role_arn, _state_machine(role_arn, fail="no"), "loop-ok")

    assert result["status"] == "SUCCEEDED", result
    output = json.loads(result["output"])
    assert output["training"] == {"model_data": f"s3://{BUCKET}/models/loop-ok-train/output/model.tar.gz"}
    assert output["transform"] == {"status": "Completed"}
    assert _lines("predictions/shard-0.jsonl.out") == [{"id": 1, "score": 2.5}, {"id": 2, "score": 5.0}]


def test_a_failed_training_job_is_caught_by_the_state_machine(jobs: Path, role_arn: str) -> None:
    result = _execute(role_arn, _state_machine(role_arn, fail="yes"), "loop-bad")

    assert result["status"] == "SUCCEEDED", result
    failure = json.loads(result["output"])["failure"]
    assert failure["Error"] == "States.TaskFailed"
    cause = json.loads(failure["Cause"])
    assert cause["TrainingJobStatus"] == "Failed"
    assert "the training channel holds no usable images" in cause["FailureReason"]


def test_framework_hyperparameters_stay_out_of_the_scripts_hyperparameters(tmp_path: Path) -> None:
    hyperparameters = {"model": "tiny", "max_seconds": "60", "sagemaker_program": "train.py", "sagemaker_region": "x"}

    env = training_environment(tmp_path, ["train"], hyperparameters, tmp_path / "train.py")

    assert json.loads(env["SM_HPS"]) == {"model": "tiny", "max_seconds": 60}
    assert env["SM_HP_MODEL"] == "tiny" and "SM_HP_SAGEMAKER_PROGRAM" not in env
