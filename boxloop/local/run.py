"""One local run, start to end: the stack on the embedded AWS, images in, the loop watched, outputs out.

``run_locally`` (a new run):

1. synthesize the stack and create its resources on a fresh ``LocalAws``;
2. start the workforce: the simulated one (it answers the human-review queue from the known truth),
   or, for ``browser``, the labelling app where people label (``labelling_server``; the stack's own
   consumer records each batch, and the run waits for people);
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

import signal
import threading
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from rich.console import Console

from boxloop.config import ConfigError, LabelingConfig, parse_config
from boxloop.layout import RunLayout, version_name
from boxloop.local.aws import LOOPBACK, LocalAws
from boxloop.local.human_workforce import SimulatedHumanReview, truth_by_image_id
from boxloop.local.labelling_server import LabellingServer, labelling_app
from boxloop.local.outputs import (
    download_exports,
    download_iteration_documents,
    download_manifests,
    download_quarantine_reasons,
    download_run_config,
    finalize_report_figures,
    point_latest_at,
    read_unlabellable_images,
    write_output_manifest,
    write_report,
    write_usage,
)
from boxloop.local.progress import RunProgress
from boxloop.local.resources import LocalResources, create_resources, synthesize_template
from boxloop.local.run_config import config_over_stack_defaults
from boxloop.local.run_records import RUN_SPEC_FILE, LocalRunError, LocalWorkforce, RunResult, RunSpec
from boxloop.local.run_start import start_by_config_upload, start_resumed_execution, upload_images
from boxloop.local.sagemaker.job_code import SageMakerJobCode
from boxloop.local.snapshot import read_snapshot, restore_snapshot, saved_object
from boxloop.local.usage import USAGE, start_recording, step_functions_usage
from boxloop.local.watcher import RunWatcher, failed_run_message
from boxloop.manifest import write_bytes_atomic
from boxloop.models import Box
from boxloop.people_waves import PeopleFinish
from boxloop.report import RunReport
from boxloop.workforce import SimulatedWorkforce
from lambdas.adapters.executions import execution_name

JOB_LOGS_DIR = "job-logs"
LAMBDA_RUNTIME_ENVIRONMENT = {
    "POWERTOOLS_LOG_LEVEL": "WARNING",
    "POWERTOOLS_METRICS_DISABLED": "true",
    "POWERTOOLS_TRACE_DISABLED": "true",
}
"""What the local Lambda runtime sets for every function: handlers' logs and metrics stay off the display."""
ONE_WRITER = 1
"""Uploads and simulated answers go one at a time: each triggers a Lambda that writes DynamoDB
transactions, and moto's ``TransactWriteItems`` is not safe against concurrent writes to a table."""


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


@contextmanager
def _workforce(
    workforce: LocalWorkforce,
    resources: LocalResources,
    config: LabelingConfig,
    truth: Mapping[str, Sequence[Box]],
    app_address: tuple[str, int],
    console: Console,
) -> Iterator[SimulatedHumanReview | LabellingServer]:
    """The simulated workforce answering from ``truth``, or the labelling app on ``app_address`` (host, port)."""
    if workforce == "simulated":
        answers = SimulatedWorkforce.from_config(truth, config)
        with SimulatedHumanReview(resources, config, answers, truth, answer_threads=ONE_WRITER) as review:
            yield review
        return
    with ExitStack() as stack:
        try:
            app = stack.enter_context(labelling_app(resources, *app_address))
        except OSError as exc:  # the page is not built, or the port is taken
            raise LocalRunError(f"the labelling app cannot start: {exc}") from exc
        console.print(f"people label in the browser at {app.url}")
        yield app


def _job_code(out_dir: Path) -> SageMakerJobCode:
    return SageMakerJobCode(log_dir=out_dir / JOB_LOGS_DIR, transform_environment=TRANSFORM_ENVIRONMENT)


# ------------------------------------------------------------------------------------------- the run


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
    s3, bucket = aws.client("s3"), resources.data_bucket
    if description["status"] != "SUCCEEDED":
        raise LocalRunError(failed_run_message(s3, aws.client("stepfunctions"), bucket, run_id, run_dir, description))
    run_config = download_run_config(s3, bucket, run_id, run_dir)
    iterations = download_iteration_documents(s3, bucket, run_id, run_dir)
    download_manifests(s3, bucket, run_id, run_dir)
    quarantined = download_quarantine_reasons(s3, bucket, run_dir)
    write_output_manifest(run_dir)
    download_exports(s3, bucket, run_id, run_dir)
    finalized = finalize_report_figures(s3, bucket, run_id)
    images_total = int(finalized["images_total"])
    finish = PeopleFinish.model_validate(finalized.get("finish", {}))
    unlabellable = read_unlabellable_images(s3, bucket, run_id, iterations)
    report = write_report(s3, run_dir, run_id, run_config, iterations, truth, images_total, unlabellable, finish)
    point_latest_at(out_dir, run_id)
    return RunResult(run_id, run_dir, report, quarantined, time.monotonic() - started)


def _watch_and_finish(
    aws: LocalAws,
    resources: LocalResources,
    spec: RunSpec,
    out_dir: Path,
    config: LabelingConfig,
    truth: Mapping[str, Sequence[Box]],
    review: SimulatedHumanReview | LabellingServer,
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
    truth_path: Path | None,
    config_bytes: bytes,
    out_dir: Path,
    *,
    environment: str = "dev",
    stack_settings: Mapping[str, Any] | None = None,
    workforce: LocalWorkforce = "simulated",
    app_address: tuple[str, int] = (LOOPBACK, 0),
    console: Console | None = None,
    poll_seconds: float = 2.0,
) -> RunResult:
    """Run the loop on the images under ``images_dir`` (see the module docstring); returns where the outputs are.

    ``stack_settings`` override the environment's ``cdk.json`` settings for this run's stack
    (``resources.synthesize_template``); ``--resume`` synthesizes the same stack again. The
    ``simulated`` workforce needs ``truth_path``; with ``browser`` a given truth only measures the
    people's labels in the report. The configuration's ``workforce.kind`` must be ``workforce``.
    """
    console = console or Console()
    started = time.monotonic()
    if workforce == "simulated" and truth_path is None:
        raise LocalRunError("the simulated workforce labels from known truth: give a truth file")
    truth = truth_by_image_id(images_dir, truth_path) if truth_path is not None else {}
    console.print(f"synthesizing the {environment} stack (CDK) …")
    template = synthesize_template(environment, stack_settings, people=workforce == "browser")
    out_dir.mkdir(parents=True, exist_ok=True)
    with _local_process(), LocalAws(job_code=_job_code(out_dir), lambda_environment=LAMBDA_RUNTIME_ENVIRONMENT) as aws:
        start_recording()
        resources = create_resources(aws, template)
        try:
            config = config_over_stack_defaults(config_bytes, resources)
        except ConfigError as exc:
            raise LocalRunError(f"the labelling configuration over the {environment} stack's defaults: {exc}") from exc
        if config.workforce.kind != workforce:
            raise LocalRunError(
                f"the configuration's workforce.kind is {config.workforce.kind!r}, this run's {workforce!r}"
            )
        with _workforce(workforce, resources, config, truth, app_address, console) as review:
            upload_images(aws, resources.data_bucket, images_dir, console)
            run_id, execution_arn = start_by_config_upload(aws, resources, config_bytes)
            spec = RunSpec(
                run_id=run_id,
                images_dir=images_dir.resolve(),
                truth_path=truth_path.resolve() if truth_path is not None else None,
                workforce=workforce,
                environment=environment,
                stack_settings=dict(stack_settings or {}),
                started_at=datetime.now(UTC),
            )
            (out_dir / run_id).mkdir(parents=True, exist_ok=True)
            write_bytes_atomic(out_dir / run_id / RUN_SPEC_FILE, spec.model_dump_json(indent=1).encode())
            console.print(f"run {run_id} started (execution {execution_name(run_id, 0)})")
            return _watch_and_finish(
                aws,
                resources,
                spec,
                out_dir,
                config,
                truth,
                review,
                execution_arn,
                None,
                console,
                poll_seconds,
                started,
            )


def resume_locally(
    out_dir: Path,
    images_dir: Path,
    truth_path: Path | None,
    *,
    app_address: tuple[str, int] = (LOOPBACK, 0),
    console: Console | None = None,
    poll_seconds: float = 2.0,
) -> RunResult:
    """Continue the run ``<out>/latest`` points at from its last published version, with the workforce it had.

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
        if (given.resolve() if given is not None else None) != saved:
            raise LocalRunError(f"run {spec.run_id} was started with {name} {saved}, not {given}")
    snapshot = read_snapshot(run_dir)
    config_key = RunLayout(bucket=snapshot.bucket, run_id=spec.run_id).config
    saved_config = saved_object(run_dir, snapshot, config_key)
    if saved_config is None:
        raise LocalRunError(f"the saved state of run {spec.run_id} has no {config_key}, the configuration it uses")
    config = parse_config(saved_config)
    truth = truth_by_image_id(spec.images_dir, spec.truth_path) if spec.truth_path is not None else {}
    console.print(
        f"resuming run {spec.run_id} after manifest {version_name(snapshot.version)} (iteration {snapshot.iteration}); "
        f"synthesizing the {spec.environment} stack (CDK) …"
    )
    template = synthesize_template(spec.environment, spec.stack_settings, people=spec.workforce == "browser")
    with _local_process(), LocalAws(job_code=_job_code(out_dir), lambda_environment=LAMBDA_RUNTIME_ENVIRONMENT) as aws:
        start_recording()

        def restore(bucket: str, tables: list[str]) -> None:
            restore_snapshot(aws, run_dir, snapshot, bucket, tables)

        resources = create_resources(aws, template, before_event_wiring=restore)
        with _workforce(spec.workforce, resources, config, truth, app_address, console) as review:
            execution_arn = start_resumed_execution(resources, snapshot, aws.client("stepfunctions"))
            console.print(f"run {spec.run_id} resumed (execution {execution_name(spec.run_id, snapshot.resume_from)})")
            return _watch_and_finish(
                aws, resources, spec, out_dir, config, truth, review, execution_arn, snapshot.version, console,
                poll_seconds, started,
            )  # fmt: skip
