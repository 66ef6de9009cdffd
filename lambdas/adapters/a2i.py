"""Start A2I human loops on the flow definition (``sagemaker-a2i-runtime``)."""

from __future__ import annotations

import os
from functools import cache

import boto3


@cache
def _a2i():
    return boto3.client("sagemaker-a2i-runtime")


def start_human_loop(human_loop_name: str, input_content: str) -> bool:
    """Start the named human loop on ``FLOW_DEFINITION_ARN``; False when it already exists.

    Loop names are deterministic, so a retried start meets ConflictException: already started.
    """
    client = _a2i()
    try:
        client.start_human_loop(
            HumanLoopName=human_loop_name,
            FlowDefinitionArn=os.environ["FLOW_DEFINITION_ARN"],
            HumanLoopInput={"InputContent": input_content},
        )
    except client.exceptions.ConflictException:
        return False
    return True
