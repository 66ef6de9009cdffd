"""How far a human answer is trusted: only as far as the stored task it answers.

An answer object (A2I's ``output.json`` or the labelling API's document in the same format) is
written into the bucket, so its body is data to check, never an address. Its task is found from
its key (the task id, which is the human-loop name, and for the labelling API's answers the run and
iteration) and the run's stored ``tasks.jsonl``; the run, iteration and image then come from that
task. An answer whose key is malformed, whose task is not open, or whose body disagrees with its task
is rejected (``UntrustedAnswerError``), so it writes nothing under any run and charges nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import datetime

from pydantic import BaseModel, Field

from boxloop.human_loop import HumanLoopOutput, human_loop_input, human_loop_name
from boxloop.layout import A2I_OUTPUT_FILE, A2I_OUTPUT_PREFIX, BROWSER_ANSWERS_PREFIX
from boxloop.models import HumanTask

RUN_ID_PATTERN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?")
"""A run id: letters, digits and inner hyphens, at most 64 characters (``run-<UTC time>-<hex>`` in practice)."""
IMAGE_ID_PATTERN = re.compile(r"[0-9a-f]{64}")
"""An image id: the SHA-256 of its bytes, lowercase hex."""
TASK_ID_PATTERN = re.compile(r"i(?P<iteration>[0-9]{4})-[a-z0-9]{1,16}-[0-9a-f]{32}")
"""A task id, which is its human-loop name (``boxloop.human_loop.human_loop_name``)."""
ITERATION_PATTERN = re.compile(r"[0-9]{4}")


class UntrustedAnswerError(ValueError):
    """An answer that matches no open task, or disagrees with it; the message gives the reasons."""


class AnswerAddress(BaseModel):
    """What an answer's key says: its task and iteration, and (labelling API answers only) its run."""

    task_id: str
    iteration: int = Field(ge=0)
    run_id: str | None
    """``None`` for A2I's keys, which name no run: the run is the one waiting for people."""


class RejectedAnswerRecord(BaseModel):
    """``rejected-answers/<sha256 of the key>.json``: an answer object that was not trusted, and why."""

    answer_key: str
    reasons: list[str] = Field(min_length=1)
    rejected_at: datetime


def answer_address(key: str) -> AnswerAddress:
    """Parse an answer key: ``a2i-output/<flow>/<yyyy>/<mm>/<dd>/<hh>/<mm>/<ss>/<task-id>/output.json`` or
    ``answers/<run-id>/<NNNN>/<task-id>/output.json``; raises UntrustedAnswerError on any other shape."""
    parts = key.split("/")
    if parts[-1] != A2I_OUTPUT_FILE or len(parts) < 2:
        raise UntrustedAnswerError(f"{key!r} is not an answer key (it must end in /{A2I_OUTPUT_FILE})")
    task_id = parts[-2]
    match = TASK_ID_PATTERN.fullmatch(task_id)
    if match is None:
        raise UntrustedAnswerError(f"{key!r}: {task_id!r} is not a task id")
    iteration = int(match["iteration"])
    if key.startswith(A2I_OUTPUT_PREFIX) and len(parts) == 10:
        return AnswerAddress(task_id=task_id, iteration=iteration, run_id=None)
    if key.startswith(BROWSER_ANSWERS_PREFIX) and len(parts) == 5:
        run_id, iteration_part = parts[1], parts[2]
        if RUN_ID_PATTERN.fullmatch(run_id) is None:
            raise UntrustedAnswerError(f"{key!r}: {run_id!r} is not a run id")
        if ITERATION_PATTERN.fullmatch(iteration_part) is None or int(iteration_part) != iteration:
            raise UntrustedAnswerError(f"{key!r}: iteration {iteration_part!r} is not the task's ({iteration:04d})")
        return AnswerAddress(task_id=task_id, iteration=iteration, run_id=run_id)
    raise UntrustedAnswerError(f"{key!r} is not an A2I output key nor a labelling API answer key")


def answered_task(tasks: Iterable[HumanTask], run_id: str, iteration: int, task_id: str) -> HumanTask | None:
    """The stored task whose id (human-loop name) is ``task_id``, if the run's iteration has one."""
    if RUN_ID_PATTERN.fullmatch(run_id) is None:
        raise UntrustedAnswerError(f"{run_id!r} is not a run id")
    for task in tasks:
        if human_loop_name(run_id, iteration, task.image_id) == task_id:
            if IMAGE_ID_PATTERN.fullmatch(task.image_id) is None:
                raise UntrustedAnswerError(f"task {task_id}: stored image id {task.image_id!r} is not a SHA-256")
            return task
    return None


def trusted_output(
    output: HumanLoopOutput,
    task: HumanTask,
    classes: Sequence[str],
    run_id: str,
    iteration: int,
    tasks_key: str,
) -> HumanLoopOutput:
    """``output`` with its ``inputContent`` rebuilt from the stored task; UntrustedAnswerError lists every field
    of the body that disagrees with the task (a genuine answer echoes its task exactly)."""
    expected = human_loop_input(task, classes, run_id, iteration, tasks_key)
    task_id = human_loop_name(run_id, iteration, task.image_id)
    claimed = output.inputContent
    mismatches = [
        f"{name} is {got!r}, its task's is {want!r}"
        for name, got, want in (
            ("humanLoopName", output.humanLoopName, task_id),
            ("inputContent.run_id", claimed.run_id, run_id),
            ("inputContent.iteration", claimed.iteration, iteration),
            ("inputContent.image_id", claimed.image_id, task.image_id),
            ("inputContent.taskObject", claimed.taskObject, task.source_ref),
        )
        if got != want
    ]
    if mismatches:
        raise UntrustedAnswerError(f"the answer disagrees with task {task_id}: " + "; ".join(mismatches))
    return output.model_copy(update={"inputContent": expected})
