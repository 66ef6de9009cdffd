"""``LocalSageMaker``: moto's SageMaker runs the jobs it is asked for, and Step Functions can wait for them.

Installing patches moto's classes for the whole process (moto 5.2.5 internals; no public plugin API exists):
``SageMakerModelBackend.create_training_job`` / ``create_transform_job`` start the job in a worker thread
(``training``, ``transform``) and leave it ``InProgress`` until it ends, and the Step Functions interpreter's
``state_task_service_for`` gains the ``sagemaker`` service (``step_functions``). Uninstalling stops running
jobs and puts back what installing replaced. Each job's wall seconds, status and (transforms) input records
are recorded in the usage recorder when it ends.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

from moto.core.utils import utcnow
from moto.sagemaker.models import SageMakerModelBackend
from moto.stepfunctions.parser.asl.component.state.exec.state_task import state_task_factory

from boxloop.local.sagemaker.job_code import SageMakerJobCode, failure_reason
from boxloop.local.sagemaker.step_functions import with_sagemaker_service
from boxloop.local.sagemaker.training import MaxRuntimeExceeded, RunningScripts, run_training_job
from boxloop.local.sagemaker.transform import run_transform_job
from boxloop.local.usage import USAGE, JobUsage, UsageRecorder

MotoCreate = Callable[..., Any]
"""A ``SageMakerModelBackend.create_*_job`` method (the backend first, the request as keyword arguments)."""


class LocalSageMaker:
    """Jobs created in moto run ``code`` (default: ``sagemaker_jobs``) while installed; a context manager.

    Everything the jobs share lives here, not in module state: the code they run, their worker threads,
    the training scripts running now and the usage recorder. Installs nest when undone in reverse order.
    """

    def __init__(self, code: SageMakerJobCode | None = None, usage: UsageRecorder = USAGE) -> None:
        self.code = code or SageMakerJobCode()
        self._usage = usage
        self._scripts = RunningScripts()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._replaced: tuple[MotoCreate, MotoCreate, Callable[[str], Any]] | None = None

    @property
    def installed(self) -> bool:
        """True between ``install`` and ``uninstall``."""
        return self._replaced is not None

    def install(self) -> None:
        """Patch moto's SageMaker and Step Functions in this process; RuntimeError when already installed."""
        if self._replaced is not None:
            raise RuntimeError("this LocalSageMaker is already installed")
        original_training = SageMakerModelBackend.create_training_job
        original_transform = SageMakerModelBackend.create_transform_job
        original_service_for = state_task_factory.state_task_service_for
        self._replaced = (original_training, original_transform, original_service_for)

        def create_training_job(backend: SageMakerModelBackend, **kwargs: Any) -> Any:
            return self._create_training_job(original_training, backend, **kwargs)

        def create_transform_job(backend: SageMakerModelBackend, **kwargs: Any) -> Any:
            return self._create_transform_job(original_transform, backend, **kwargs)

        SageMakerModelBackend.create_training_job = create_training_job
        SageMakerModelBackend.create_transform_job = create_transform_job
        state_task_factory.state_task_service_for = with_sagemaker_service(original_service_for)

    def uninstall(self) -> None:
        """Stop running jobs and put back what ``install`` replaced (nothing when not installed)."""
        if self._replaced is None:
            return
        self.stop_running_jobs()
        training, transform, service_for = self._replaced
        SageMakerModelBackend.create_training_job = training
        SageMakerModelBackend.create_transform_job = transform
        state_task_factory.state_task_service_for = service_for
        self._replaced = None

    def __enter__(self) -> LocalSageMaker:
        self.install()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.uninstall()

    def stop_running_jobs(self, wait_seconds: float = 30.0) -> None:
        """Kill running training scripts and wait for job threads to finish (their jobs end ``Failed``)."""
        self._scripts.kill_all()
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout=wait_seconds)

    # ------------------------------------------------------------------------------------------ jobs

    def _start(self, target: Callable[[Any, dict[str, Any]], None], job: Any, request: dict[str, Any]) -> None:
        thread = threading.Thread(
            target=target, args=(job, request), daemon=True, name=f"local-sagemaker-{request['name']}"
        )
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def _create_training_job(self, original: MotoCreate, backend: SageMakerModelBackend, **kwargs: Any) -> Any:
        metric_definitions = list(kwargs["algorithm_specification"].get("MetricDefinitions") or [])
        job = original(backend, **kwargs)  # moto marks it Completed at once
        job.algorithm_specification["MetricDefinitions"] = metric_definitions
        job.training_job_status, job.secondary_status = "InProgress", "Training"
        job.final_metric_data_list = []
        request = {
            "name": job.training_job_name,
            "TrainingJobName": job.training_job_name,
            "HyperParameters": job.hyper_parameters or {},
            "InputDataConfig": job.input_data_config or [],
            "OutputDataConfig": job.output_data_config,
            "StoppingCondition": job.stopping_condition or {},
            "MetricDefinitions": metric_definitions,
        }
        self._start(self._finish_training, job, request)
        return job

    def _finish_training(self, job: Any, request: dict[str, Any]) -> None:
        started = time.monotonic()
        try:
            job.final_metric_data_list = run_training_job(request, self.code, self._scripts)
            job.training_job_status = job.secondary_status = "Completed"
        except MaxRuntimeExceeded as exc:
            job.failure_reason = str(exc)
            job.training_job_status, job.secondary_status = "Stopped", "MaxRuntimeExceeded"
        except Exception as exc:  # any failure is the job's failure, reported through DescribeTrainingJob
            job.failure_reason = failure_reason(exc)
            job.training_job_status = job.secondary_status = "Failed"
        job.training_end_time = job.last_modified_time = utcnow()
        seconds = round(time.monotonic() - started, 3)
        self._usage.record_job(
            "training", JobUsage(job_name=request["name"], status=job.training_job_status, wall_seconds=seconds)
        )

    def _create_transform_job(self, original: MotoCreate, backend: SageMakerModelBackend, **kwargs: Any) -> Any:
        job = original(backend, **kwargs)
        job.transform_job_status = "InProgress"
        container = backend.describe_model(job.model_name).primary_container or {}
        request = {
            "name": job.transform_job_name,
            "TransformJobName": job.transform_job_name,
            "TransformInput": job.transform_input,
            "TransformOutput": job.transform_output,
            "BatchStrategy": job.batch_strategy,
            "MaxPayloadInMB": job.max_payload_in_mb,
            "Environment": job.environment or {},
            "ModelEnvironment": container.get("Environment") or {},
            "ModelDataUrl": container.get("ModelDataUrl"),
        }
        self._start(self._finish_transform, job, request)
        return job

    def _finish_transform(self, job: Any, request: dict[str, Any]) -> None:
        started = time.monotonic()
        records = None
        try:
            records = run_transform_job(request, self.code)
            job.transform_job_status = "Completed"
        except Exception as exc:  # any failure is the job's failure, reported through DescribeTransformJob
            job.failure_reason = failure_reason(exc)
            job.transform_job_status = "Failed"
        job.transform_end_time = job.last_modified_time = utcnow()
        self._usage.record_job(
            "transform",
            JobUsage(
                job_name=request["name"],
                status=job.transform_job_status,
                wall_seconds=round(time.monotonic() - started, 3),
                input_records=records,
            ),
        )
