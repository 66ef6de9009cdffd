"""RecordFailure's decision: the iteration a failed execution was in, and where the run resumes.

A Catch hands over the whole execution state with the error at ``$.failure``; the iteration is
``$.iteration.number``, or before a resumed run's first iteration context ``$.progress.next_iteration``.
The run resumes with the iteration after its last published manifest version.
"""

from __future__ import annotations

from pydantic import BaseModel

from boxloop.publish import VersionIndex


class FailureRecord(BaseModel):
    """``runs/<run>/failures/<execution>-<iteration or start>.json``: why the run failed and where it resumes."""

    run_id: str
    execution_name: str
    iteration: int | None
    error: str
    cause: str
    last_published_version: int | None
    resume_from: int | None
    recorded_at: str


def failed_iteration(iteration_context: object, progress: object) -> int | None:
    """The iteration the execution was in: ``$.iteration.number``, else the one it was starting
    (``$.progress.next_iteration``: a resumed run that failed before its first context); None at the start."""
    number = iteration_context.get("number") if isinstance(iteration_context, dict) else None
    if isinstance(number, int):
        return number
    next_iteration = progress.get("next_iteration") if isinstance(progress, dict) else None
    return next_iteration if isinstance(next_iteration, int) else None


def failure_record(
    *,
    run_id: str,
    execution_name: str,
    iteration: int | None,
    error: str,
    cause: str,
    latest: VersionIndex | None,
    recorded_at: str,
) -> FailureRecord:
    """The failure document; ``latest`` is the run's last published version (None before any)."""
    return FailureRecord(
        run_id=run_id,
        execution_name=execution_name,
        iteration=iteration,
        error=error,
        cause=cause,
        last_published_version=latest.version if latest else None,
        resume_from=latest.iteration + 1 if latest is not None else None,
        recorded_at=recorded_at,
    )
