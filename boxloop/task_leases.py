"""Leases on the browser workforce's labelling tasks: who works on a task, until when, who may answer it.

A labeller claims a task and holds an expiring lease on it; while the lease is live nobody else can
claim the task, and once it lapses the task is claimable again (an abandoned image comes back). The
holder of a lapsed lease may still answer as long as nobody has claimed the task since. Times are
timezone-aware; the task table stores them as epoch seconds (``epoch_seconds``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import Enum

from pydantic import AwareDatetime, BaseModel, Field


class TaskStatus(str, Enum):
    """A task as a labeller sees it."""

    OPEN = "open"
    LEASED = "leased"
    SUBMITTED = "submitted"


class Lease(BaseModel):
    """One labeller's claim on a task."""

    worker_id: str = Field(min_length=1)
    granted_at: AwareDatetime
    expires_at: AwareDatetime

    def is_live(self, now: datetime) -> bool:
        """Whether the lease still keeps others from claiming the task."""
        return now < self.expires_at

    def held_by(self, worker_id: str, now: datetime) -> bool:
        """Whether ``worker_id`` holds this lease and it is live."""
        return self.worker_id == worker_id and self.is_live(now)


def grant_lease(worker_id: str, now: datetime, seconds: float) -> Lease:
    """A new lease for ``worker_id`` lasting ``seconds`` from ``now``."""
    if seconds <= 0:
        raise ValueError(f"a lease must last a positive time, got {seconds} s")
    return Lease(worker_id=worker_id, granted_at=now, expires_at=now + timedelta(seconds=seconds))


def visible_status(answered: bool, lease: Lease | None, now: datetime) -> TaskStatus:
    """``submitted`` once answered; ``leased`` while a live lease is held; otherwise ``open``."""
    if answered:
        return TaskStatus.SUBMITTED
    if lease is not None and lease.is_live(now):
        return TaskStatus.LEASED
    return TaskStatus.OPEN


def may_answer(answered: bool, lease: Lease | None, worker_id: str) -> bool:
    """Whether ``worker_id`` may answer: the task is unanswered and its latest lease is theirs.

    A lapsed lease still counts while nobody has claimed the task since: the work is kept, and the
    conditional write that stores the answer fails if someone else claims the task first.
    """
    return not answered and lease is not None and lease.worker_id == worker_id


def epoch_seconds(moment: datetime) -> float:
    """``moment`` as seconds since the epoch (how the task table orders claimable tasks)."""
    if moment.tzinfo is None:
        raise ValueError("times must be timezone-aware")
    return moment.timestamp()


def from_epoch_seconds(seconds: float) -> datetime:
    """The UTC time ``seconds`` after the epoch."""
    return datetime.fromtimestamp(seconds, tz=UTC)
