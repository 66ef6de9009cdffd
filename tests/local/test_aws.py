"""LocalAws: a moto server with the hooks, environment set while open and restored after."""

from __future__ import annotations

import io
import json
import os
import time
import zipfile

import pytest
import requests
from moto.core.config import default_user_config

from boxloop.local.aws import LocalAws
from tests.local import stand_in_lambda


def test_local_aws_serves_executes_and_restores_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "someone-elses")
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.write(stand_in_lambda.__file__, "stand_in_lambda.py")

    with LocalAws() as aws:
        assert os.environ["AWS_ENDPOINT_URL"] == aws.endpoint_url
        assert os.environ["MOTO_PORT"] == str(aws.port)
        assert os.environ["AWS_ACCESS_KEY_ID"] == "testing"
        role = aws.client("iam").create_role(RoleName="r", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        function_arn = aws.client("lambda").create_function(
            FunctionName="echo",
            Runtime="python3.11",
            Role=role,
            Handler=f"{stand_in_lambda.__name__}.echo",
            Code={"ZipFile": archive.getvalue()},
            Environment={"Variables": {"GREETING": "served"}},
        )["FunctionArn"]
        definition = {
            "StartAt": "Echo",
            "States": {
                "Echo": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::lambda:invoke",
                    "Parameters": {"FunctionName": function_arn, "Payload.$": "$"},
                    "OutputPath": "$.Payload",
                    "End": True,
                }
            },
        }
        sfn = aws.client("stepfunctions")
        machine = sfn.create_state_machine(name="m", definition=json.dumps(definition), roleArn=role)
        execution = sfn.start_execution(stateMachineArn=machine["stateMachineArn"], name="e", input='{"a": 1}')
        deadline = time.monotonic() + 30
        while (description := sfn.describe_execution(executionArn=execution["executionArn"]))["status"] == "RUNNING":
            assert time.monotonic() < deadline, "execution still running after 30 s"
            time.sleep(0.05)

        assert description["status"] == "SUCCEEDED", description
        assert json.loads(description["output"]) == {"event": {"a": 1}, "greeting": "served", "function": "echo"}

        aws.reset()
        assert aws.client("lambda").list_functions()["Functions"] == []
        port = aws.port

    assert "AWS_ENDPOINT_URL" not in os.environ
    assert os.environ["AWS_ACCESS_KEY_ID"] == "someone-elses"
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/moto-api/", timeout=2)


def test_leaving_turns_state_machine_execution_back_off_for_the_rest_of_the_process() -> None:
    with LocalAws():
        assert default_user_config["stepfunctions"]["execute_state_machine"] is True
    assert default_user_config["stepfunctions"]["execute_state_machine"] is False  # moto's default again
