"""Why the labelling state machine's roles may hold the wildcards cdk-nag finds (docs/stack.md lists them all)."""

from __future__ import annotations

import json

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn

from boxloop.layout import CONFIG_PREFIX, IMAGES_PREFIX, RUNS_PREFIX
from infra import state_names as states
from infra.nag import acknowledge, acknowledge_object_prefixes, arn_token
from infra.storage import Storage


def acknowledge_sagemaker_role(role: iam.Role, bucket: s3.IBucket) -> None:
    """Reasons for the job role's object prefixes, unscoped actions and log streams."""
    acknowledge_object_prefixes(
        role,
        bucket,
        [RUNS_PREFIX, IMAGES_PREFIX],
        "Jobs read their training manifests, pool shards and images and write model artefacts and inference "
        "output; keys are per run and iteration (runs/<run>/…) or content-addressed images (images/<sha256>.<ext>).",
    )
    acknowledge(
        role,
        "AwsSolutions-IAM5",
        "ecr:GetAuthorizationToken and cloudwatch:PutMetricData support no resource scoping (PutMetricData is "
        "limited to SageMaker's namespaces by condition); SageMaker names its log streams per job under "
        "/aws/sagemaker/*.",
        [
            "Resource::*",
            "Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:/aws/sagemaker/*",
        ],
    )


def acknowledge_state_machine(
    state_machine: sfn.StateMachine, functions: dict[str, lambda_.IFunction], bucket: s3.IBucket
) -> None:
    """Reasons for the wildcards CDK's task constructs and grants write into the state machine's role."""
    name = _state_machine_name_token(state_machine)
    acknowledge(
        state_machine,
        "AwsSolutions-IAM5",
        "Written by CDK's task constructs: lambda:InvokeFunction on '<function arn>:*' (any version of our own "
        "functions); SageMaker training-job / model / transform-job ARNs end in '/*' because job names are "
        "built per run and iteration at run time; the Distributed Map starts and reads its own child "
        "executions; X-Ray trace writes and log delivery support no resource scoping.",
        [f"Resource::{arn_token(function)}:*" for function in functions.values()]
        + [
            f"Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:{kind}/*"
            for kind in ("training-job", "model", "transform-job")
        ]
        + [
            "Resource::*",
            f"Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:{name}:*",
            f"Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:{name}/*:*",
        ],
    )
    acknowledge_object_prefixes(
        state_machine,
        bucket,
        [RUNS_PREFIX],
        "The Distributed Map's ItemReader lists and reads each iteration's inference output under runs/<run>/….",
    )
    acknowledge(
        state_machine,
        "AwsSolutions-SF1",
        "Execution history in the console already records every state; CloudWatch gets ERROR-level events "
        "without execution data, so labels and image references do not leak into logs.",
    )


def acknowledge_loop_functions(functions: dict[str, lambda_.IFunction], storage: Storage) -> None:
    """Reasons for the loop Lambdas' run-data prefixes, RegisterPool's index query and Finalize's topic key."""
    for name, function in functions.items():
        prefixes = [RUNS_PREFIX, CONFIG_PREFIX] if name == states.REGISTER_POOL else [RUNS_PREFIX]
        acknowledge_object_prefixes(
            function,
            storage.data_bucket,
            prefixes,
            "Run data lives under runs/<run-id>/… with keys chosen per run, iteration and shard.",
        )
    acknowledge(
        functions[states.REGISTER_POOL],
        "AwsSolutions-IAM5",
        "RegisterPool queries the images table's sparse 'pending' index.",
        [f"Resource::{arn_token(storage.images_table)}/index/*"],
    )
    acknowledge(
        functions[states.FINALIZE],
        "AwsSolutions-IAM5",
        "CDK's grant to publish on the KMS-encrypted topic includes kms:GenerateDataKey* on that one key.",
        ["Action::kms:GenerateDataKey*"],
    )


def _state_machine_name_token(state_machine: sfn.StateMachine) -> str:
    """How cdk-nag prints the state machine's name (the sixth field of its ARN)."""
    stack = Stack.of(state_machine)
    logical_id = stack.resolve(stack.get_logical_id(state_machine.node.default_child))
    return json.dumps({"Fn::Select": [6, {"Fn::Split": [":", {"Ref": logical_id}]}]}, separators=(",", ":"))
