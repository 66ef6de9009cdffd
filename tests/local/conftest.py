"""Fixtures for the local-run tests: an in-process moto with the hooks installed."""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from boxloop.local import lambda_runtime, sagemaker_runtime

REGION = "us-east-1"


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
    sagemaker_runtime.stop_running_jobs()


@pytest.fixture
def role_arn(mocked_aws: None) -> str:
    """An IAM role any service may assume (moto does not enforce its policies)."""
    document = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "*"}, "Action": "sts:AssumeRole"}]}
    return boto3.client("iam").create_role(RoleName="local-test", AssumeRolePolicyDocument=json.dumps(document))["Role"]["Arn"]

