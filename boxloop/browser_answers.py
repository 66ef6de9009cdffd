"""Answers from boxloop's labelling page: what a labeller submits, its checks, and the answer document it becomes.

A submitted ``BrowserAnswer`` is checked against its task (``answer_problems``: the outcome's rules,
the QC rules of ``boxloop.qc.check_rules`` that need no other answers, and the times), so a bad answer
is refused with its reasons before anything is stored. An accepted one becomes the same answer
document A2I writes (``answer_document``: ``humanAnswers[]`` with ``answerContent``, ``workerId``,
``submissionTime``, ``acceptanceTime``, ``timeSpentInSeconds``), stored at ``boxloop.layout.browser_answer_key``;
the human-answer Lambda then QCs, stores, charges and resumes exactly as for A2I. The active seconds
the page measured are charged (``timeSpentInSeconds``); open→submit seconds are kept beside them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import Enum

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from boxloop.config import QcConfig
from boxloop.human_loop import (
    AnnotatedResult,
    BoundingBoxAnswerContent,
    CannotLabel,
    CrowdBox,
    HumanAnswer,
    HumanLoopInput,
    HumanLoopOutput,
    ImageProperties,
)
from boxloop.models import Box
from boxloop.qc import check_rules

MAX_BOXES = 500
MAX_REASON_CHARS = 500
CLOCK_TOLERANCE_SECONDS = 2.0
"""Slack when comparing the page's times with each other and with the server's."""


class AnswerOutcome(str, Enum):
    """What the labeller decided about the image."""

    BOXES = "boxes"
    NO_OBJECTS = "no_objects"
    CANNOT_LABEL = "cannot_label"


class AnswerBox(Box):
    """A box as the page sends it (original-image pixels); numbers must be finite."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class BrowserAnswer(BaseModel):
    """The body of ``POST /api/tasks/{task_id}/answer``."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    outcome: AnswerOutcome
    boxes: list[AnswerBox] = Field(default_factory=list)
    reason: str | None = None
    active_seconds: float = Field(ge=0.0)
    opened_at: AwareDatetime
    submitted_at: AwareDatetime

    @property
    def open_to_submit_seconds(self) -> float:
        return max(0.0, (self.submitted_at - self.opened_at).total_seconds())


def _outcome_problems(answer: BrowserAnswer) -> list[str]:
    reason = (answer.reason or "").strip()
    problems = []
    if answer.outcome == AnswerOutcome.BOXES and not answer.boxes:
        problems.append("outcome 'boxes' needs at least one box")
    if answer.outcome != AnswerOutcome.BOXES and answer.boxes:
        problems.append(f"outcome '{answer.outcome.value}' carries no boxes, got {len(answer.boxes)}")
    if answer.outcome == AnswerOutcome.CANNOT_LABEL and not reason:
        problems.append("outcome 'cannot_label' needs a reason")
    if answer.outcome != AnswerOutcome.CANNOT_LABEL and reason:
        problems.append(f"a reason is given only with outcome 'cannot_label', not '{answer.outcome.value}'")
    if len(reason) > MAX_REASON_CHARS:
        problems.append(f"the reason has {len(reason)} characters, at most {MAX_REASON_CHARS} are allowed")
    if len(answer.boxes) > MAX_BOXES:
        problems.append(f"{len(answer.boxes)} boxes, at most {MAX_BOXES} are allowed")
    return problems


def _time_problems(answer: BrowserAnswer, lease_granted_at: datetime, received_at: datetime) -> list[str]:
    problems = []
    if answer.submitted_at < answer.opened_at:
        problems.append("submitted_at is before opened_at")
    elif answer.active_seconds > answer.open_to_submit_seconds + CLOCK_TOLERANCE_SECONDS:
        problems.append(
            f"active_seconds {answer.active_seconds:.1f} exceeds the {answer.open_to_submit_seconds:.1f} s "
            "between opened_at and submitted_at"
        )
    held_seconds = (received_at - lease_granted_at).total_seconds()
    if answer.active_seconds > held_seconds + CLOCK_TOLERANCE_SECONDS:
        problems.append(
            f"active_seconds {answer.active_seconds:.1f} exceeds the {held_seconds:.1f} s since the task was claimed"
        )
    return problems


def answer_problems(
    answer: BrowserAnswer,
    width: int,
    height: int,
    n_classes: int,
    qc: QcConfig,
    lease_granted_at: datetime,
    received_at: datetime,
) -> list[str]:
    """Every reason the answer cannot be accepted for a ``width``×``height`` task (empty when it can).

    Boxes must lie inside the image (within ``qc.boundary_tolerance_px``), be at least
    ``qc.min_box_side_px`` on each side, name a known class and not duplicate each other (the
    QC rules that need no other answers); the active time can exceed neither the page's
    open→submit time nor the time since the task was claimed (both with a little slack).
    """
    problems = _outcome_problems(answer)
    problems.extend(check_rules(answer.boxes, width, height, n_classes, qc))
    problems.extend(_time_problems(answer, lease_granted_at, received_at))
    return problems


def answer_document(
    task_id: str,
    loop_input: HumanLoopInput,
    worker_id: str,
    answer: BrowserAnswer,
    lease_granted_at: datetime,
    received_at: datetime,
) -> HumanLoopOutput:
    """The A2I-format answer document of an accepted answer (``humanLoopName`` is the task id).

    ``submissionTime`` and ``acceptanceTime`` are the server's times (receipt, lease granted), so
    the page's clock never decides anything; the page's active seconds are charged.
    """
    classes: Sequence[str] = loop_input.labels
    boxes = [
        CrowdBox(label=classes[box.class_id], left=box.left, top=box.top, width=box.width, height=box.height)
        for box in answer.boxes
    ]
    cannot_label = (
        CannotLabel(reason=(answer.reason or "").strip()) if answer.outcome == AnswerOutcome.CANNOT_LABEL else None
    )
    content = BoundingBoxAnswerContent(
        annotatedResult=AnnotatedResult(
            boundingBoxes=boxes,
            inputImageProperties=ImageProperties(width=loop_input.width, height=loop_input.height),
        ),
        cannotLabel=cannot_label,
    )
    human_answer = HumanAnswer(
        answerContent=content,
        workerId=worker_id,
        submissionTime=received_at,
        acceptanceTime=lease_granted_at,
        timeSpentInSeconds=answer.active_seconds,
        openToSubmitSeconds=answer.open_to_submit_seconds,
    )
    return HumanLoopOutput(humanLoopName=task_id, humanAnswers=[human_answer], inputContent=loop_input)
