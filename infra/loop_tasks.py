"""The loop's Lambda and human states: invoke a loop Lambda, wait for people, one Lambda call per shard in a
Distributed Map (choose the images to infer, route the inferred ones)."""

from __future__ import annotations

from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from infra.task_retries import LAMBDA_TRANSIENT_ERRORS, SQS_TRANSIENT_ERRORS, retry_transient_errors

FAILURE_PATH = "$.failure"
"""Where a caught error goes in the state (RecordFailure reads it)."""


def lambda_task(
    scope: Construct, function: lambda_.IFunction, state_name: str, *, payload: dict, result_path: str
) -> tasks.LambdaInvoke:
    """A state invoking ``function`` with ``payload``; its result (the handler's return value) at ``result_path``."""
    return tasks.LambdaInvoke(
        scope,
        state_name,
        lambda_function=function,
        payload=sfn.TaskInput.from_object(payload),
        payload_response_only=True,
        retry_on_service_exceptions=False,
        result_path=result_path,
    )


def human_task(
    scope: Construct, state_name: str, queue: sqs.IQueue, next_state: sfn.IChainable, record_failure: sfn.IChainable
) -> tasks.SqsSendMessage:
    """``sqs:sendMessage.waitForTaskToken`` on the human-review queue; a timeout carries on with the answers so far."""
    task = tasks.SqsSendMessage(
        scope,
        state_name,
        queue=queue,
        integration_pattern=sfn.IntegrationPattern.WAIT_FOR_TASK_TOKEN,
        message_body=sfn.TaskInput.from_object(
            {
                "run_id": sfn.JsonPath.string_at("$.run_id"),
                "iteration": sfn.JsonPath.number_at("$.iteration.number"),
                "bucket": sfn.JsonPath.string_at("$.bucket"),
                "tasks_key": sfn.JsonPath.string_at("$.human_batch.tasks_key"),
                "task_token": sfn.JsonPath.task_token,
            }
        ),
        task_timeout=sfn.Timeout.at("$.iteration.human_timeout_seconds"),
        result_path="$.human_answers",
    )
    retry_transient_errors(task, SQS_TRANSIENT_ERRORS, jitter=False)
    task.add_catch(next_state, errors=["States.Timeout"], result_path="$.human_timeout")
    task.add_catch(record_failure, errors=["States.ALL"], result_path=FAILURE_PATH)
    task.next(next_state)
    return task


def shard_map(
    scope: Construct,
    state_name: str,
    *,
    comment: str,
    bucket: s3.IBucket,
    prefix_path: str,
    shard_state_name: str,
    shard_function: lambda_.IFunction,
    max_concurrency: int,
) -> sfn.DistributedMap:
    """A Distributed Map over the objects under the key at ``prefix_path``; each is passed to one Lambda call."""
    distributed_map = sfn.DistributedMap(
        scope,
        state_name,
        comment=comment,
        item_reader=sfn.S3ObjectsItemReader(bucket=bucket, prefix=sfn.JsonPath.string_at(prefix_path)),
        item_selector={
            "run_id.$": "$.run_id",
            "bucket.$": "$.bucket",
            "iteration.$": "$.iteration.number",
            "shard_key.$": "$$.Map.Item.Value.Key",
        },
        max_concurrency=max_concurrency,
        map_execution_type=sfn.StateMachineType.STANDARD,
        result_path=sfn.JsonPath.DISCARD,
    )
    shard_task = lambda_task(scope, shard_function, shard_state_name, payload={"shard.$": "$"}, result_path="$.shard")
    retry_transient_errors(shard_task, LAMBDA_TRANSIENT_ERRORS)
    distributed_map.item_processor(shard_task)
    return distributed_map
