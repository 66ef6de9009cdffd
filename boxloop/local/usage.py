"""What a local run used of the billed AWS services, written as ``<run-id>/usage.json`` (``RunUsage``).

The figures are the ones AWS bills by, counted while the run executes on the embedded AWS:

- **Lambda**: every in-process invocation (``lambda_runtime``) with its duration rounded up to the
  millisecond, as Lambda bills it, and the function's configured memory (the ``MemorySize`` the
  synthesized template gives it; ``resources.create_resources`` creates the function with it). The
  human-review consumer is not invoked locally (the simulated workforce reads its queue instead), so it
  is absent here. Durations are this machine's: handlers call moto over loopback, not AWS.
- **Step Functions** (Standard workflows): AWS "counts a state transition each time a step of your
  workflow is executed", retries included, and for a Distributed Map "one state transition for each
  child workflow execution" it starts (Step Functions pricing page; developer guide, "Transitions in
  Distributed Map states"). ``count_state_transitions`` counts, from an execution's history, every
  ``…StateEntered`` event plus every retry (a task scheduled again within the same state entry). moto
  keeps no history for Distributed Map child executions, so each child counts one transition for its
  start plus the states it runs: one per invocation of the Lambda functions its item processor calls
  (retries included) and one per other state of the processor.
- **SageMaker**: each training and transform job's wall seconds from start to end as run here (training
  includes channel download and model upload), its status, and for a transform its input records (one
  pool image per line).
- **SQS**: messages sent to each queue (moto's ``SendMessage``, batch entries included): the ingest
  queue gets one per upload, the human-review queue one per human batch.

S3 requests are not counted: the local run's own progress display and ``--resume`` snapshots read the
same bucket, and telling their requests from the stack's would cost more than it is worth.

A resumed run adds what the earlier processes of the same run recorded (``RunUsage.combined_with``);
each process writes its figures when it ends, interrupted or not.
"""

from __future__ import annotations

import json
import math
import threading
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from moto.sqs.models import SQSBackend
from pydantic import BaseModel, Field, computed_field

_ORIGINAL_SEND_MESSAGE = SQSBackend.send_message


class LambdaFunctionUsage(BaseModel):
    """One Lambda function's invocations and billed duration."""

    function: str = Field(description="the function's logical id in the stack")
    handler: str
    memory_mb: int
    invocations: int
    total_seconds: float = Field(description="sum of durations, each rounded up to 1 ms")

    @computed_field
    @property
    def mean_seconds(self) -> float:
        return round(self.total_seconds / self.invocations, 6) if self.invocations else 0.0

    @computed_field
    @property
    def gb_seconds(self) -> float:
        return round(self.total_seconds * self.memory_mb / 1024, 6)


class JobUsage(BaseModel):
    """One SageMaker job as run locally."""

    job_name: str
    status: str
    wall_seconds: float
    input_records: int | None = Field(default=None, description="transform jobs: input records (one pool image each)")


class StepFunctionsUsage(BaseModel):
    """Billed state transitions of the run's executions (see the module docstring for what counts)."""

    executions: list[str] = Field(default_factory=list)
    states_entered: int = 0
    retries: int = 0
    map_runs: int = 0
    map_child_executions: int = 0
    map_child_transitions: int = 0

    @computed_field
    @property
    def state_transitions(self) -> int:
        return self.states_entered + self.retries + self.map_child_transitions


class RunUsage(BaseModel):
    """``usage.json``: what one local run used, with the run's size for scaling it to other corpora."""

    run_id: str
    processes: int = Field(description="local processes that ran this run (more than 1 after --resume)")
    images_total: int | None = None
    images_auto_labelled: int | None = None
    images_human_labelled: int | None = None
    iterations: int | None = None
    lambda_functions: list[LambdaFunctionUsage]
    step_functions: StepFunctionsUsage
    training_jobs: list[JobUsage]
    transform_jobs: list[JobUsage]
    sqs_messages_sent: dict[str, int] = Field(description="queue logical id -> messages sent")

    @computed_field
    @property
    def lambda_invocations(self) -> int:
        return sum(function.invocations for function in self.lambda_functions)

    @computed_field
    @property
    def lambda_gb_seconds(self) -> float:
        return round(sum(function.gb_seconds for function in self.lambda_functions), 6)

    def combined_with(self, earlier: RunUsage) -> RunUsage:
        """This process's usage plus an earlier process's of the same run (run size: this one's)."""
        functions: dict[str, LambdaFunctionUsage] = {f.function: f for f in earlier.lambda_functions}
        for function in self.lambda_functions:
            before = functions.get(function.function)
            functions[function.function] = (
                function
                if before is None
                else function.model_copy(
                    update={
                        "invocations": before.invocations + function.invocations,
                        "total_seconds": round(before.total_seconds + function.total_seconds, 3),
                    }
                )
            )
        ours, theirs = self.step_functions, earlier.step_functions
        step_functions = StepFunctionsUsage(
            executions=theirs.executions + ours.executions,
            states_entered=theirs.states_entered + ours.states_entered,
            retries=theirs.retries + ours.retries,
            map_runs=theirs.map_runs + ours.map_runs,
            map_child_executions=theirs.map_child_executions + ours.map_child_executions,
            map_child_transitions=theirs.map_child_transitions + ours.map_child_transitions,
        )
        return self.model_copy(
            update={
                "processes": earlier.processes + self.processes,
                "lambda_functions": sorted(functions.values(), key=lambda f: f.function),
                "step_functions": step_functions,
                "training_jobs": earlier.training_jobs + self.training_jobs,
                "transform_jobs": earlier.transform_jobs + self.transform_jobs,
                "sqs_messages_sent": dict(Counter(earlier.sqs_messages_sent) + Counter(self.sqs_messages_sent)),
            }
        )

    def to_json(self) -> str:
        """``usage.json``'s text (recorded figures plus the derived ones: means, GB-seconds, transitions)."""
        return json.dumps(self.model_dump(mode="json"), indent=1)


# ------------------------------------------------------------------------------------------ recording


@dataclass
class _FunctionTally:
    handler: str
    memory_mb: int
    invocations: int = 0
    milliseconds: int = 0


@dataclass
class UsageRecorder:
    """Thread-safe tallies, fed by the Lambda and SageMaker hooks and moto's SQS while a run executes."""

    _lock: threading.Lock = field(default_factory=threading.Lock)
    _functions: dict[str, _FunctionTally] = field(default_factory=dict)
    _training_jobs: list[JobUsage] = field(default_factory=list)
    _transform_jobs: list[JobUsage] = field(default_factory=list)
    _messages: Counter[str] = field(default_factory=Counter)

    def reset(self) -> None:
        """Forget everything recorded (a new run starts)."""
        with self._lock:
            self._functions.clear()
            self._training_jobs.clear()
            self._transform_jobs.clear()
            self._messages.clear()

    def record_invocation(self, function_name: str, handler: str, memory_mb: int, seconds: float) -> None:
        """One Lambda invocation; its duration is billed rounded up to the millisecond."""
        with self._lock:
            tally = self._functions.setdefault(function_name, _FunctionTally(handler, memory_mb))
            tally.invocations += 1
            tally.milliseconds += max(1, math.ceil(seconds * 1000))

    def record_job(self, kind: Literal["training", "transform"], job: JobUsage) -> None:
        """A SageMaker job that ended."""
        with self._lock:
            (self._training_jobs if kind == "training" else self._transform_jobs).append(job)

    def record_message_sent(self, queue_name: str) -> None:
        with self._lock:
            self._messages[queue_name] += 1

    def usage(self, run_id: str, stack_name: str, step_functions: StepFunctionsUsage) -> RunUsage:
        """The tallies so far as a ``RunUsage``; local names (``<stack>-<logical id>``) become logical ids."""
        prefix = f"{stack_name}-"
        with self._lock:
            functions = [
                LambdaFunctionUsage(
                    function=name.removeprefix(prefix),
                    handler=tally.handler,
                    memory_mb=tally.memory_mb,
                    invocations=tally.invocations,
                    total_seconds=round(tally.milliseconds / 1000, 3),
                )
                for name, tally in sorted(self._functions.items())
            ]
            return RunUsage(
                run_id=run_id,
                processes=1,
                lambda_functions=functions,
                step_functions=step_functions,
                training_jobs=list(self._training_jobs),
                transform_jobs=list(self._transform_jobs),
                sqs_messages_sent={name.removeprefix(prefix): count for name, count in sorted(self._messages.items())},
            )

    def invocations_of(self, function_names: Iterable[str]) -> int:
        """Invocations recorded for the named functions (local names)."""
        with self._lock:
            return sum(self._functions[name].invocations for name in function_names if name in self._functions)


USAGE = UsageRecorder()
"""The recorder of this process's run (reset by ``start_recording``)."""


def _send_message(self: SQSBackend, queue_name: str, *args: Any, **kwargs: Any) -> Any:
    message = _ORIGINAL_SEND_MESSAGE(self, queue_name, *args, **kwargs)
    USAGE.record_message_sent(queue_name)
    return message


def start_recording() -> None:
    """Reset ``USAGE`` and count moto's SQS messages into it (idempotent; moto 5.2.5's ``SQSBackend.send_message``)."""
    USAGE.reset()
    SQSBackend.send_message = _send_message


# ------------------------------------------------------------------------------------------ Step Functions


def count_state_transitions(events: Iterable[Mapping[str, Any]]) -> tuple[int, int]:
    """(states entered, retries) in one execution's history events.

    A retry is a task scheduled again before the next state is entered: every ``…Scheduled`` event of a
    state entry after its first (``TaskScheduled``, ``LambdaFunctionScheduled``, ``ActivityScheduled``).
    """
    entered = retries = scheduled_in_state = 0
    for event in sorted(events, key=lambda event: event["id"]):
        kind = event["type"]
        if kind.endswith("StateEntered"):
            entered += 1
            scheduled_in_state = 0
        elif kind.endswith("Scheduled"):
            scheduled_in_state += 1
            retries += scheduled_in_state > 1
    return entered, retries


@dataclass(frozen=True)
class ItemProcessor:
    """What a Distributed Map's child execution runs: the Lambda functions its tasks call, and its other states."""

    function_names: tuple[str, ...]
    other_states: int


def _task_function_name(state: Mapping[str, Any]) -> str | None:
    resource = str(state.get("Resource", ""))
    if ":function:" in resource:
        return resource.split(":function:", 1)[1].split(":", 1)[0]
    if resource.endswith(":lambda:invoke"):
        name = str(state.get("Parameters", {}).get("FunctionName", ""))
        return name.split(":function:", 1)[-1].split(":", 1)[0] or None
    return None


def distributed_item_processors(definition: Mapping[str, Any]) -> list[ItemProcessor]:
    """The item processors of every Distributed Map state in an ASL definition (nested ones included)."""
    processors: list[ItemProcessor] = []

    def walk(states: Mapping[str, Any]) -> None:
        for state in states.values():
            processor = state.get("ItemProcessor") or state.get("Iterator")
            if processor:
                if processor.get("ProcessorConfig", {}).get("Mode") == "DISTRIBUTED":
                    names = [_task_function_name(s) for s in processor["States"].values()]
                    processors.append(
                        ItemProcessor(tuple(name for name in names if name), sum(name is None for name in names))
                    )
                walk(processor["States"])
            for branch in state.get("Branches", []):
                walk(branch["States"])

    walk(definition.get("States", {}))
    return processors


def step_functions_usage(sfn: Any, execution_arns: Sequence[str], definition: Mapping[str, Any]) -> StepFunctionsUsage:
    """Billed state transitions of ``execution_arns`` (histories and Map Runs read from ``sfn``, Lambda
    invocations of the Distributed Map children from ``USAGE``)."""
    usage = StepFunctionsUsage(executions=[arn.rsplit(":", 1)[-1] for arn in execution_arns])
    for arn in execution_arns:
        events: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"executionArn": arn}
        while True:
            page = sfn.get_execution_history(**kwargs)
            events += page["events"]
            if not page.get("nextToken"):
                break
            kwargs["nextToken"] = page["nextToken"]
        entered, retries = count_state_transitions(events)
        usage.states_entered += entered
        usage.retries += retries
        for map_run in sfn.list_map_runs(executionArn=arn)["mapRuns"]:
            counts = sfn.describe_map_run(mapRunArn=map_run["mapRunArn"])["executionCounts"]
            usage.map_runs += 1
            usage.map_child_executions += int(counts["total"])
    processors = distributed_item_processors(definition)
    child_invocations = USAGE.invocations_of({name for p in processors for name in p.function_names})
    other_states = sum(p.other_states for p in processors)
    usage.map_child_transitions = usage.map_child_executions * (1 + other_states) + child_invocations
    return usage
