"""The labelling API's response bodies (the HTTP contract shared with the page in ``web/``).

The answer's request body is ``boxloop.browser_answers.BrowserAnswer``. Every error is
``{"error": str, "reasons"?: [str]}``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from boxloop.models import Box
from boxloop.task_leases import TaskStatus


class ClassView(BaseModel):
    id: int
    name: str


class BatchCounts(BaseModel):
    total: int = Field(ge=0)
    submitted: int = Field(ge=0)
    leased: int = Field(ge=0)
    open: int = Field(ge=0)


class BudgetView(BaseModel):
    hours_total: float
    hours_used: float


class BatchView(BaseModel):
    """``GET /api/batch``: the batch waiting for people (``batch_open`` false when none is)."""

    run_id: str | None
    iteration: int | None
    batch_open: bool
    classes: list[ClassView]
    instructions: str
    counts: BatchCounts
    budget: BudgetView


class TaskListItem(BaseModel):
    task_id: str
    status: TaskStatus


class TaskList(BaseModel):
    """``GET /api/tasks``: one page of the batch's tasks."""

    items: list[TaskListItem]
    next_cursor: str | None


class TaskView(BaseModel):
    """A task as the labeller sees it: never its purpose, so gold tasks look like any other."""

    task_id: str
    image_url: str
    width: int
    height: int
    boxes: list[Box]
    lease_expires_at: datetime


class Claimed(BaseModel):
    """``POST /api/claims`` → 200."""

    task: TaskView


class Accepted(BaseModel):
    """``POST /api/tasks/{task_id}/answer`` → 200."""

    status: Literal["accepted"] = "accepted"


class ErrorBody(BaseModel):
    error: str
    reasons: list[str] | None = None
