"""RecordFailure: write down why the run failed, release the active-run lock, say where to resume.

A Catch hands over the whole execution state with the error at ``$.failure``; the state
name is not part of it, so the document is named after the execution and the iteration it
was in (``failures/<execution>-i<NNNN>.json``, ``-start`` before any). ``resume_from`` is the iteration after
the last published manifest version: start an execution with that ``resume_from``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.adapters.documents import write_document
from lambdas.adapters.runs import release_active_run, set_run_status
from lambdas.loop.events import FailedState, RecordFailureEvent
from lambdas.loop.run_data import latest_index
from lambdas.loop.run_layout import RunLayout, iteration_label

logger = Logger()
metrics = Metrics()
tracer = Tracer()


def failed_iteration(state: FailedState) -> int | None:
    """The iteration the execution was in: ``$.iteration.number``, else the one it was starting
    (``$.progress.next_iteration``: a resumed run that failed before its first context); None at the start."""
    number = state.iteration.get("number") if isinstance(state.iteration, dict) else None
    if isinstance(number, int):
        return number
    progress = (state.model_extra or {}).get("progress")
    next_iteration = progress.get("next_iteration") if isinstance(progress, dict) else None
    return next_iteration if isinstance(next_iteration, int) else None


def record_failure(event: RecordFailureEvent) -> dict:
    """Write ``runs/<run>/failures/<execution>-i<NNNN>.json``; release the lock; return its key and ``resume_from``."""
    state = event.state
    layout = RunLayout(bucket=state.bucket, run_id=state.run_id)
    iteration = failed_iteration(state)
    latest = latest_index(layout)
    resume_from = latest.iteration + 1 if latest is not None else None
    suffix = f"i{iteration_label(iteration)}" if iteration is not None else "start"
    key = layout.failure(event.execution_name, suffix)
    document = {
        "run_id": state.run_id,
        "execution_name": event.execution_name,
        "iteration": iteration,
        "error": state.failure.Error,
        "cause": state.failure.Cause,
        "last_published_version": latest.version if latest else None,
        "resume_from": resume_from,
        "recorded_at": datetime.now(UTC).isoformat(),
    }
    write_document(layout.bucket, key, json.dumps(document, indent=1))
    set_run_status(state.run_id, "failed")
    released = release_active_run(state.run_id)
    metrics.add_metric(name="RunsFailed", unit=MetricUnit.Count, value=1)
    logger.error("run failed", extra={"failure_key": key, "error": state.failure.Error, "resume_from": resume_from})
    return {"failure_key": key, "resume_from": resume_from, "lock_released": released}


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
@event_parser(model=RecordFailureEvent)
def handler(event: RecordFailureEvent, context: LambdaContext) -> dict:
    """Powertools entry point: see ``record_failure``."""
    return record_failure(event)
