"""``boxloop.local.usage``: the counting behind ``usage.json``, on recorded histories and fake invocations."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from boxloop.local.outputs import USAGE_FILE, write_usage
from boxloop.local.usage import (
    USAGE,
    ItemProcessor,
    JobUsage,
    RunUsage,
    StepFunctionsUsage,
    UsageRecorder,
    count_state_transitions,
    distributed_item_processors,
    start_recording,
    step_functions_usage,
)

STACK = "boxloop-dev"
ROUTE_SHARD = f"{STACK}-LabellingRouteShardFunctionFA21BCBB"


def _events(*types: str) -> list[dict[str, Any]]:
    return [{"id": index, "type": kind} for index, kind in enumerate(types, start=1)]


def test_every_state_entered_and_every_retry_is_a_transition() -> None:
    history = _events(
        "ExecutionStarted",
        "TaskStateEntered", "TaskScheduled", "TaskStarted", "TaskFailed",  # first attempt
        "TaskScheduled", "TaskStarted", "TaskSucceeded", "TaskStateExited",  # one retry
        "ChoiceStateEntered", "ChoiceStateExited",
        "TaskStateEntered", "LambdaFunctionScheduled", "LambdaFunctionStarted", "LambdaFunctionSucceeded",
        "MapStateEntered", "MapRunStarted", "MapRunSucceeded", "MapStateExited",
        "SucceedStateEntered", "ExecutionSucceeded",
    )  # fmt: skip

    assert count_state_transitions(reversed(history)) == (5, 1)


def test_only_distributed_map_processors_are_children() -> None:
    definition = {
        "States": {
            "Inline": {
                "Type": "Map",
                "ItemProcessor": {"ProcessorConfig": {"Mode": "INLINE"}, "States": {"A": {"Type": "Pass"}}},
            },
            "RouteImages": {
                "Type": "Map",
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                    "States": {
                        "RouteShard": {
                            "Type": "Task",
                            "Resource": f"arn:aws:lambda:us-east-1:1:function:{ROUTE_SHARD}",
                        },
                        "Invoke": {
                            "Type": "Task",
                            "Resource": "arn:aws:states:::lambda:invoke",
                            "Parameters": {
                                "FunctionName": "arn:aws:lambda:us-east-1:123456789012:function:other:$LATEST"
                            },
                        },
                        "Done": {"Type": "Succeed"},
                    },
                },
            },
        }
    }

    assert distributed_item_processors(definition) == [ItemProcessor((ROUTE_SHARD, "other"), 1)]


def test_recorder_is_thread_safe_and_bills_whole_milliseconds() -> None:
    recorder = UsageRecorder()

    def invoke() -> None:
        for _ in range(250):
            recorder.record_invocation(ROUTE_SHARD, "lambdas.loop.route_shard.handler", 2048, 0.0015)

    threads = [threading.Thread(target=invoke) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    recorder.record_invocation(f"{STACK}-IngestIngestFunctionA86B6DE6", "lambdas.ingest.handler.handler", 1024, 0.0001)

    usage = recorder.usage("run-1", STACK, StepFunctionsUsage())

    route, ingest = sorted(usage.lambda_functions, key=lambda f: f.function, reverse=True)
    assert route.function == "LabellingRouteShardFunctionFA21BCBB"
    assert route.invocations == 2000 and route.total_seconds == pytest.approx(4.0)  # 2 ms each
    assert route.mean_seconds == pytest.approx(0.002) and route.gb_seconds == pytest.approx(8.0)
    assert ingest.total_seconds == pytest.approx(0.001) and ingest.gb_seconds == pytest.approx(0.001)
    assert usage.lambda_invocations == 2001 and usage.lambda_gb_seconds == pytest.approx(8.001)


class FakeStepFunctions:
    """Two history pages and one Map Run of three child executions."""

    def __init__(self) -> None:
        self.pages = {
            None: {"events": _events("ExecutionStarted", "TaskStateEntered", "TaskScheduled"), "nextToken": "2"},
            "2": {"events": [{"id": 4, "type": "MapStateEntered"}, {"id": 5, "type": "SucceedStateEntered"}]},
        }

    def get_execution_history(self, executionArn: str, nextToken: str | None = None) -> dict[str, Any]:
        return self.pages[nextToken]

    def list_map_runs(self, executionArn: str) -> dict[str, Any]:
        return {"mapRuns": [{"mapRunArn": "arn:map-run"}]}

    def describe_map_run(self, mapRunArn: str) -> dict[str, Any]:
        return {"executionCounts": {"total": 3}}


def test_map_children_count_their_start_their_lambda_calls_and_their_other_states() -> None:
    start_recording()
    for _ in range(4):  # three children, one retried once
        USAGE.record_invocation(ROUTE_SHARD, "lambdas.loop.route_shard.handler", 2048, 0.01)
    definition = {
        "States": {
            "RouteImages": {
                "Type": "Map",
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED"},
                    "States": {
                        "RouteShard": {
                            "Type": "Task",
                            "Resource": f"arn:aws:lambda:us-east-1:1:function:{ROUTE_SHARD}",
                        },
                        "Done": {"Type": "Succeed"},
                    },
                },
            }
        }
    }

    usage = step_functions_usage(FakeStepFunctions(), ["arn:aws:states:us-east-1:1:execution:m:run-i0000"], definition)

    assert usage.executions == ["run-i0000"]
    assert (usage.states_entered, usage.retries, usage.map_runs, usage.map_child_executions) == (3, 0, 1, 3)
    assert usage.map_child_transitions == 3 * (1 + 1) + 4
    assert usage.state_transitions == 3 + 10


def test_sqs_messages_are_counted_per_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    start_recording()
    with mock_aws():
        sqs = boto3.client("sqs")
        url = sqs.create_queue(QueueName=f"{STACK}-IngestQueueB5B8C1F3")["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody="one")
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": "x"} for i in range(3)])

        usage = USAGE.usage("run-1", STACK, StepFunctionsUsage())

    assert usage.sqs_messages_sent == {"IngestQueueB5B8C1F3": 4}


def _usage(invocations: int, seconds: float, transitions: int, images: int | None = None) -> RunUsage:
    recorder = UsageRecorder()
    for _ in range(invocations):
        recorder.record_invocation(ROUTE_SHARD, "lambdas.loop.route_shard.handler", 1024, seconds)
    recorder.record_job("transform", JobUsage(job_name="t", status="Completed", wall_seconds=5.0, input_records=7))
    recorder.record_message_sent(f"{STACK}-Queue")
    usage = recorder.usage("run-1", STACK, StepFunctionsUsage(executions=["e"], states_entered=transitions))
    return usage.model_copy(update={"images_total": images})


def test_a_resumed_process_adds_to_the_usage_the_interrupted_one_wrote(tmp_path: Path) -> None:
    write_usage(tmp_path, _usage(invocations=2, seconds=0.5, transitions=10))

    total = write_usage(tmp_path, _usage(invocations=3, seconds=1.0, transitions=7, images=120))

    saved = RunUsage.model_validate_json((tmp_path / USAGE_FILE).read_bytes())
    assert saved == total
    assert saved.processes == 2 and saved.images_total == 120
    (function,) = saved.lambda_functions
    assert function.invocations == 5 and function.total_seconds == pytest.approx(4.0)
    assert saved.step_functions.executions == ["e", "e"] and saved.step_functions.state_transitions == 17
    assert [job.input_records for job in saved.transform_jobs] == [7, 7]
    assert saved.sqs_messages_sent == {"Queue": 2}
