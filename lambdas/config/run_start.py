"""Start a run when the configuration is valid, enough images are registered and none is active.

Shared by the ingest and config Lambdas. Every step is idempotent: the active-run lock
is a conditional put holding a run id generated once, and the execution is named
``<run-id>-i0000``, so any retry or concurrent caller that finds the lock taken but its
execution not yet recorded re-issues the very same start (ExecutionAlreadyExists = done).
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from pydantic import BaseModel

from boxloop.config import ConfigError
from lambdas.adapters.executions import start_run_execution
from lambdas.adapters.labeling_config import read_labeling_config
from lambdas.adapters.runs import active_run, claim_active_run, mark_run_started, registered_image_count


class RunStartOutcome(BaseModel):
    """Whether this call started (or completed the start of) a run, and why or why not."""

    started: bool
    run_id: str | None
    reason: str


def new_run_id(now: datetime | None = None) -> str:
    """A fresh run id: UTC time of the claim plus a random suffix (safe in S3 keys and execution names)."""
    moment = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return f"run-{moment}-{secrets.token_hex(3)}"


def start_run_if_ready(bucket: str) -> RunStartOutcome:
    """Start a run on ``bucket`` if the conditions hold; safe to call after every registration."""
    holder = active_run()
    if holder is not None and holder.execution_arn is not None:
        return RunStartOutcome(started=False, run_id=holder.run_id, reason=f"run {holder.run_id} is active")
    if holder is None:
        try:
            config = read_labeling_config(bucket)
        except ConfigError as exc:
            return RunStartOutcome(started=False, run_id=None, reason=f"no valid configuration: {exc}")
        registered = registered_image_count()
        if registered < config.min_images_to_start:
            return RunStartOutcome(
                started=False,
                run_id=None,
                reason=f"{registered} of the {config.min_images_to_start} images needed to start are registered",
            )
        holder = claim_active_run(new_run_id())
        if holder.execution_arn is not None:
            return RunStartOutcome(started=False, run_id=holder.run_id, reason=f"run {holder.run_id} is active")
    execution_arn = start_run_execution(holder.run_id, bucket)
    mark_run_started(holder.run_id, execution_arn)
    return RunStartOutcome(started=True, run_id=holder.run_id, reason=f"started execution {execution_arn}")
