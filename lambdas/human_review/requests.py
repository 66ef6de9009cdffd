"""Hand one iteration's batch of human tasks to the configured workforce (``workforce.kind``).

The state machine's ``LabelByHumans`` state sends ``{run_id, iteration, bucket, tasks_key,
task_token}`` to the human-review queue and waits on the token. The batch item (token,
expected count) is recorded before any task is handed out, so every answer finds it. Then:

- ``browser``: the tasks are recorded in the labelling task table, where boxloop's labelling
  page claims and answers them (``lambdas.adapters.labelling_tasks.record_batch``; a redelivered
  message records nothing twice);
- ``a2i``: one A2I human loop per task; loop names are deterministic, so a redelivered message
  starts nothing twice;
- ``simulated``: answered by the local run's simulated workforce, which reads the queue itself;
  on AWS such a message fails, naming the kinds that work there.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel, Field

from boxloop.config import LabelingConfig
from boxloop.human_loop import human_loop_input, human_loop_name
from boxloop.models import HumanTask
from lambdas.adapters.a2i import start_human_loop
from lambdas.adapters.executions import send_task_success
from lambdas.adapters.labeling_config import read_run_labeling_config
from lambdas.adapters.labelling_tasks import record_batch
from lambdas.adapters.runs import mark_batch_success_sent, record_human_batch
from lambdas.adapters.storage import iter_document_lines


class HumanReviewRequest(BaseModel):
    """The human-review queue's message body."""

    run_id: str
    iteration: int = Field(ge=0)
    bucket: str
    tasks_key: str
    task_token: str


class LoopsStarted(BaseModel):
    """How many tasks a request asked for, and how many were newly handed out (loops started, tasks recorded)."""

    expected: int
    started: int


def read_tasks(bucket: str, tasks_key: str) -> list[HumanTask]:
    """The iteration's tasks; a bad line raises ValueError naming the file and line."""
    tasks = []
    for line_number, line in enumerate(iter_document_lines(bucket, tasks_key), start=1):
        try:
            tasks.append(HumanTask.model_validate_json(line))
        except ValueError as exc:
            raise ValueError(f"s3://{bucket}/{tasks_key} line {line_number}: {exc}") from exc
    return tasks


def start_review(request: HumanReviewRequest) -> LoopsStarted:
    """Record the batch and hand its tasks to the workforce; an empty batch resumes the run at once."""
    config = read_run_labeling_config(request.bucket, request.run_id)
    if config.workforce.kind == "simulated":
        raise ValueError(
            "workforce.kind 'simulated' is answered only by the local run's simulated workforce; "
            "deployed, use 'browser' (boxloop's labelling page) or 'a2i'"
        )
    tasks = read_tasks(request.bucket, request.tasks_key)
    record_human_batch(request.run_id, request.iteration, request.task_token, expected=len(tasks))
    if not tasks:
        send_task_success(request.task_token, {"answered": 0, "rejected": 0})
        mark_batch_success_sent(request.run_id, request.iteration)
        return LoopsStarted(expected=0, started=0)
    if config.workforce.kind == "browser":
        recorded = record_batch(request.run_id, request.iteration, request.tasks_key, tasks, config, datetime.now(UTC))
        return LoopsStarted(expected=len(tasks), started=len(tasks) if recorded else 0)
    return _start_human_loops(request, config, tasks)


def _start_human_loops(request: HumanReviewRequest, config: LabelingConfig, tasks: list[HumanTask]) -> LoopsStarted:
    """One A2I human loop per task (a loop that exists already is not started again)."""
    started = 0
    for task in tasks:
        content = human_loop_input(task, config.classes, request.run_id, request.iteration, request.tasks_key)
        name = human_loop_name(request.run_id, request.iteration, task.image_id)
        started += start_human_loop(name, content.model_dump_json())
    return LoopsStarted(expected=len(tasks), started=started)
