"""A2I human-loop documents for bounding boxes, and the review of a finished loop.

- ``HumanLoopInput`` is the ``InputContent`` we start a loop with: what the worker template
  shows (``taskObject``, ``initialValue`` in crowd-bounding-box form, ``labels``) and what
  is needed to resume the run (``run_id``, ``iteration``, ``image_id``, ``purpose``, size,
  ``tasks_key``). A gold task's known answer stays in ``tasks.jsonl``, never in the loop input.
- ``HumanLoopOutput`` is A2I's ``output.json`` for a custom task (``humanAnswers[]`` with
  ``answerContent``, ``workerId``, ``timeSpentInSeconds``, ``submissionTime``; ``inputContent``
  echoing the input). The worker template names its crowd-bounding-box ``annotatedResult``.
- ``review_output`` turns an output into an accepted ``HumanLabel``, a rejection with reasons
  (the image returns to the pool), a gold score for the workers, or, when a worker said the
  image cannot be labelled (``answerContent.cannotLabel``, from boxloop's labelling page), an
  ``UnlabellableAnswer`` with their reasons (the image leaves the pool, reported).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Literal, TypeVar

from pydantic import BaseModel, Field, ValidationError

from boxloop.config import QcConfig
from boxloop.models import Box, HumanLabel, HumanTask, HumanTaskPurpose
from boxloop.qc import (
    ClassSizeStats,
    WorkerGoldScore,
    check_rules,
    consolidate_answers,
    score_workers_on_gold,
    workers_below_gold_minimum,
)

HUMAN_LOOP_NAME_PATTERN = re.compile(r"^[a-z0-9](-*[a-z0-9])*$")
"""A2I's rule for human-loop names (at most 63 characters)."""


class HumanLoopOutputError(ValueError):
    """An A2I output document that cannot be read; the message names the field."""


class CrowdBox(BaseModel):
    """A box as crowd-bounding-box reads (``initial-value``) and writes (``boundingBoxes``) it."""

    label: str
    left: float
    top: float
    width: float
    height: float


class HumanLoopInput(BaseModel):
    """``HumanLoopInput.InputContent`` of a boxloop human loop (echoed as ``inputContent``)."""

    taskObject: str
    initialValue: list[CrowdBox]
    labels: list[str] = Field(min_length=1)
    run_id: str
    iteration: int = Field(ge=0)
    image_id: str
    purpose: HumanTaskPurpose
    width: int = Field(gt=0)
    height: int = Field(gt=0)
    tasks_key: str


class ImageProperties(BaseModel):
    """The size of the image as the worker's browser loaded it."""

    width: int
    height: int


class AnnotatedResult(BaseModel):
    boundingBoxes: list[CrowdBox]
    inputImageProperties: ImageProperties


class CannotLabel(BaseModel):
    """A worker's statement that the image cannot be labelled, and why."""

    reason: str = Field(min_length=1)


class BoundingBoxAnswerContent(BaseModel):
    """``answerContent`` of the worker template (its crowd-bounding-box is named ``annotatedResult``);
    ``cannotLabel`` is set when the worker could not label the image (boxloop's labelling page)."""

    annotatedResult: AnnotatedResult
    cannotLabel: CannotLabel | None = None


class HumanAnswer(BaseModel):
    """One worker's answer in ``humanAnswers[]``."""

    answerContent: BoundingBoxAnswerContent
    workerId: str
    submissionTime: datetime
    acceptanceTime: datetime | None = None
    timeSpentInSeconds: float | None = Field(default=None, ge=0.0)
    openToSubmitSeconds: float | None = Field(default=None, ge=0.0)
    """boxloop's labelling page: seconds from opening the task to submitting it (active time is charged)."""

    @property
    def time_spent_seconds(self) -> float:
        """A2I's active time; without it, the time between accepting and submitting."""
        if self.timeSpentInSeconds is not None:
            return self.timeSpentInSeconds
        if self.acceptanceTime is not None:
            return max(0.0, (self.submissionTime - self.acceptanceTime).total_seconds())
        return 0.0


class HumanLoopOutput(BaseModel):
    """A2I's ``output.json`` for one finished human loop."""

    flowDefinitionArn: str | None = None
    humanLoopName: str
    humanAnswers: list[HumanAnswer] = Field(min_length=1)
    inputContent: HumanLoopInput

    @property
    def time_spent_seconds(self) -> float:
        return sum(answer.time_spent_seconds for answer in self.humanAnswers)


class AcceptedAnswer(BaseModel):
    """A QC-passed, consolidated label for the image."""

    kind: Literal["accepted"] = "accepted"
    label: HumanLabel


class _AnswerWithReasons(BaseModel):
    """The fields of an answer that gives no label, only reasons (each kind narrows ``kind``)."""

    kind: str
    image_id: str
    source_ref: str
    human_loop_name: str
    reasons: list[str] = Field(min_length=1)
    worker_ids: list[str]
    time_spent_seconds: float = Field(ge=0.0)
    submitted_at: datetime


class RejectedAnswer(_AnswerWithReasons):
    """A human answer that failed QC: the reasons; the image goes back to the pool."""

    kind: Literal["rejected"] = "rejected"


class GoldAnswer(BaseModel):
    """Workers scored on a gold image (known answer); produces no label."""

    kind: Literal["gold"] = "gold"
    image_id: str
    human_loop_name: str
    scores: dict[str, WorkerGoldScore]
    workers_below_minimum: list[str]
    time_spent_seconds: float = Field(ge=0.0)
    submitted_at: datetime


class UnlabellableAnswer(_AnswerWithReasons):
    """A worker said the image cannot be labelled: their reasons; the image leaves the pool, reported."""

    kind: Literal["unlabellable"] = "unlabellable"


ReviewedAnswer = AcceptedAnswer | RejectedAnswer | GoldAnswer | UnlabellableAnswer
AnswerWithReasonsT = TypeVar("AnswerWithReasonsT", RejectedAnswer, UnlabellableAnswer)


def human_loop_name(run_id: str, iteration: int, image_id: str) -> str:
    """A deterministic, A2I-valid loop name (≤ 63 chars, lowercase alphanumerics and hyphens).

    The same (run, iteration, image) always gives the same name, so a retried start is a
    no-op; the digest of all three keeps names unique across runs.
    """
    digest = hashlib.sha256(f"{run_id}/{iteration}/{image_id}".encode()).hexdigest()
    image_part = re.sub(r"[^a-z0-9]", "", image_id.lower())[:16] or "image"
    return f"i{iteration:04d}-{image_part}-{digest[:32]}"


def human_loop_input(
    task: HumanTask, classes: Sequence[str], run_id: str, iteration: int, tasks_key: str
) -> HumanLoopInput:
    """The loop's input content: the image, the detector's boxes to adjust, the class names,
    and where the task came from (``tasks_key``: the iteration's ``tasks.jsonl``)."""
    initial_value = [
        CrowdBox(label=classes[box.class_id], left=box.left, top=box.top, width=box.width, height=box.height)
        for box in task.prefill
    ]
    return HumanLoopInput(
        taskObject=task.source_ref,
        initialValue=initial_value,
        labels=list(classes),
        run_id=run_id,
        iteration=iteration,
        image_id=task.image_id,
        purpose=task.purpose,
        width=task.width,
        height=task.height,
        tasks_key=tasks_key,
    )


def parse_human_loop_output(raw: bytes | str) -> HumanLoopOutput:
    """Parse A2I's ``output.json``; HumanLoopOutputError names each bad field."""
    try:
        return HumanLoopOutput.model_validate(json.loads(raw))
    except json.JSONDecodeError as exc:
        raise HumanLoopOutputError(f"output.json is not valid JSON: {exc}") from exc
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}" for err in exc.errors()
        )
        raise HumanLoopOutputError(f"output.json is not a boxloop human-loop output: {problems}") from exc


def _worker_boxes(answer: HumanAnswer, labels: Sequence[str], task: HumanLoopInput) -> tuple[list[Box], list[str]]:
    """The worker's boxes in Ground Truth form, and the reasons they cannot be used as they are."""
    result = answer.answerContent.annotatedResult
    reasons = []
    seen = result.inputImageProperties
    if (seen.width, seen.height) != (task.width, task.height):
        reasons.append(
            f"worker {answer.workerId} saw a {seen.width}x{seen.height} image, the task's image is "
            f"{task.width}x{task.height}"
        )
    class_ids = {name: class_id for class_id, name in enumerate(labels)}
    boxes = []
    for number, crowd_box in enumerate(result.boundingBoxes, start=1):
        if crowd_box.label not in class_ids:
            reasons.append(f"worker {answer.workerId}: box {number} has unknown label {crowd_box.label!r}")
            continue
        if crowd_box.width < 0 or crowd_box.height < 0:
            reasons.append(f"worker {answer.workerId}: box {number} has a negative width or height")
            continue
        boxes.append(
            Box(
                class_id=class_ids[crowd_box.label],
                left=crowd_box.left,
                top=crowd_box.top,
                width=crowd_box.width,
                height=crowd_box.height,
            )
        )
    return boxes, reasons


def review_output(
    output: HumanLoopOutput,
    n_classes: int,
    qc: QcConfig,
    gold_boxes: Sequence[Box] | None = None,
    size_stats: ClassSizeStats | None = None,
) -> ReviewedAnswer:
    """QC one finished loop: gold tasks score their workers; others give a label or a rejection, or an
    ``UnlabellableAnswer`` when a worker said the image cannot be labelled (on a gold task that answer
    scores as no boxes).

    Answers from two or more workers are consolidated (``boxloop.qc.consolidate_answers``)
    before the rules (``boxloop.qc.check_rules``) are applied to the result.
    """
    task = output.inputContent
    worker_ids = [answer.workerId for answer in output.humanAnswers]
    submitted_at = max(answer.submissionTime for answer in output.humanAnswers)
    time_spent = output.time_spent_seconds

    def without_label(answer_type: type[AnswerWithReasonsT], reasons: list[str]) -> AnswerWithReasonsT:
        return answer_type(
            image_id=task.image_id,
            source_ref=task.taskObject,
            human_loop_name=output.humanLoopName,
            reasons=reasons,
            worker_ids=worker_ids,
            time_spent_seconds=time_spent,
            submitted_at=submitted_at,
        )

    per_worker = [_worker_boxes(answer, task.labels, task) for answer in output.humanAnswers]
    reasons = [reason for _, worker_reasons in per_worker for reason in worker_reasons]
    answers = [boxes for boxes, _ in per_worker]
    if task.purpose == HumanTaskPurpose.GOLD and gold_boxes is None:
        raise ValueError(f"gold task for image {task.image_id} has no known answer to score against")
    cannot_label = [
        f"worker {answer.workerId}: {answer.answerContent.cannotLabel.reason}"
        for answer in output.humanAnswers
        if answer.answerContent.cannotLabel is not None
    ]
    if cannot_label and task.purpose != HumanTaskPurpose.GOLD:
        return without_label(UnlabellableAnswer, cannot_label)
    if not reasons and task.purpose == HumanTaskPurpose.GOLD:
        scores = score_workers_on_gold(
            (answer.workerId, boxes, gold_boxes) for answer, boxes in zip(output.humanAnswers, answers, strict=True)
        )
        return GoldAnswer(
            image_id=task.image_id,
            human_loop_name=output.humanLoopName,
            scores=scores,
            workers_below_minimum=workers_below_gold_minimum(scores, qc),
            time_spent_seconds=time_spent,
            submitted_at=submitted_at,
        )
    if not reasons:
        boxes = consolidate_answers(answers) if len(answers) > 1 else answers[0]
        reasons = check_rules(boxes, task.width, task.height, n_classes, qc, size_stats)
    if reasons:
        return without_label(RejectedAnswer, reasons)
    label = HumanLabel(
        image_id=task.image_id,
        source_ref=task.taskObject,
        width=task.width,
        height=task.height,
        boxes=boxes,
        worker_ids=worker_ids,
        time_spent_seconds=time_spent,
        submitted_at=submitted_at,
        job_name=output.humanLoopName,
    )
    return AcceptedAnswer(label=label)
