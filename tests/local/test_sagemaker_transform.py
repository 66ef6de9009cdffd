"""Local SageMaker batch transform: the inference handler runs over every input object, split as SageMaker does."""

from __future__ import annotations

from pathlib import Path

import boto3

from boxloop.local.sagemaker.transform import mini_batches
from tests.local.sagemaker_requests import BUCKET, json_lines, put_model_and_inputs, transform_request, wait_for_job


def test_a_transform_job_writes_one_output_per_input_object(jobs: Path, role_arn: str) -> None:
    put_model_and_inputs(role_arn)
    sagemaker = boto3.client("sagemaker")
    sagemaker.create_transform_job(**transform_request("xform-ok", "given"))

    description = wait_for_job(sagemaker.describe_transform_job, "TransformJobStatus", TransformJobName="xform-ok")

    assert description["TransformJobStatus"] == "Completed", description.get("FailureReason")
    assert json_lines("predictions/shard-0.jsonl.out") == [{"id": 1, "score": 10}, {"id": 2, "score": 20}]
    assert json_lines("predictions/deeper/shard-1.jsonl.out") == [{"id": 3, "score": 30}]


def test_a_transform_error_fails_the_job_naming_the_input_object(jobs: Path, role_arn: str) -> None:
    put_model_and_inputs(role_arn)
    boto3.client("s3").put_object(Bucket=BUCKET, Key="broken/shard.jsonl", Body=b'{"id": 9}\n')
    sagemaker = boto3.client("sagemaker")
    sagemaker.create_transform_job(**transform_request("xform-bad", "given", input_prefix="broken/"))

    description = wait_for_job(sagemaker.describe_transform_job, "TransformJobStatus", TransformJobName="xform-bad")

    assert description["TransformJobStatus"] == "Failed"
    assert f"s3://{BUCKET}/broken/shard.jsonl: KeyError" in description["FailureReason"]


def test_mini_batches_respect_the_payload_limit_and_the_strategy() -> None:
    body = b"aaaa\nbbbb\n\ncccc\n"

    assert list(mini_batches(body, "Line", "MultiRecord", max_payload_bytes=10)) == [b"aaaa\nbbbb\n", b"cccc\n"]
    assert list(mini_batches(body, "Line", "SingleRecord", max_payload_bytes=10)) == [b"aaaa\n", b"bbbb\n", b"cccc\n"]
    assert list(mini_batches(body, "None", "MultiRecord", max_payload_bytes=1)) == [body]
