"""Local SageMaker training: the script runs with the container contract; failures and time limits are the job's."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import boto3

from boxloop.local.sagemaker.training import training_environment
from tests.local.sagemaker_requests import BUCKET, training_request, wait_for_job


def _model_json(key: str) -> dict:
    body = boto3.client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as archive:
        return json.loads(archive.extractfile("model.json").read())


def test_a_training_job_runs_the_script_with_the_container_contract(jobs: Path, role_arn: str) -> None:
    sagemaker = boto3.client("sagemaker")
    sagemaker.create_training_job(**training_request("train-ok", role_arn))

    assert sagemaker.describe_training_job(TrainingJobName="train-ok")["TrainingJobStatus"] == "InProgress"
    description = wait_for_job(sagemaker.describe_training_job, "TrainingJobStatus", TrainingJobName="train-ok")

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
    sagemaker.create_training_job(**training_request("train-bad", role_arn, fail="yes"))

    description = wait_for_job(sagemaker.describe_training_job, "TrainingJobStatus", TrainingJobName="train-bad")

    assert description["TrainingJobStatus"] == "Failed"
    assert "exited with code 3" in description["FailureReason"]
    assert "the training channel holds no usable images" in description["FailureReason"]
    listed = boto3.client("s3").list_objects_v2(Bucket=BUCKET, Prefix="models/train-bad/")
    assert listed["KeyCount"] == 0


def test_a_job_over_its_max_runtime_is_stopped(jobs: Path, role_arn: str) -> None:
    request = training_request("train-slow", role_arn, sleep="30")
    request["StoppingCondition"] = {"MaxRuntimeInSeconds": 1}
    sagemaker = boto3.client("sagemaker")
    sagemaker.create_training_job(**request)

    description = wait_for_job(sagemaker.describe_training_job, "TrainingJobStatus", TrainingJobName="train-slow")

    assert description["TrainingJobStatus"] == "Stopped"
    assert description["SecondaryStatus"] == "MaxRuntimeExceeded"


def test_framework_hyperparameters_stay_out_of_the_scripts_hyperparameters(tmp_path: Path) -> None:
    hyperparameters = {"model": "tiny", "max_seconds": "60", "sagemaker_program": "train.py", "sagemaker_region": "x"}

    env = training_environment(tmp_path, ["train"], hyperparameters, tmp_path / "train.py")

    assert json.loads(env["SM_HPS"]) == {"model": "tiny", "max_seconds": 60}
    assert env["SM_HP_MODEL"] == "tiny" and "SM_HP_SAGEMAKER_PROGRAM" not in env
