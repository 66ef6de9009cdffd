"""One local run, start to end: the stack on the embedded AWS, images in, the loop watched, outputs out.

``run_locally`` (a new run):

1. synthesize the stack and create its resources on a fresh ``LocalAws``;
2. start the simulated workforce (it answers the human-review queue from the known truth);
3. upload every file of the images folder to ``incoming/`` (ingest registers or quarantines each);
4. upload ``config/labeling.json`` last: the config Lambda's start-run check
   (``lambdas.config.run_start``) starts the run with every valid image registered;
5. watch the execution (``RunWatcher``): progress, each published version copied to the output
   folder and the state saved (``snapshot``) while no Lambda runs;
6. at the end, write the outputs (``outputs``) and point ``<out>/latest`` at the run; ``usage.json``
   (``boxloop.local.usage``) is written whenever the process ends, interrupted or not.

``resume_locally`` continues the run under ``<out>/latest`` from its last published version: the
saved bucket and tables are restored into a fresh ``LocalAws`` before any event is wired, and the
execution ``<run-id>-i<NNNN>`` starts with ``resume_from`` = NNNN (the iteration after that
version's). Labels already published are kept; nothing is relabelled.
"""

from __future__ import annotations

import json
import signal
import threading
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from pydantic import BaseModel
from rich.console import Console

from boxloop.config import LabelingConfig, parse_config
from boxloop.local.aws import LocalAws
from boxloop.local.human_workforce import SimulatedHumanReview, image_files, truth_by_image_id
from boxloop.local.lambda_runtime import INVOCATIONS, InvocationsBusyError
from boxloop.local.outputs import (
    download_exports,
    download_iteration_documents,
    download_manifests,
    download_quarantine_reasons,
    download_run_config,
    finalize_report_figures,
    point_latest_at,
    write_output_manifest,
    write_report,
    write_usage,
)
from boxloop.local.process_environment import PROCESS_ENVIRONMENT
from boxloop.local.progress import RunProgress
from boxloop.local.resources import LocalResources, create_resources, synthesize_template
from boxloop.local.sagemaker_runtime import SageMakerJobCode
from boxloop.local.snapshot import Snapshot, read_snapshot, restore_snapshot, save_snapshot
from boxloop.local.usage import USAGE, start_recording, step_functions_usage
from boxloop.manifest import write_bytes_atomic
from boxloop.models import Box, IterationMetrics
from boxloop.publish import latest_key, parse_latest
from boxloop.report import RunReport
from boxloop.workforce import SimulatedWorkforce
from lambdas.adapters.documents import CONFIG_KEY, CONFIG_STATUS_KEY
from lambdas.adapters.executions import execution_name
from lambdas.adapters.runs import active_run, claim_active_run, human_batch, mark_run_started, registered_image_count

INCOMING_PREFIX = "incoming/"
RUN_SPEC_FILE = "run.json"
JOB_LOGS_DIR = "job-logs"
LAMBDA_RUNTIME_ENVIRONMENT = {
    "POWERTOOLS_LOG_LEVEL": "WARNING",
    "POWERTOOLS_METRICS_DISABLED": "true",
    "POWERTOOLS_TRACE_DISABLED": "true",
}
"""What the local Lambda runtime sets for every function: handlers' logs and metrics stay off the display."""
HUMAN_STATES = frozenset({"LabelInitialSampleByHumans", "LabelUncertainImagesByHumans"})
TRAINING_STATES = frozenset({"TrainDetector", "TrainDetectorFromPreviousModel"})
INFERENCE_STATE = "RunPoolInference"
PUBLISH_STATE = "PublishManifestVersion"
# Newest history events read per poll: enough to find the latest state and the iteration it carries.
HISTORY_EVENTS_PER_POLL = 40
ONE_WRITER = 1
"""Uploads and simulated answers go one at a time: each triggers a Lambda that writes DynamoDB
transactions, and moto's ``TransactWriteItems`` is not safe against concurrent writes to a table."""


class LocalRunError(RuntimeError):
    """The local run could not start, failed, or was interrupted; the message says what to do."""


class RunSpec(BaseModel):
    """What a local run was started with (``<out>/<run-id>/run.json``): all ``--resume`` needs besides the state."""

    run_id: str
    images_dir: Path
    truth_path: Path
    environment: str
    stack_settings: dict[str, Any]
    started_at: datetime


@dataclass(frozen=True)
class RunResult:
    """Where a finished run's outputs are, and its report."""

    run_id: str
    run_dir: Path
    report: RunReport
    quarantined: list[Path]
    elapsed_seconds: float


@contextmanager
def _local_process() -> Iterator[None]:
    """While a run is watched: SIGTERM becomes KeyboardInterrupt (so jobs and the server stop cleanly),
    and Powertools' "no metrics to publish" warnings (metrics are off locally) stay off the display."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="No application metrics to publish")
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = signal.signal(signal.SIGTERM, interrupt)
        try:
            yield
        finally:
            signal.signal(signal.SIGTERM, previous)


TRANSFORM_ENVIRONMENT = {"BOXLOOP_DECODE_WORKERS": "0"}
"""Transform jobs run in this process, beside the moto server's threads: the inference handler decodes
images in its own thread, because forking decode workers from a multi-threaded process can deadlock."""


def _job_code(out_dir: Path) -> SageMakerJobCode:
    return SageMakerJobCode(log_dir=out_dir / JOB_LOGS_DIR, transform_environment=TRANSFORM_ENVIRONMENT)


def _lambda_environment(resources: LocalResources) -> dict[str, str]:
    """The variables the loop's adapters read (every function has the same tables and bucket)."""
    return next(iter(resources.function_environment.values()))


def _tables(resources: LocalResources) -> list[str]:
    return [resources.images_table, resources.runs_table, resources.idempotency_table]


# ------------------------------------------------------------------------------------------- watching


def _iteration_of(state_input: str | None) -> int | None:
    """``$.iteration.number`` of a state's input (the iteration context RegisterPool returns), if any."""
    try:
        document = json.loads(state_input or "null")
    except json.JSONDecodeError:
        return None
    context = document.get("iteration") if isinstance(document, dict) else None
    number = context.get("number") if isinstance(context, dict) else None
    return number if isinstance(number, int) else None


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
        workforce: SimulatedHumanReview,
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
        self._s3 = aws.client("s3")
        self._sfn = aws.client("stepfunctions")
        self._sagemaker = aws.client("sagemaker")

    def watch(self, execution_arn: str) -> dict[str, Any]:
        """Poll until the execution ends; returns its final description.

        Each poll reads only the newest history events; iteration documents and versions are fetched when
        the state changes, while a state save waits for running Lambdas, and at the end, so the watcher costs
        little beside the jobs it watches.
        """
        last_step = _StepState()
        while True:
            description = self._sfn.describe_execution(executionArn=execution_arn)
            step = self._current_step(execution_arn, last_step)
            self._progress.update(state=step.name, iteration=step.iteration)
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

    def _show_step_details(self, step: _StepState) -> None:
        if step.name in TRAINING_STATES:
            self._show_training_eta()
        elif step.name == INFERENCE_STATE:
            self._show_inference_progress()
        elif step.name in HUMAN_STATES and step.iteration is not None:
            with PROCESS_ENVIRONMENT.applied(_lambda_environment(self._resources), owner="the progress display"):
                batch = human_batch(self._run_id, step.iteration)
            if batch is not None and batch.expected > 0:
                self._progress.update(step_progress=(min(batch.done, batch.expected), batch.expected))

    def _in_progress(self, kind: str) -> dict[str, Any] | None:
        if kind == "training":
            summaries = self._sagemaker.list_training_jobs(StatusEquals="InProgress")["TrainingJobSummaries"]
            return self._sagemaker.describe_training_job(TrainingJobName=summaries[0]["TrainingJobName"]) if summaries else None
        summaries = self._sagemaker.list_transform_jobs(StatusEquals="InProgress")["TransformJobSummaries"]
        return self._sagemaker.describe_transform_job(TransformJobName=summaries[0]["TransformJobName"]) if summaries else None

    def _show_training_eta(self) -> None:
        job = self._in_progress("training")
        if job is None or "max_seconds" not in job.get("HyperParameters", {}):
            return
        started = job.get("TrainingStartTime") or job["CreationTime"]
        elapsed = (datetime.now(UTC) - started).total_seconds()
        self._progress.update(step_eta_seconds=float(job["HyperParameters"]["max_seconds"]) - elapsed)

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
        if version is None or step.name == PUBLISH_STATE:
            return
        if version != self._copied_version:
            download_manifests(self._s3, bucket, self._run_id, self._run_dir)
            self._copied_version = version
        if version != self._saved_version:
            self._save_state(version)

    def _save_state(self, version: int) -> None:
        index = json.loads((self._run_dir / "manifests" / f"v{version:04d}" / "index.json").read_bytes())
        try:
            with INVOCATIONS.paused():
                snapshot = save_snapshot(
                    self._aws,
                    self._run_dir,
                    self._run_id,
                    version,
                    int(index["iteration"]),
                    self._resources.data_bucket,
                    _tables(self._resources),
                )
        except InvocationsBusyError:
            self._save_pending = True  # tried again at the next poll
            return
        self._save_pending = False
        self._saved_version = version
        self._progress.log(f"published manifest v{version:04d} (iteration {snapshot.iteration}); state saved for --resume")

    def _report_workforce_errors(self) -> None:
        for error in self._workforce.errors[self._errors_reported :]:
            self._progress.log(f"simulated workforce: {error}")
        self._errors_reported = len(self._workforce.errors)


# ------------------------------------------------------------------------------------------- the run


def _upload_images(aws: LocalAws, bucket: str, images_dir: Path, console: Console) -> int:
    """Upload every file under ``images_dir`` to ``incoming/<relative path>``; returns how many."""
    files = image_files(images_dir)
    s3 = aws.client("s3")

    def upload(path: Path) -> None:
        s3.put_object(Bucket=bucket, Key=INCOMING_PREFIX + path.relative_to(images_dir).as_posix(), Body=path.read_bytes())

    started = time.monotonic()
    for path in files:
        upload(path)
    console.print(f"uploaded {len(files):,} files to incoming/ in {time.monotonic() - started:.0f} s (ingest ran on each)")
    return len(files)


def _start_by_config_upload(aws: LocalAws, resources: LocalResources, config_bytes: bytes) -> tuple[str, str]:
    """Upload the configuration; the config Lambda starts the run. Returns (run id, execution ARN)."""
    s3 = aws.client("s3")
    s3.put_object(Bucket=resources.data_bucket, Key=CONFIG_KEY, Body=config_bytes)
    try:
        status = json.loads(s3.get_object(Bucket=resources.data_bucket, Key=CONFIG_STATUS_KEY)["Body"].read())
    except s3.exceptions.NoSuchKey as exc:
        raise LocalRunError(f"the config Lambda wrote no {CONFIG_STATUS_KEY}: it failed on the upload") from exc
    if not status["valid"]:
        raise LocalRunError(f"the labelling configuration was rejected: {status['error']}")
    with PROCESS_ENVIRONMENT.applied(_lambda_environment(resources), owner="the local run"):
        holder = active_run()
        registered = registered_image_count()
    if holder is None or holder.execution_arn is None:
        needed = status.get("min_images_to_start")
        raise LocalRunError(
            f"no run started: {registered} valid images are registered and the configuration asks for at least "
            f"{needed} (min_images_to_start); see the quarantine/ reasons for rejected files"
        )
    return holder.run_id, holder.execution_arn


def _start_resumed_execution(resources: LocalResources, snapshot: Snapshot, sfn: Any) -> str:
    """Start ``<run-id>-i<NNNN>`` with ``resume_from`` and hold the active-run lock for it."""
    name = execution_name(snapshot.run_id, snapshot.resume_from)
    execution_input = {
        "run_id": snapshot.run_id,
        "bucket": resources.data_bucket,
        "config_key": CONFIG_KEY,
        "resume_from": snapshot.resume_from,
    }
    with PROCESS_ENVIRONMENT.applied(_lambda_environment(resources), owner="the local run"):
        holder = active_run() or claim_active_run(snapshot.run_id)
        if holder.run_id != snapshot.run_id:
            raise LocalRunError(f"the saved state holds the active-run lock for {holder.run_id}, not {snapshot.run_id}")
        arn = sfn.start_execution(
            stateMachineArn=resources.state_machine_arn, name=name, input=json.dumps(execution_input)
        )["executionArn"]
        mark_run_started(snapshot.run_id, arn)
    return arn


def _finish(
    aws: LocalAws,
    resources: LocalResources,
    run_id: str,
    run_dir: Path,
    out_dir: Path,
    truth: Mapping[str, Sequence[Box]],
    description: dict[str, Any],
    started: float,
) -> RunResult:
    if description["status"] != "SUCCEEDED":
        raise LocalRunError(
            f"execution {description['name']} ended {description['status']}: {description.get('error', '')} "
            f"{description.get('cause', '')}".rstrip()
            + f"\nthe failure is recorded under runs/{run_id}/failures/; continue with --resume"
        )
    s3, bucket = aws.client("s3"), resources.data_bucket
    run_config = download_run_config(s3, bucket, run_id, run_dir)
    iterations = download_iteration_documents(s3, bucket, run_id, run_dir)
    download_manifests(s3, bucket, run_id, run_dir)
    quarantined = download_quarantine_reasons(s3, bucket, run_dir)
    write_output_manifest(run_dir)
    download_exports(s3, bucket, run_id, run_dir)
    images_total = int(finalize_report_figures(s3, bucket, run_id)["images_total"])
    report = write_report(s3, run_dir, run_id, run_config, iterations, truth, images_total)
    point_latest_at(out_dir, run_id)
    return RunResult(run_id, run_dir, report, quarantined, time.monotonic() - started)


def _watch_and_finish(
    aws: LocalAws,
    resources: LocalResources,
    spec: RunSpec,
    out_dir: Path,
    config: LabelingConfig,
    truth: Mapping[str, Sequence[Box]],
    review: SimulatedHumanReview,
    execution_arn: str,
    saved_version: int | None,
    console: Console,
    poll_seconds: float,
    started: float,
) -> RunResult:
    run_dir = out_dir / spec.run_id
    point_latest_at(out_dir, spec.run_id)
    report: RunReport | None = None
    try:
        with RunProgress(spec.run_id, config.human_budget_seconds, console=console) as progress:
            watcher = RunWatcher(aws, resources, spec.run_id, run_dir, progress, review, poll_seconds, saved_version)
            description = watcher.watch(execution_arn)
        result = _finish(aws, resources, spec.run_id, run_dir, out_dir, truth, description, started)
        report = result.report
    finally:
        _write_usage(aws, resources, spec.run_id, run_dir, execution_arn, report)
    return result


def _write_usage(
    aws: LocalAws, resources: LocalResources, run_id: str, run_dir: Path, execution_arn: str, report: RunReport | None
) -> None:
    """``usage.json`` with what this process recorded (run size from the report, when the run finished)."""
    step_functions = step_functions_usage(aws.client("stepfunctions"), [execution_arn], resources.definition)
    usage = USAGE.usage(run_id, resources.stack_name, step_functions)
    if report is not None:
        usage = usage.model_copy(
            update={
                "images_total": report.images_total,
                "images_auto_labelled": report.images_auto_labelled,
                "images_human_labelled": report.images_human_labelled,
                "iterations": report.iterations,
            }
        )
    write_usage(run_dir, usage)


def run_locally(
    images_dir: Path,
    truth_path: Path,
    config_bytes: bytes,
    out_dir: Path,
    *,
    environment: str = "dev",
    stack_settings: Mapping[str, Any] | None = None,
    console: Console | None = None,
    poll_seconds: float = 2.0,
) -> RunResult:
    """Run the loop on the images under ``images_dir`` (see the module docstring); returns where the outputs are.

    ``stack_settings`` override the environment's ``cdk.json`` settings for this run's stack
    (``resources.synthesize_template``); ``--resume`` synthesizes the same stack again.
    """
    console = console or Console()
    started = time.monotonic()
    config = parse_config(config_bytes)
    truth = truth_by_image_id(images_dir, truth_path)
    console.print(f"synthesizing the {environment} stack (CDK) …")
    template = synthesize_template(environment, stack_settings)
    out_dir.mkdir(parents=True, exist_ok=True)
    with _local_process(), LocalAws(job_code=_job_code(out_dir), lambda_environment=LAMBDA_RUNTIME_ENVIRONMENT) as aws:
        start_recording()
        resources = create_resources(aws, template)
        workforce = SimulatedWorkforce.from_config(truth, config)
        with SimulatedHumanReview(resources, config, workforce, truth, answer_threads=ONE_WRITER) as review:
            _upload_images(aws, resources.data_bucket, images_dir, console)
            run_id, execution_arn = _start_by_config_upload(aws, resources, config_bytes)
            spec = RunSpec(
                run_id=run_id,
                images_dir=images_dir.resolve(),
                truth_path=truth_path.resolve(),
                environment=environment,
                stack_settings=dict(stack_settings or {}),
                started_at=datetime.now(UTC),
            )
            (out_dir / run_id).mkdir(parents=True, exist_ok=True)
            write_bytes_atomic(out_dir / run_id / RUN_SPEC_FILE, spec.model_dump_json(indent=1).encode())
            console.print(f"run {run_id} started (execution {execution_name(run_id, 0)})")
            return _watch_and_finish(
                aws, resources, spec, out_dir, config, truth, review, execution_arn, None, console, poll_seconds, started
            )


def resume_locally(
    out_dir: Path,
    images_dir: Path,
    truth_path: Path,
    *,
    console: Console | None = None,
    poll_seconds: float = 2.0,
) -> RunResult:
    """Continue the run ``<out>/latest`` points at from its last published version.

    ``images_dir`` and ``truth_path`` must be those the run was started with.
    """
    console = console or Console()
    started = time.monotonic()
    run_dir = (out_dir / "latest").resolve()
    spec_path = run_dir / RUN_SPEC_FILE
    if not spec_path.is_file():
        raise LocalRunError(f"{out_dir / 'latest'} names no local run ({spec_path} is missing): nothing to resume")
    spec = RunSpec.model_validate_json(spec_path.read_bytes())
    for name, given, saved in (("--images", images_dir, spec.images_dir), ("--truth", truth_path, spec.truth_path)):
        if given.resolve() != saved:
            raise LocalRunError(f"run {spec.run_id} was started with {name} {saved}, not {given.resolve()}")
    snapshot = read_snapshot(run_dir)
    config_etag = snapshot.objects.get(CONFIG_KEY)
    if config_etag is None:
        raise LocalRunError(f"the saved state of run {spec.run_id} has no {CONFIG_KEY}")
    config = parse_config((run_dir / ".state" / "objects" / config_etag).read_bytes())
    truth = truth_by_image_id(spec.images_dir, spec.truth_path)
    console.print(
        f"resuming run {spec.run_id} after manifest v{snapshot.version:04d} (iteration {snapshot.iteration}); "
        f"synthesizing the {spec.environment} stack (CDK) …"
    )
    template = synthesize_template(spec.environment, spec.stack_settings)
    with _local_process(), LocalAws(job_code=_job_code(out_dir), lambda_environment=LAMBDA_RUNTIME_ENVIRONMENT) as aws:
        start_recording()

        def restore(bucket: str, tables: list[str]) -> None:
            restore_snapshot(aws, run_dir, snapshot, bucket, tables)

        resources = create_resources(aws, template, before_event_wiring=restore)
        workforce = SimulatedWorkforce.from_config(truth, config)
        with SimulatedHumanReview(resources, config, workforce, truth, answer_threads=ONE_WRITER) as review:
            execution_arn = _start_resumed_execution(resources, snapshot, aws.client("stepfunctions"))
            console.print(f"run {spec.run_id} resumed (execution {execution_name(spec.run_id, snapshot.resume_from)})")
            return _watch_and_finish(
                aws, resources, spec, out_dir, config, truth, review, execution_arn, snapshot.version, console,
                poll_seconds, started,
            )  # fmt: skip
