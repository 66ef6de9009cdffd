"""Start A2I human loops on the flow definition (``sagemaker-a2i-runtime``)."""

from __future__ import annotations

from lambdas.adapters.clients import aws_client
from lambdas.environment import lambda_environment


def start_human_loop(human_loop_name: str, input_content: str) -> bool:
    """Start the named human loop on ``FLOW_DEFINITION_ARN``; False when it already exists.

    Loop names are deterministic, so a retried start meets ConflictException: already started.
    """
    client = aws_client("sagemaker-a2i-runtime")
    try:
        client.start_human_loop(
            HumanLoopName=human_loop_name,
            FlowDefinitionArn=lambda_environment().require("flow_definition_arn"),
            HumanLoopInput={"InputContent": input_content},
        )
    except client.exceptions.ConflictException:
        return False
    return True
