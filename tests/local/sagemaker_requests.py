"""Requests and checks shared by the local SageMaker tests (the ``jobs`` fixture's bucket and stand-in code)."""

from __future__ import annotations

import io
import json
import tarfile
import time
from collections.abc import Callable

import boto3

BUCKET = "jobs"


def training_request(name: str, role_arn: str, **hyperparameters: str) -> dict:
    """A CreateTrainingJob request for the stand-in script over ``data/train/`` and ``data/validation/``."""
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
                "ChannelName": channel,
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/data/{channel}/"}},
            }
            for channel in ("train", "validation")
        ],
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/models"},
        "ResourceConfig": {"InstanceType": "ml.g5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 10},
        "StoppingCondition": {"MaxRuntimeInSeconds": 60},
    }


def transform_request(name: str, model_name: str, input_prefix: str = "pool/") -> dict:
    """A CreateTransformJob request: JSON lines under ``input_prefix`` into ``predictions/``."""
    return {
        "TransformJobName": name,
        "ModelName": model_name,
        "BatchStrategy": "MultiRecord",
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/{input_prefix}"}},
            "ContentType": "application/jsonlines",
            "SplitType": "Line",
        },
        "TransformOutput": {
            "S3OutputPath": f"s3://{BUCKET}/predictions",
            "AssembleWith": "Line",
            "Accept": "application/jsonlines",
        },
        "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
    }


def put_model_and_inputs(role_arn: str) -> None:
    """The model ``given`` (scale 10) and three pool records in two objects."""
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


def wait_for_job(describe: Callable[..., dict], status_key: str, **name: str) -> dict:
    """The job's description once it has ended (AssertionError after 30 s)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        description = describe(**name)
        if description[status_key] not in ("InProgress", "Stopping"):
            return description
        time.sleep(0.05)
    raise AssertionError(f"{name} still in progress after 30 s")


def json_lines(key: str) -> list[dict]:
    """The JSON lines of an object in ``BUCKET``."""
    body = boto3.client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read().decode()
    return [json.loads(line) for line in body.splitlines()]
