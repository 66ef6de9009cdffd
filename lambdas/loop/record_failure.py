"""RecordFailure: write down why the run failed, release the active-run lock, say where to resume.

A Catch hands over the whole execution state with the error at ``$.failure``; the state
name is not part of it, so the document (``boxloop.run_failure.FailureRecord``) is named after
the execution and the iteration it was in (``failures/<execution>-i<NNNN>.json``, ``-start``
before any). ``resume_from`` is the iteration after the last published manifest version:
start an execution with that ``resume_from``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from boxloop.job_failures import job_failure_advice
from boxloop.layout import RunLayout, iteration_label
from boxloop.run_failure import failed_iteration, failure_record
from lambdas.adapters.runs import release_active_run, set_run_status
from lambdas.adapters.storage import write_document
from lambdas.loop.events import RecordFailureEvent
from lambdas.loop.run_data import latest_index
from lambdas.observability import lambda_handler, logger, metrics


def record_failure(event: RecordFailureEvent) -> dict:
    """Write ``runs/<run>/failures/<execution>-i<NNNN>.json``; release the lock; return its key and ``resume_from``."""
    state = event.state
    layout = RunLayout(bucket=state.bucket, run_id=state.run_id)
    iteration = failed_iteration(state.iteration, (state.model_extra or {}).get("progress"))
    record = failure_record(
        run_id=state.run_id,
        execution_name=event.execution_name,
        iteration=iteration,
        error=state.failure.Error,
        cause=state.failure.Cause,
        latest=latest_index(layout),
        recorded_at=datetime.now(UTC).isoformat(),
    )
    resume_from = record.resume_from
    suffix = f"i{iteration_label(iteration)}" if iteration is not None else "start"
    key = layout.failure(event.execution_name, suffix)
    advice = job_failure_advice(state.failure.Error, state.failure.Cause)
    document = record.model_dump() | ({"advice": advice} if advice else {})
    write_document(layout.bucket, key, json.dumps(document, indent=1))
    set_run_status(state.run_id, "failed")
    released = release_active_run(state.run_id)
    metrics.add_metric(name="RunsFailed", unit=MetricUnit.Count, value=1)
    logger.error(
        "run failed",
        extra={"failure_key": key, "error": state.failure.Error, "resume_from": resume_from, "advice": advice},
    )
    return {"failure_key": key, "resume_from": resume_from, "lock_released": released, "advice": advice}


@lambda_handler
@event_parser(model=RecordFailureEvent)
def handler(event: RecordFailureEvent, context: LambdaContext) -> dict:
    """Powertools entry point: see ``record_failure``."""
    return record_failure(event)
