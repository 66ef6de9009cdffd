"""Handle one human answer (an A2I loop's ``output.json`` or the labelling API's document in the same format):
find the open task it answers, QC the answer, store it, charge the budget, maybe resume the run.

The answer is trusted only as far as its task (``boxloop.answer_trust``): its run, iteration and image come
from its key and the run's stored ``tasks.jsonl``, never from its body. An answer that matches no open task
(no such run waiting, no batch for the iteration, no such task) or whose body disagrees with its task is
rejected: one record under ``rejected-answers/``, nothing written under any run, nothing charged.

Order matters for "nothing lost, nothing counted twice": the label (or rejection, or gold
score) is written once (S3 conditional write), then one DynamoDB transaction charges the
human seconds and counts the answer (guarded by a per-loop marker), then, when the batch
is complete, the waiting execution is resumed. Any retry repeats only what is missing.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel

from boxloop.answer_trust import (
    AnswerAddress,
    RejectedAnswerRecord,
    UntrustedAnswerError,
    answer_address,
    answered_task,
    trusted_output,
)
from boxloop.config import LabelingConfig
from boxloop.human_loop import (
    AcceptedAnswer,
    HumanLoopOutput,
    HumanLoopOutputError,
    RejectedAnswer,
    ReviewedAnswer,
    parse_human_loop_output,
    review_output,
)
from boxloop.layout import RunLayout, rejected_answer_key
from boxloop.models import HumanTask, HumanTaskPurpose
from lambdas.adapters.executions import send_task_success
from lambdas.adapters.labeling_config import read_run_labeling_config
from lambdas.adapters.runs import (
    active_run,
    count_human_answer,
    human_batch,
    human_seconds_used,
    mark_batch_success_sent,
)
from lambdas.adapters.storage import key_exists, read_document, write_document_once
from lambdas.human_review.requests import read_tasks

UNTRUSTED = "untrusted"
"""The outcome of an answer that matches no open task (``rejected-answers/``)."""


class OutputHandled(BaseModel):
    """What one output object led to (``image_id`` is None for an untrusted answer)."""

    image_id: str | None
    outcome: str
    stored_at: str
    counted: bool
    batch_completed: bool


class TrustedAnswer(BaseModel):
    """An answer matched to its open task: where it belongs, and the output as its task defines it."""

    run_id: str
    iteration: int
    task: HumanTask
    output: HumanLoopOutput
    config: LabelingConfig


def _open_task_run(address: AnswerAddress) -> str:
    """The run the answer's task belongs to: its key's run, or (A2I keys name none) the run waiting for people."""
    if address.run_id is not None:
        return address.run_id
    holder = active_run()
    if holder is None:
        raise UntrustedAnswerError("no run is active, so no task is waiting for this answer")
    return holder.run_id


def trusted_answer(bucket: str, output_key: str) -> TrustedAnswer:
    """The open task ``output_key`` answers and its output checked against it; UntrustedAnswerError otherwise."""
    address = answer_address(output_key)
    run_id = _open_task_run(address)
    if human_batch(run_id, address.iteration) is None:
        raise UntrustedAnswerError(f"run {run_id} has no human batch for iteration {address.iteration}")
    layout = RunLayout(bucket=bucket, run_id=run_id)
    tasks_key = layout.tasks(address.iteration)
    if not key_exists(bucket, tasks_key):
        raise UntrustedAnswerError(f"run {run_id} has no tasks for iteration {address.iteration}")
    task = answered_task(read_tasks(bucket, tasks_key), run_id, address.iteration, address.task_id)
    if task is None:
        raise UntrustedAnswerError(f"run {run_id} iteration {address.iteration} has no task {address.task_id}")
    raw = read_document(bucket, output_key)
    if raw is None:
        raise FileNotFoundError(f"s3://{bucket}/{output_key} does not exist")
    try:
        output = parse_human_loop_output(raw)
    except HumanLoopOutputError as exc:
        raise UntrustedAnswerError(str(exc)) from exc
    config = read_run_labeling_config(bucket, run_id)
    checked = trusted_output(output, task, config.classes, run_id, address.iteration, tasks_key)
    return TrustedAnswer(run_id=run_id, iteration=address.iteration, task=task, output=checked, config=config)


def _stored_document(review: ReviewedAnswer, layout: RunLayout, iteration: int) -> tuple[str, str]:
    """Where the reviewed answer is stored, and the document."""
    if isinstance(review, AcceptedAnswer):
        document = review.label.model_dump_json(indent=2)
        return layout.reviewed_answer(iteration, review.kind, review.label.image_id), document
    return layout.reviewed_answer(iteration, review.kind, review.image_id), review.model_dump_json(indent=2)


def _reject_untrusted(bucket: str, output_key: str, error: UntrustedAnswerError) -> OutputHandled:
    """Record the untrusted answer once under ``rejected-answers/``; nothing is stored in a run or charged."""
    key = rejected_answer_key(output_key)
    record = RejectedAnswerRecord(answer_key=output_key, reasons=[str(error)], rejected_at=datetime.now(UTC))
    write_document_once(bucket, key, record.model_dump_json(indent=2))
    return OutputHandled(image_id=None, outcome=UNTRUSTED, stored_at=key, counted=False, batch_completed=False)


def handle_output(bucket: str, output_key: str) -> OutputHandled:
    """Review, store and count one answer object; resume the run when its batch is complete."""
    try:
        answer = trusted_answer(bucket, output_key)
    except UntrustedAnswerError as exc:
        return _reject_untrusted(bucket, output_key, exc)
    run_id, iteration, task, output, config = answer.run_id, answer.iteration, answer.task, answer.output, answer.config
    gold_boxes = None
    if task.purpose == HumanTaskPurpose.GOLD:
        if task.gold_boxes is None:
            raise ValueError(f"gold task {output.humanLoopName} of run {run_id} has no known answer")
        gold_boxes = task.gold_boxes
    review = review_output(output, len(config.classes), config.qc, gold_boxes)
    stored_at, document = _stored_document(review, RunLayout(bucket=bucket, run_id=run_id), iteration)
    write_document_once(bucket, stored_at, document)
    counted = count_human_answer(
        run_id,
        iteration,
        output.humanLoopName,
        human_seconds=output.time_spent_seconds,
        rejected=isinstance(review, RejectedAnswer),
    )
    batch = human_batch(run_id, iteration)
    batch_completed = False
    if batch is not None and batch.complete and not batch.success_sent:
        send_task_success(
            batch.task_token,
            {
                "answered": batch.done,
                "rejected": batch.rejected,
                "human_seconds_used": human_seconds_used(run_id),
            },
        )
        mark_batch_success_sent(run_id, iteration)
        batch_completed = True
    return OutputHandled(
        image_id=task.image_id,
        outcome=review.kind,
        stored_at=stored_at,
        counted=counted,
        batch_completed=batch_completed,
    )
