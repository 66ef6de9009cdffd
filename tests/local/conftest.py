"""Fixtures for the local-run tests: an in-process moto with the hooks installed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from boxloop.local import lambda_runtime
from boxloop.local.sagemaker.job_code import SageMakerJobCode
from boxloop.local.sagemaker.local_sagemaker import LocalSageMaker
from tests.local import stand_in_inference
from tests.local.sagemaker_requests import BUCKET

REGION = "us-east-1"
STAND_INS = Path(__file__).parent


@pytest.fixture
def aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy credentials and a region; no endpoint override (in-process moto intercepts boto3)."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def mocked_aws(aws_environment: None) -> Iterator[None]:
    """In-process moto that executes state machines, with the in-process Lambda hook installed."""
    lambda_runtime.install()
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        yield


@pytest.fixture
def role_arn(mocked_aws: None) -> str:
    """An IAM role any service may assume (moto does not enforce its policies)."""
    document = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "*"}, "Action": "sts:AssumeRole"}],
    }
    return boto3.client("iam").create_role(RoleName="local-test", AssumeRolePolicyDocument=json.dumps(document))[
        "Role"
    ]["Arn"]


@pytest.fixture
def jobs(mocked_aws: None, tmp_path: Path) -> Iterator[Path]:
    """Moto's SageMaker running the stand-in script and inference module, with the bucket
    ``sagemaker_requests.BUCKET`` holding training data; yields the log folder."""
    log_dir = tmp_path / "logs"
    code = SageMakerJobCode(
        training_script=STAND_INS / "stand_in_train.py", inference_module=stand_in_inference.__name__, log_dir=log_dir
    )
    with LocalSageMaker(code):
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key="data/train/a.txt", Body=b"1\n2\n3\n")
        s3.put_object(Bucket=BUCKET, Key="data/train/sub/b.txt", Body=b"4\n")
        s3.put_object(Bucket=BUCKET, Key="data/validation/v.txt", Body=b"5\n")
        yield log_dir
