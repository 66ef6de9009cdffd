"""The synthesized definition, resolved to plain ASL, parses and runs in moto's Step Functions interpreter."""

from __future__ import annotations

import json
import time

import boto3
import pytest
from moto import mock_aws

from infra.asl import resolve_definition
from tests.infra.moto_hooks import invoke_in_process, stand_in_function_zip

REGION = "us-east-1"


class ConfigMissing(Exception):
    """Stands in for RegisterPool's error when config/labeling.json is absent."""


@pytest.fixture
def aws(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        yield


def _local_substitutions(template: dict) -> dict[str, str]:
    """Create the definition's functions, queue and bucket in moto; map their logical ids to local ARNs/URLs."""
    lam, iam, sqs, s3 = (boto3.client(s, region_name=REGION) for s in ("lambda", "iam", "sqs", "s3"))
    role = iam.create_role(RoleName="local", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    values: dict[str, str] = {}
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] == "AWS::Lambda::Function":
            arn = lam.create_function(
                FunctionName=logical_id,
                Runtime="python3.11",
                Role=role,
                Handler="handler.handler",
                Code={"ZipFile": stand_in_function_zip()},
            )["FunctionArn"]
            values[f"{logical_id}.Arn"] = arn
        elif resource["Type"] == "AWS::SQS::Queue":
            url = sqs.create_queue(QueueName=logical_id)["QueueUrl"]
            values[logical_id] = url
            values[f"{logical_id}.Arn"] = f"arn:aws:sqs:{REGION}:123456789012:{logical_id}"
        elif resource["Type"] == "AWS::S3::Bucket":
            s3.create_bucket(Bucket=logical_id.lower())
            values[logical_id] = logical_id.lower()
            values[f"{logical_id}.Arn"] = f"arn:aws:s3:::{logical_id.lower()}"
        elif resource["Type"] == "AWS::IAM::Role":
            values[f"{logical_id}.Arn"] = role
    return values


def _wait(sfn, execution_arn: str) -> dict:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        description = sfn.describe_execution(executionArn=execution_arn)
        if description["status"] != "RUNNING":
            return description
        time.sleep(0.05)
    raise AssertionError("execution still running")


def test_a_failing_first_step_is_recorded_and_fails_the_run_with_its_error(aws, dev):
    template = dev.template
    definition = resolve_definition(template, _local_substitutions(template))
    sfn = boto3.client("stepfunctions", region_name=REGION)
    machine = sfn.create_state_machine(
        name="boxloop-local", definition=json.dumps(definition), roleArn="arn:aws:iam::123456789012:role/local"
    )["stateMachineArn"]
    functions = dev.of_type("AWS::Lambda::Function")
    register_pool = next(k for k in functions if k.startswith("LabellingRegisterPoolFunction"))
    record_failure = next(k for k in functions if k.startswith("LabellingRecordFailureFunction"))

    def fail_registration(event, context):
        raise ConfigMissing(f"s3://{event['bucket']}/{event['config_key']} does not exist")

    def record(event, context):
        return {"failure_key": f"runs/{event['state']['run_id']}/failures/x.json"}

    with invoke_in_process({register_pool: fail_registration, record_failure: record}) as calls:
        execution = sfn.start_execution(
            stateMachineArn=machine,
            name="run-1-i0000",
            input=json.dumps(
                {"run_id": "run-1", "bucket": "data", "config_key": "config/labeling.json", "resume_from": None}
            ),
        )["executionArn"]
        result = _wait(sfn, execution)

    assert result["status"] == "FAILED"
    assert result["error"] == "ConfigMissing"
    assert "config/labeling.json does not exist" in result["cause"]
    assert [name for name, _ in calls] == [register_pool, record_failure]
    registration_event = calls[0][1]
    assert registration_event["iteration"] == 0 and registration_event["execution_name"] == "run-1-i0000"
    assert calls[1][1]["state"]["failure"]["Error"] == "ConfigMissing"
