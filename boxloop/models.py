"""Typed records shared by every part of boxloop.

These are the contracts between the core library, the detector jobs, the Lambda
handlers and the local run. Boxes are always in Ground Truth's form: pixel
``left``/``top``/``width``/``height`` of the image as stored, with an integer
``class_id`` indexing the labelling configuration's class list.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum

from pydantic import BaseModel, ConfigDict, Field


class Box(BaseModel):
    """One axis-aligned box in Ground Truth's form (pixels)."""

    model_config = ConfigDict(frozen=True)

    class_id: int = Field(ge=0)
    left: float
    top: float
    width: float = Field(ge=0)
    height: float = Field(ge=0)

    @property
    def right(self) -> float:
        return self.left + self.width

    @property
    def bottom(self) -> float:
        return self.top + self.height

    def xyxy(self) -> tuple[float, float, float, float]:
        """The box as (x1, y1, x2, y2)."""
        return (self.left, self.top, self.right, self.bottom)


class ScoredBox(Box):
    """A predicted box with the detector's score in [0, 1]."""

    score: float = Field(ge=0.0, le=1.0)


class ImageRecord(BaseModel):
    """A registered image: its id is the SHA-256 of its bytes."""

    image_id: str = Field(pattern=r"^[0-9a-f]{64}$")
    source_ref: str
    width: int = Field(gt=0)
    height: int = Field(gt=0)
    registered_at: datetime


class Prediction(BaseModel):
    """One line of the detector's pool inference output.

    ``confidence`` is the per-image confidence c(image) in [0, 1];
    ``embedding`` is a small L2-normalised vector for diversity selection.
    ``error`` is set (and boxes empty) when the image could not be read.
    """

    image_id: str
    source_ref: str | None = None
    width: int | None = None
    height: int | None = None
    boxes: list[ScoredBox] = Field(default_factory=list)
    confidence: float = Field(default=0.0, ge=0.0, le=1.0)
    embedding: list[float] = Field(default_factory=list)
    model_version: str | None = None
    error: str | None = None


class LabelSource(str, Enum):
    """Who produced a manifest line's boxes."""

    HUMAN = "human"
    AUTO = "auto"
    AUDIT = "audit"


class HumanLabel(BaseModel):
    """A human answer for one image, after consolidation across workers."""

    image_id: str
    source_ref: str
    width: int = Field(gt=0)
    height: int = Field(gt=0)
    boxes: list[Box]
    worker_ids: list[str]
    time_spent_seconds: float = Field(ge=0.0)
    submitted_at: datetime
    job_name: str


class HumanTaskPurpose(str, Enum):
    """Why an image is shown to people (DESIGN.md, "The loop" and "Human work")."""

    INITIAL = "initial"
    UNCERTAIN = "uncertain"
    AUDIT = "audit"
    GOLD = "gold"
    REMAINING = "remaining"
    """An image the loop left unlabelled, finished by people after it stopped learning."""


class HumanTask(BaseModel):
    """One line of ``runs/<run-id>/iterations/<NNNN>/human/tasks.jsonl``.

    ``prefill`` are the detector's boxes shown to the worker to adjust;
    ``gold_boxes`` is the known answer of a gold task (never shown to workers).
    """

    image_id: str
    source_ref: str
    width: int = Field(gt=0)
    height: int = Field(gt=0)
    purpose: HumanTaskPurpose
    prefill: list[ScoredBox] = Field(default_factory=list)
    gold_boxes: list[Box] | None = None


class LabelRecord(BaseModel):
    """Our typed view of one Ground Truth augmented-manifest line.

    ``boxes`` become ``<attr>.annotations``; ``box_confidences`` become
    ``<attr>-metadata.objects`` (1.0 for human boxes). Everything else maps to
    ``<attr>-metadata`` keys (see DESIGN.md, "Manifest format").
    """

    image_id: str
    source_ref: str
    width: int = Field(gt=0)
    height: int = Field(gt=0)
    depth: int = 3
    boxes: list[Box]
    box_confidences: list[float]
    class_map: dict[str, str]
    label_source: LabelSource
    creation_date: str
    job_name: str
    iteration: int = Field(ge=0)
    model_version: str | None = None
    threshold: float | None = None
    image_confidence: float | None = None
    worker_ids: list[str] | None = None
    time_spent_seconds: float | None = None


class ThresholdSummary(BaseModel):
    """What an iteration's threshold decision stated (see ``boxloop.threshold``)."""

    threshold: float | None
    lower_bound: float | None
    target: float
    delta: float
    n_validation: int
    n_validation_above: int
    statement: str


class IterationMetrics(BaseModel):
    """``runs/<run-id>/iterations/<NNNN>/metrics.json``: one iteration's figures.

    Counts are for this iteration; ``*_total`` fields are cumulative over the run.
    """

    run_id: str
    iteration: int = Field(ge=0)
    manifest_version: int = Field(ge=0)
    model_version: str | None = None
    threshold: ThresholdSummary | None = None
    validation_map50: float | None = None
    validation_miou: float | None = None
    audit_miou: float | None = None
    images_in_pool: int = Field(ge=0)
    auto_labelled: int = Field(ge=0)
    human_labelled: int = Field(ge=0)
    audit_labelled: int = Field(ge=0)
    rejected_by_qc: int = Field(ge=0)
    unanswered: int = Field(ge=0)
    unlabellable: int = Field(default=0, ge=0)
    """Images a labeller said cannot be labelled (with a reason): they left the pool."""
    unlabelled_remaining: int = Field(ge=0)
    human_seconds: float = Field(ge=0.0)
    human_seconds_total: float = Field(ge=0.0)
    human_budget_seconds: float = Field(ge=0.0)
    finished_at: datetime
