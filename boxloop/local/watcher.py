"""Watching one execution of a local run: the progress display, published versions copied out, state saved.

Each poll reads only the newest history events; iteration documents and versions are fetched when the state
changes, a state save waits while Lambdas run, and the run's configuration snapshot is read until it exists (the
display then shows the budget the run uses), so the watcher costs little beside the jobs it watches.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from boxloop.layout import latest_key, version_name
from boxloop.local.aws import LocalAws
from boxloop.local.human_workforce import SimulatedHumanReview
from boxloop.local.labelling_server import LabellingServer
from boxloop.local.lambda_runtime import INVOCATIONS, InvocationsBusyError
from boxloop.local.outputs import (
    MANIFESTS_DIR,
    download_failure_records,
    download_iteration_documents,
    download_manifests,
    failure_summary,
)
from boxloop.local.process_environment import PROCESS_ENVIRONMENT
from boxloop.local.progress import RunProgress
from boxloop.local.resources import LocalResources
from boxloop.local.run_config import read_run_config
from boxloop.local.snapshot import save_snapshot
from boxloop.models import IterationMetrics
from boxloop.publish import parse_latest, read_index
from infra.state_names import (
    HUMAN_STATES,
    PUBLISH_MANIFEST_VERSION,
    RECORD_FAILURE,
    RUN_POOL_INFERENCE,
    TRAINING_STATES,
)
from lambdas.adapters.runs import human_batch
from sagemaker_jobs.metric_definitions import training_progress

HISTORY_EVENTS_PER_POLL = 40
"""Newest history events read per poll: enough to find the latest state and the iteration it carries."""


def _iteration_of(state_input: str | None) -> int | None:
    """``$.iteration.number`` of a state's input (the iteration context RegisterPool returns), if any."""
    try:
        document = json.loads(state_input or "null")
    except json.JSONDecodeError:
        return None
    context = document.get("iteration") if isinstance(document, dict) else None
    number = context.get("number") if isinstance(context, dict) else None
    return number if isinstance(number, int) else None


def failed_state(sfn: Any, execution_arn: str) -> str | None:
    """The state whose error sent the execution to RecordFailure: the last state entered before it (None when the
    execution never reached RecordFailure)."""
    entered: str | None = None
    pages = sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn)
    for event in sorted((event for page in pages for event in page["events"]), key=lambda event: event["id"]):
        if not event["type"].endswith("StateEntered"):
            continue
        name = event["stateEnteredEventDetails"]["name"]
        if name == RECORD_FAILURE:
            return entered
        entered = name
    return None


def failed_run_message(
    s3: Any, sfn: Any, bucket: str, run_id: str, run_dir: Path, description: Mapping[str, Any]
) -> str:
    """Copy the run's failure records into ``run_dir/failures/`` and say what failed, where and why (RecordFailure's
    record, not the execution's final error, which moto reports as ``States.Runtime``)."""
    state = failed_state(sfn, description["executionArn"])
    return failure_summary(description, state, download_failure_records(s3, bucket, run_id, run_dir, state))


def _tables(resources: LocalResources) -> list[str]:
    return [resources.images_table, resources.runs_table, resources.idempotency_table]


@dataclass
class _StepState:
    name: str | None = None
    iteration: int | None = None


class RunWatcher:
    """Follows one execution: progress, published versions copied out, state saved at each version."""

    def __init__(
        self,
        aws: LocalAws,
        resources: LocalResources,
        run_id: str,
        run_dir: Path,
        progress: RunProgress,
        workforce: SimulatedHumanReview | LabellingServer,
        poll_seconds: float,
        saved_version: int | None,
    ) -> None:
        self._aws = aws
        self._resources = resources
        self._run_id = run_id
        self._run_dir = run_dir
        self._progress = progress
        self._workforce = workforce
        self._poll_seconds = poll_seconds
        self._saved_version = saved_version
        self._save_pending = False
        self._copied_version: int | None = None
        self._metrics_seen: dict[int, IterationMetrics] = {}
        self._errors_reported = 0
        self._budget_from_run_config = False
        self._s3 = aws.client("s3")
        self._sfn = aws.client("stepfunctions")
        self._sagemaker = aws.client("sagemaker")

    def watch(self, execution_arn: str) -> dict[str, Any]:
        """Poll until the execution ends; returns its final description (see the module docstring)."""
        last_step = _StepState()
        while True:
            description = self._sfn.describe_execution(executionArn=execution_arn)
            step = self._current_step(execution_arn, last_step)
            self._progress.update(state=step.name, iteration=step.iteration)
            self._show_run_budget()
            self._show_step_details(step)
            if step != last_step or self._save_pending:
                self._follow_versions(step)
            self._report_workforce_errors()
            if description["status"] != "RUNNING":
                self._follow_versions(_StepState(name=None))
                return description
            last_step = step
            time.sleep(self._poll_seconds)

    def _current_step(self, execution_arn: str, previous: _StepState) -> _StepState:
        """The last state entered, and the iteration number the latest state input carried."""
        events = self._sfn.get_execution_history(
            executionArn=execution_arn, reverseOrder=True, maxResults=HISTORY_EVENTS_PER_POLL
        )["events"]
        step = _StepState(iteration=previous.iteration)
        # Newest first (moto ignores reverseOrder and maxResults and returns the whole history oldest first).
        for event in sorted(events, key=lambda event: event["id"], reverse=True):
            if not event["type"].endswith("StateEntered"):
                continue
            details = event["stateEnteredEventDetails"]
            step.name = step.name or details["name"]
            iteration = _iteration_of(details.get("input"))
            if iteration is not None:
                step.iteration = iteration
                break
        if step.name is None:
            step.name = previous.name
        return step

    def _show_run_budget(self) -> None:
        """Show the budget of the configuration the run uses, once RegisterPool has snapshotted it."""
        if self._budget_from_run_config:
            return
        config = read_run_config(self._s3, self._resources.data_bucket, self._run_id)
        if config is not None:
            self._progress.update(human_budget_seconds=config.human_budget_seconds)
            self._budget_from_run_config = True

    def _show_step_details(self, step: _StepState) -> None:
        if step.name in TRAINING_STATES:
            self._show_training_eta()
        elif step.name == RUN_POOL_INFERENCE:
            self._show_inference_progress()
        elif step.name in HUMAN_STATES and step.iteration is not None:
            with PROCESS_ENVIRONMENT.applied(self._resources.shared_environment, owner="the progress display"):
                batch = human_batch(self._run_id, step.iteration)
            if batch is not None and batch.expected > 0:
                self._progress.update(step_progress=(min(batch.done, batch.expected), batch.expected))

    def _in_progress(self, kind: str) -> dict[str, Any] | None:
        if kind == "training":
            summaries = self._sagemaker.list_training_jobs(StatusEquals="InProgress")["TrainingJobSummaries"]
            return (
                self._sagemaker.describe_training_job(TrainingJobName=summaries[0]["TrainingJobName"])
                if summaries
                else None
            )
        summaries = self._sagemaker.list_transform_jobs(StatusEquals="InProgress")["TransformJobSummaries"]
        return (
            self._sagemaker.describe_transform_job(TransformJobName=summaries[0]["TransformJobName"])
            if summaries
            else None
        )

    def _show_training_eta(self) -> None:
        """Steps trained of those planned (from the job's log) and the time the rest will take at this pace."""
        job = self._in_progress("training")
        log_dir = self._aws.sagemaker.code.log_dir
        if job is None or log_dir is None:
            return
        log_path = log_dir / f"{job['TrainingJobName']}.log"
        progress = training_progress(log_path.read_text(errors="replace")) if log_path.exists() else None
        if progress is None:
            return
        done, planned = progress
        started = job.get("TrainingStartTime") or job["CreationTime"]
        elapsed = (datetime.now(UTC) - started).total_seconds()
        eta = elapsed / done * (planned - done) if done else None
        self._progress.update(step_progress=(min(done, planned), planned), step_eta_seconds=eta)

    def _count(self, uri: str) -> int:
        bucket, _, prefix = uri.removeprefix("s3://").partition("/")
        pages = self._s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return sum(len(page.get("Contents", [])) for page in pages)

    def _show_inference_progress(self) -> None:
        job = self._in_progress("transform")
        if job is None:
            return
        total = self._count(job["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"])
        done = min(self._count(job["TransformOutput"]["S3OutputPath"].rstrip("/") + "/"), total)
        self._progress.update(step_progress=(done, total))

    def _published_version(self) -> int | None:
        try:
            body = self._s3.get_object(Bucket=self._resources.data_bucket, Key=latest_key(self._run_id))["Body"].read()
        except self._s3.exceptions.NoSuchKey:
            return None
        return parse_latest(body)

    def _follow_versions(self, step: _StepState) -> None:
        """Copy metrics and new versions; save the state once the publishing Lambda has returned."""
        bucket = self._resources.data_bucket
        for metrics in download_iteration_documents(self._s3, bucket, self._run_id, self._run_dir):
            if self._metrics_seen.get(metrics.iteration) != metrics:
                self._metrics_seen[metrics.iteration] = metrics
                self._progress.update(metrics=metrics)
        version = self._published_version()
        if version is None or step.name == PUBLISH_MANIFEST_VERSION:
            return
        if version != self._copied_version:
            download_manifests(self._s3, bucket, self._run_id, self._run_dir)
            self._copied_version = version
        if version != self._saved_version:
            self._save_state(version)

    def _save_state(self, version: int) -> None:
        iteration = read_index(self._run_dir / MANIFESTS_DIR, version).iteration
        try:
            with INVOCATIONS.paused():
                snapshot = save_snapshot(
                    self._aws,
                    self._run_dir,
                    self._run_id,
                    version,
                    iteration,
                    self._resources.data_bucket,
                    _tables(self._resources),
                )
        except InvocationsBusyError:
            self._save_pending = True  # tried again at the next poll
            return
        self._save_pending = False
        self._saved_version = version
        self._progress.log(
            f"published manifest {version_name(version)} (iteration {snapshot.iteration}); state saved for --resume"
        )

    def _report_workforce_errors(self) -> None:
        for error in self._workforce.errors[self._errors_reported :]:
            self._progress.log(f"workforce: {error}")
        self._errors_reported = len(self._workforce.errors)
