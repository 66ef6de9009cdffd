"""Start the A2I human loops for one iteration's batch of human tasks.

The state machine's ``LabelByHumans`` state sends ``{run_id, iteration, bucket, tasks_key,
task_token}`` to the human-review queue and waits on the token. The batch item (token,
expected count) is recorded before any loop starts, so every answer finds it; loop names
are deterministic, so a redelivered message starts nothing twice.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from boxloop.human_loop import human_loop_input, human_loop_name
from boxloop.models import HumanTask
from lambdas.adapters.a2i import start_human_loop
from lambdas.adapters.documents import iter_document_lines, read_run_labeling_config
from lambdas.adapters.executions import send_task_success
from lambdas.adapters.runs import mark_batch_success_sent, record_human_batch


class HumanReviewRequest(BaseModel):
    """The human-review queue's message body."""

    run_id: str
    iteration: int = Field(ge=0)
    bucket: str
    tasks_key: str
    task_token: str


class LoopsStarted(BaseModel):
    """How many loops a request asked for, and how many were new."""

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
    """Record the batch and start one human loop per task; an empty batch resumes the run at once."""
    config = read_run_labeling_config(request.bucket, request.run_id)
    tasks = read_tasks(request.bucket, request.tasks_key)
    record_human_batch(request.run_id, request.iteration, request.task_token, expected=len(tasks))
    if not tasks:
        send_task_success(request.task_token, {"answered": 0, "rejected": 0})
        mark_batch_success_sent(request.run_id, request.iteration)
        return LoopsStarted(expected=0, started=0)
    started = 0
    for task in tasks:
        content = human_loop_input(task, config.classes, request.run_id, request.iteration, request.tasks_key)
        name = human_loop_name(request.run_id, request.iteration, task.image_id)
        started += start_human_loop(name, content.model_dump_json())
    return LoopsStarted(expected=len(tasks), started=started)
