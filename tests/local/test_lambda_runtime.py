"""The in-process Lambda hook: boto3 invoke and a Step Functions Task call our handlers."""

from __future__ import annotations

import io
import json
import os
import threading
import time
import zipfile

import boto3
import pytest
from moto.awslambda.models import lambda_backends
from moto.core import DEFAULT_ACCOUNT_ID

from boxloop.local import lambda_runtime
from tests.local import stand_in_lambda


def _create_function(role_arn: str, name: str, handler: str, variables: dict[str, str]) -> str:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.write(stand_in_lambda.__file__, "stand_in_lambda.py")
    return boto3.client("lambda").create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=role_arn,
        Handler=f"{stand_in_lambda.__name__}.{handler}",
        Code={"ZipFile": archive.getvalue()},
        Environment={"Variables": variables},
    )["FunctionArn"]


def _wait_for_execution(execution_arn: str) -> dict:
    sfn = boto3.client("stepfunctions")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        description = sfn.describe_execution(executionArn=execution_arn)
        if description["status"] != "RUNNING":
            return description
        time.sleep(0.05)
    raise AssertionError(f"execution {execution_arn} still running after 30 s")


def test_boto3_invoke_runs_the_handler_with_its_environment(role_arn: str) -> None:
    _create_function(role_arn, "echo", "echo", {"GREETING": "hello"})

    response = boto3.client("lambda").invoke(FunctionName="echo", Payload=json.dumps({"n": 1}))

    assert "FunctionError" not in response
    assert json.loads(response["Payload"].read()) == {"event": {"n": 1}, "greeting": "hello", "function": "echo"}
    assert "GREETING" not in os.environ


def test_a_raising_handler_is_a_function_error_naming_the_exception(role_arn: str) -> None:
    _create_function(role_arn, "failing", "fail", {})

    response = boto3.client("lambda").invoke(FunctionName="failing", Payload=json.dumps({"n": 2}))

    assert response["FunctionError"] == "Handled"
    payload = json.loads(response["Payload"].read())
    assert payload["errorType"] == "ValueError"
    assert payload["errorMessage"] == "cannot handle {'n': 2}"


def test_an_unknown_handler_module_is_a_function_error(role_arn: str) -> None:
    boto3.client("lambda").create_function(
        FunctionName="missing",
        Runtime="python3.11",
        Role=role_arn,
        Handler="lambdas.no_such_module.handler",
        Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18},
    )

    response = boto3.client("lambda").invoke(FunctionName="missing", Payload=b"{}")

    assert response["FunctionError"] == "Handled"
    assert json.loads(response["Payload"].read())["errorType"] == "ModuleNotFoundError"


def test_a_step_functions_task_invokes_the_handler_and_catches_its_error(role_arn: str) -> None:
    echo_arn = _create_function(role_arn, "echo", "echo", {"GREETING": "from-task"})
    fail_arn = _create_function(role_arn, "failing", "fail", {})
    definition = {
        "StartAt": "Echo",
        "States": {
            "Echo": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": echo_arn, "Payload.$": "$"},
                "ResultSelector": {"greeting.$": "$.Payload.greeting", "event.$": "$.Payload.event"},
                "ResultPath": "$.echo",
                "Next": "Fail",
            },
            "Fail": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": fail_arn, "Payload.$": "$"},
                "Catch": [{"ErrorEquals": ["ValueError"], "ResultPath": "$.error", "Next": "Done"}],
                "End": True,
            },
            "Done": {"Type": "Succeed"},
        },
    }
    sfn = boto3.client("stepfunctions")
    machine = sfn.create_state_machine(name="lambda-task", definition=json.dumps(definition), roleArn=role_arn)
    execution = sfn.start_execution(stateMachineArn=machine["stateMachineArn"], name="run-1", input='{"x": 7}')

    result = _wait_for_execution(execution["executionArn"])

    assert result["status"] == "SUCCEEDED", result
    output = json.loads(result["output"])
    assert output["echo"] == {"greeting": "from-task", "event": {"x": 7}}
    assert output["error"]["Error"] == "ValueError"
    assert "cannot handle" in output["error"]["Cause"]


@pytest.mark.parametrize("event", [None, ""])
def test_an_empty_event_reaches_the_handler_as_an_empty_object(role_arn: str, event: str | None) -> None:
    _create_function(role_arn, "echo", "echo", {})
    function = lambda_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].get_function("echo")

    payload, errored, _ = function._invoke_lambda(event)

    assert not errored
    assert json.loads(payload)["event"] == {}


def test_what_a_handler_prints_goes_to_its_log_not_the_terminal() -> None:
    passthrough = io.StringIO()
    output = lambda_runtime.HandlerOutput(passthrough)

    with output.captured() as handler_log:
        output.write("handler line\n")
        worker = threading.Thread(target=output.write, args=("other thread\n",))
        worker.start()
        worker.join()
    output.write("after\n")

    assert handler_log.getvalue() == "handler line\n"
    assert passthrough.getvalue() == "other thread\nafter\n"
