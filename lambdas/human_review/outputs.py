"""Handle one finished A2I human loop: QC the answer, store it, charge the budget, maybe resume the run.

Order matters for "nothing lost, nothing counted twice": the label (or rejection, or gold
score) is written once (S3 conditional write), then one DynamoDB transaction charges the
human seconds and counts the answer (guarded by a per-loop marker), then, when the batch
is complete, the waiting execution is resumed. Any retry repeats only what is missing.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel

from boxloop.human_loop import (
    AcceptedAnswer,
    HumanLoopInput,
    RejectedAnswer,
    ReviewedAnswer,
    parse_human_loop_output,
    review_output,
)
from boxloop.models import Box, HumanTask, HumanTaskPurpose
from lambdas.adapters.documents import iter_document_lines, read_document, read_run_labeling_config, write_document_once
from lambdas.adapters.executions import send_task_success
from lambdas.adapters.runs import count_human_answer, human_batch, human_seconds_used, mark_batch_success_sent


class OutputHandled(BaseModel):
    """What one output object led to."""

    image_id: str
    outcome: str
    stored_at: str
    counted: bool
    batch_completed: bool


def human_prefix(run_id: str, iteration: int) -> str:
    """``runs/<run-id>/iterations/<NNNN>/human/``."""
    return f"runs/{run_id}/iterations/{iteration:04d}/human/"


def gold_answer_for(bucket: str, task: HumanLoopInput) -> Sequence[Box]:
    """The known answer of a gold task, from the iteration's ``tasks.jsonl``."""
    for line in iter_document_lines(bucket, task.tasks_key):
        candidate = HumanTask.model_validate_json(line)
        if candidate.image_id == task.image_id and candidate.gold_boxes is not None:
            return candidate.gold_boxes
    raise ValueError(f"no gold answer for image {task.image_id} in s3://{bucket}/{task.tasks_key}")


def _stored_document(review: ReviewedAnswer, prefix: str) -> tuple[str, str]:
    """Where the reviewed answer is stored, and the document."""
    if isinstance(review, AcceptedAnswer):
        return f"{prefix}labels/{review.label.image_id}.json", review.label.model_dump_json(indent=2)
    folder = "rejected" if isinstance(review, RejectedAnswer) else "gold"
    return f"{prefix}{folder}/{review.image_id}.json", review.model_dump_json(indent=2)


def handle_output(bucket: str, output_key: str) -> OutputHandled:
    """Review, store and count one A2I ``output.json``; resume the run when its batch is complete."""
    raw = read_document(bucket, output_key)
    if raw is None:
        raise FileNotFoundError(f"s3://{bucket}/{output_key} does not exist")
    output = parse_human_loop_output(raw)
    task = output.inputContent
    config = read_run_labeling_config(bucket, task.run_id)
    gold_boxes = gold_answer_for(bucket, task) if task.purpose == HumanTaskPurpose.GOLD else None
    review = review_output(output, len(config.classes), config.qc, gold_boxes)
    stored_at, document = _stored_document(review, human_prefix(task.run_id, task.iteration))
    write_document_once(bucket, stored_at, document)
    counted = count_human_answer(
        task.run_id,
        task.iteration,
        output.humanLoopName,
        human_seconds=output.time_spent_seconds,
        rejected=isinstance(review, RejectedAnswer),
    )
    batch = human_batch(task.run_id, task.iteration)
    batch_completed = False
    if batch is not None and batch.complete and not batch.success_sent:
        send_task_success(
            batch.task_token,
            {
                "answered": batch.done,
                "rejected": batch.rejected,
                "human_seconds_used": human_seconds_used(task.run_id),
            },
        )
        mark_batch_success_sent(task.run_id, task.iteration)
        batch_completed = True
    return OutputHandled(
        image_id=task.image_id,
        outcome=review.kind,
        stored_at=stored_at,
        counted=counted,
        batch_completed=batch_completed,
    )
