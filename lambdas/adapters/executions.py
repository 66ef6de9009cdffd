"""Start named loop executions and resume waiting ones (Step Functions)."""

from __future__ import annotations

import json

from boxloop.layout import CONFIG_KEY
from lambdas.adapters.clients import aws_client
from lambdas.environment import lambda_environment


def execution_name(run_id: str, iteration: int) -> str:
    """``<run-id>-i<NNNN>``: the iteration the execution starts from (docs/architecture.md)."""
    return f"{run_id}-i{iteration:04d}"


def start_run_execution(run_id: str, bucket: str) -> str:
    """Start a new run's execution (``<run-id>-i0000``); idempotent: an existing one is success.

    Returns the execution ARN.
    """
    state_machine_arn = lambda_environment().require("state_machine_arn")
    name = execution_name(run_id, 0)
    client = aws_client("stepfunctions")
    execution_input = {"run_id": run_id, "bucket": bucket, "config_key": CONFIG_KEY, "resume_from": None}
    try:
        response = client.start_execution(
            stateMachineArn=state_machine_arn, name=name, input=json.dumps(execution_input)
        )
    except client.exceptions.ExecutionAlreadyExists:
        return state_machine_arn.replace(":stateMachine:", ":execution:", 1) + f":{name}"
    return response["executionArn"]


def send_task_success(task_token: str, output: dict) -> bool:
    """Resume the execution waiting on ``task_token``; False when that wait is already over."""
    client = aws_client("stepfunctions")
    try:
        client.send_task_success(taskToken=task_token, output=json.dumps(output))
    except (client.exceptions.TaskTimedOut, client.exceptions.TaskDoesNotExist):
        return False
    return True
