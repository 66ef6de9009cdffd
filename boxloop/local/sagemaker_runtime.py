"""SageMaker training and batch-transform jobs created in moto run for real, on this machine.

moto records SageMaker jobs as metadata only (``Completed`` at once, nothing run) and its Step
Functions interpreter rejects ``sagemaker:*.sync``. ``install`` patches both (moto 5.2.5 internals;
no public plugin API exists):

- ``CreateTrainingJob`` marks the job ``InProgress`` and runs the training script in a worker
  thread as a subprocess, with SageMaker's container contract: channels downloaded from S3 into
  ``<root>/input/data/<channel>/``, ``SM_CHANNEL_<NAME>``, ``SM_CHANNELS``, ``SM_MODEL_DIR``,
  ``SM_OUTPUT_DATA_DIR``, ``SM_HPS`` (JSON) and ``SM_HP_<NAME>``, ``input/config/*.json``, and the
  hyperparameters as ``--name value`` arguments (script mode). On exit 0 the model directory is
  uploaded as ``<S3OutputPath>/<job>/output/model.tar.gz`` (and a non-empty output data directory
  as ``output.tar.gz``) and the job is ``Completed``; otherwise ``Failed`` with a ``FailureReason``
  from ``<root>/output/failure`` or the tail of the script's output. ``MaxRuntimeInSeconds`` is
  enforced: the script is killed and the job ``Stopped`` (``MaxRuntimeExceeded``). Metric lines
  matching the job's ``MetricDefinitions`` become ``FinalMetricDataList``.
- ``CreateTransformJob`` runs in a worker thread in this process: the job's model
  (``ModelDataUrl``) is extracted and loaded with the inference module's ``model_fn``; every object
  under the input prefix is split by line into mini-batches (``SplitType``, ``BatchStrategy``,
  ``MaxPayloadInMB``) passed through ``input_fn`` / ``predict_fn`` / ``output_fn``, and the results
  are written to ``<S3OutputPath>/<relative key>.out``.
- The Step Functions interpreter gets a ``sagemaker`` service: any action request-response, and
  ``createTrainingJob.sync`` / ``createTransformJob.sync`` polling ``Describe*`` until the job ends.

Each job's wall seconds, status and (transforms) input records are recorded in ``usage.USAGE`` when it ends.

Which code runs is ``SageMakerJobCode`` (``sagemaker_jobs/train.py`` and ``sagemaker_jobs.inference``
unless a caller installs others); the job's image URIs are recorded but not used.
"""

from __future__ import annotations

import importlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import boto3
from moto.core.utils import utcnow
from moto.sagemaker import models as sagemaker_models
from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
    FailureEvent,
    FailureEventException,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
    StatesErrorNameType,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task import state_task_factory
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import ResourceCondition
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback import (
    StateTaskServiceCallback,
)
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
from moto.stepfunctions.parser.asl.utils.boto_client import boto_client_for

from boxloop.local.process_environment import PROCESS_ENVIRONMENT
from boxloop.local.usage import USAGE, JobUsage

PROJECT_ROOT = Path(__file__).resolve().parents[2]
FAILURE_REASON_LIMIT = 1024
"""SageMaker truncates ``FailureReason`` to 1,024 characters."""
_OUTPUT_TAIL_LINES = 25
_DEFAULT_MAX_PAYLOAD_MB = 6


@dataclass(frozen=True)
class SageMakerJobCode:
    """The code local jobs run, and where their logs go.

    ``log_dir``: when set, each training job's combined stdout/stderr is kept as
    ``<log_dir>/<job-name>.log``; otherwise it is deleted with the job's working directory.
    ``transform_environment``: variables transform jobs get under the model's and the job's own
    (which win), for settings that differ because the handler runs inside this process.
    """

    training_script: Path = PROJECT_ROOT / "sagemaker_jobs" / "train.py"
    inference_module: str = "sagemaker_jobs.inference"
    python_executable: str = sys.executable
    log_dir: Path | None = None
    transform_environment: dict[str, str] = field(default_factory=dict)


@dataclass
class _LocalJobs:
    code: SageMakerJobCode = field(default_factory=SageMakerJobCode)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    threads: list[threading.Thread] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


_JOBS = _LocalJobs()
_ORIGINAL_CREATE_TRAINING_JOB = sagemaker_models.SageMakerModelBackend.create_training_job
_ORIGINAL_CREATE_TRANSFORM_JOB = sagemaker_models.SageMakerModelBackend.create_transform_job
_ORIGINAL_SERVICE_FOR = state_task_factory.state_task_service_for


class JobFailure(Exception):
    """A local job failed; the message becomes the job's ``FailureReason``."""


# ---------------------------------------------------------------- S3 helpers


def _split_s3_uri(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise JobFailure(f"ClientError: {uri!r} is not an s3:// URI")
    return parsed.netloc, parsed.path.lstrip("/")


def _s3_client() -> Any:
    return boto3.client("s3")


def _keys_under(s3: Any, bucket: str, prefix: str) -> Iterator[str]:
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            if not item["Key"].endswith("/"):
                yield item["Key"]


def _relative_key(key: str, prefix: str) -> str:
    """A key's path relative to the prefix's folder (SageMaker keeps what follows the last '/')."""
    folder = prefix[: prefix.rfind("/") + 1]
    return key[len(folder) :]


def _channel_keys(s3: Any, channel: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(bucket, key, relative path) for every object a channel's S3 data source names."""
    source = channel["DataSource"]["S3DataSource"]
    data_type = source.get("S3DataType", "S3Prefix")
    bucket, prefix = _split_s3_uri(source["S3Uri"])
    if data_type == "S3Prefix":
        return [(bucket, key, _relative_key(key, prefix)) for key in _keys_under(s3, bucket, prefix)]
    if data_type == "ManifestFile":
        manifest = json.loads(s3.get_object(Bucket=bucket, Key=prefix)["Body"].read())
        base_bucket, base_prefix = _split_s3_uri(manifest[0]["prefix"])
        return [(base_bucket, base_prefix + name, name) for name in manifest[1:]]
    raise JobFailure(f"ClientError: channel {channel['ChannelName']!r}: S3DataType {data_type!r} is not supported locally")


# ---------------------------------------------------------------- training


def _hyperparameter_value(raw: str) -> Any:
    try:
        return json.loads(raw)
    except (TypeError, ValueError):
        return raw


def _env_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", name).upper()


def training_environment(
    root: Path, channels: list[str], hyperparameters: dict[str, str], script: Path
) -> dict[str, str]:
    """The ``SM_*`` variables SageMaker's training toolkit gives a script-mode entry point.

    As in the toolkit, ``sagemaker_*`` hyperparameters (program, submit directory, region) are the
    framework's own: they are left out of ``SM_HPS``, ``SM_HP_*`` and the script's arguments.
    """
    user_hyperparameters = {name: value for name, value in hyperparameters.items() if not name.startswith("sagemaker_")}
    env = {
        "SM_MODEL_DIR": str(root / "model"),
        "SM_INPUT_DIR": str(root / "input"),
        "SM_INPUT_DATA_DIR": str(root / "input" / "data"),
        "SM_INPUT_CONFIG_DIR": str(root / "input" / "config"),
        "SM_OUTPUT_DIR": str(root / "output"),
        "SM_OUTPUT_DATA_DIR": str(root / "output" / "data"),
        "SM_CHANNELS": json.dumps(channels),
        "SM_HPS": json.dumps({name: _hyperparameter_value(value) for name, value in user_hyperparameters.items()}),
        "SM_HOSTS": json.dumps(["algo-1"]),
        "SM_CURRENT_HOST": "algo-1",
        "SM_NUM_CPUS": str(os.cpu_count() or 1),
        "SM_NUM_GPUS": "0",
        "SM_MODULE_DIR": str(script.parent),
        "SM_USER_ENTRY_POINT": script.name,
    }
    env.update({f"SM_CHANNEL_{_env_name(name)}": str(root / "input" / "data" / name) for name in channels})
    env.update({f"SM_HP_{_env_name(name)}": value for name, value in user_hyperparameters.items()})
    return env


def _script_arguments(hyperparameters: dict[str, str]) -> list[str]:
    arguments: list[str] = []
    for name, value in hyperparameters.items():
        if not name.startswith("sagemaker_"):
            arguments += [f"--{name}", str(value)]
    return arguments


def _prepare_training_root(root: Path, job: dict[str, Any]) -> list[str]:
    s3 = _s3_client()
    channels = []
    for channel in job["InputDataConfig"]:
        name = channel["ChannelName"]
        channels.append(name)
        target = root / "input" / "data" / name
        target.mkdir(parents=True, exist_ok=True)
        for bucket, key, relative in _channel_keys(s3, channel):
            destination = target / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, key, str(destination))
    config_dir = root / "input" / "config"
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / "hyperparameters.json").write_text(json.dumps(job["HyperParameters"]))
    (config_dir / "inputdataconfig.json").write_text(
        json.dumps({c["ChannelName"]: {k: v for k, v in c.items() if k != "DataSource"} for c in job["InputDataConfig"]})
    )
    (config_dir / "resourceconfig.json").write_text(json.dumps({"current_host": "algo-1", "hosts": ["algo-1"]}))
    for folder in ("model", "output/data"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    return channels


def _tar_gz(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path in sorted(folder.rglob("*")):
            archive.add(path, arcname=str(path.relative_to(folder)), recursive=False)
    return buffer.getvalue()


def _output_tail(log_path: Path) -> str:
    lines = log_path.read_text(errors="replace").splitlines() if log_path.exists() else []
    return "\n".join(lines[-_OUTPUT_TAIL_LINES:])


def final_metrics(log_text: str, metric_definitions: list[dict[str, str]]) -> list[dict[str, Any]]:
    """The last value each ``MetricDefinitions`` regex captured in a job's output."""
    metrics = []
    for definition in metric_definitions:
        values = re.findall(definition["Regex"], log_text)
        if values:
            last = values[-1][0] if isinstance(values[-1], tuple) else values[-1]
            metrics.append({"MetricName": definition["Name"], "Value": float(last), "Timestamp": utcnow()})
    return metrics


class _MaxRuntimeExceeded(Exception):
    pass


def run_training_job(job: dict[str, Any], code: SageMakerJobCode) -> list[dict[str, Any]]:
    """Run one training job (the ``CreateTrainingJob`` request) to completion; returns its final metrics.

    Raises JobFailure (exit code and output tail) or _MaxRuntimeExceeded.
    """
    name = job["TrainingJobName"]
    max_runtime = job.get("StoppingCondition", {}).get("MaxRuntimeInSeconds")
    with tempfile.TemporaryDirectory(prefix=f"sagemaker-{name}-") as workdir:
        root = Path(workdir)
        channels = _prepare_training_root(root, job)
        hyperparameters = {k: str(v) for k, v in (job.get("HyperParameters") or {}).items()}
        env = {**os.environ, **training_environment(root, channels, hyperparameters, code.training_script)}
        env["PYTHONPATH"] = os.pathsep.join(
            [str(code.training_script.parent), str(PROJECT_ROOT), env.get("PYTHONPATH", "")]
        ).rstrip(os.pathsep)
        log_path = (code.log_dir / f"{name}.log") if code.log_dir else root / "job.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [code.python_executable, str(code.training_script), *_script_arguments(hyperparameters)],
                cwd=code.training_script.parent,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            with _JOBS.lock:
                _JOBS.processes[name] = process
            try:
                return_code = process.wait(timeout=max_runtime)
            except subprocess.TimeoutExpired as exc:
                process.kill()
                process.wait()
                raise _MaxRuntimeExceeded(f"Training job exceeded MaxRuntimeInSeconds ({max_runtime} s)") from exc
            finally:
                with _JOBS.lock:
                    _JOBS.processes.pop(name, None)
        if return_code != 0:
            failure_file = root / "output" / "failure"
            detail = failure_file.read_text(errors="replace").strip() if failure_file.exists() else ""
            raise JobFailure(
                f"AlgorithmError: {code.training_script.name} exited with code {return_code}: "
                f"{detail or _output_tail(log_path)}"
            )
        s3 = _s3_client()
        bucket, prefix = _split_s3_uri(job["OutputDataConfig"]["S3OutputPath"].rstrip("/") + f"/{name}/output/")
        s3.put_object(Bucket=bucket, Key=prefix + "model.tar.gz", Body=_tar_gz(root / "model"))
        if any((root / "output" / "data").iterdir()):
            s3.put_object(Bucket=bucket, Key=prefix + "output.tar.gz", Body=_tar_gz(root / "output" / "data"))
        return final_metrics(log_path.read_text(errors="replace"), job.get("MetricDefinitions", []))


def _finish_training(job: Any, request: dict[str, Any], code: SageMakerJobCode) -> None:
    started = time.monotonic()
    try:
        job.final_metric_data_list = run_training_job(request, code)
        job.training_job_status = job.secondary_status = "Completed"
    except _MaxRuntimeExceeded as exc:
        job.failure_reason = str(exc)
        job.training_job_status, job.secondary_status = "Stopped", "MaxRuntimeExceeded"
    except Exception as exc:  # any failure is the job's failure, reported through DescribeTrainingJob
        job.failure_reason = _failure_reason(exc)
        job.training_job_status = job.secondary_status = "Failed"
    job.training_end_time = job.last_modified_time = utcnow()
    seconds = round(time.monotonic() - started, 3)
    USAGE.record_job("training", JobUsage(job_name=request["name"], status=job.training_job_status, wall_seconds=seconds))


def _failure_reason(exc: Exception) -> str:
    reason = str(exc) if isinstance(exc, JobFailure) else f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"
    return reason[-FAILURE_REASON_LIMIT:] if len(reason) > FAILURE_REASON_LIMIT else reason


def _start(target: Callable[[Any, dict[str, Any], SageMakerJobCode], None], job: Any, request: dict[str, Any]) -> None:
    thread = threading.Thread(
        target=target, args=(job, request, _JOBS.code), daemon=True, name=f"local-sagemaker-{request['name']}"
    )
    with _JOBS.lock:
        _JOBS.threads = [t for t in _JOBS.threads if t.is_alive()] + [thread]
    thread.start()


def _create_training_job(self: Any, **kwargs: Any) -> Any:
    metric_definitions = list(kwargs["algorithm_specification"].get("MetricDefinitions") or [])
    job = _ORIGINAL_CREATE_TRAINING_JOB(self, **kwargs)  # moto marks it Completed at once
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
    _start(_finish_training, job, request)
    return job


# ---------------------------------------------------------------- batch transform


def _extract_model(s3: Any, model_data_url: str, target: Path) -> None:
    bucket, key = _split_s3_uri(model_data_url)
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as archive:
        archive.extractall(target, filter="data")


def mini_batches(body: bytes, split_type: str, batch_strategy: str, max_payload_bytes: int) -> Iterator[bytes]:
    """Split one input object as SageMaker batch transform does (``Line`` split, single or multi record)."""
    if split_type == "None":
        yield body
        return
    if split_type != "Line":
        raise JobFailure(f"ClientError: SplitType {split_type!r} is not supported locally")
    records = [line for line in body.splitlines(keepends=True) if line.strip()]
    if batch_strategy == "SingleRecord":
        yield from records
        return
    batch: list[bytes] = []
    size = 0
    for record in records:
        if batch and size + len(record) > max_payload_bytes:
            yield b"".join(batch)
            batch, size = [], 0
        batch.append(record)
        size += len(record)
    if batch:
        yield b"".join(batch)


def _as_bytes(response: Any) -> bytes:
    if isinstance(response, tuple):
        response = response[0]
    return response.encode() if isinstance(response, str) else bytes(response)


def run_transform_job(job: dict[str, Any], code: SageMakerJobCode) -> int:
    """Run one transform job (request fields plus ``ModelDataUrl``) to completion; returns the input records.

    Raises on failure.
    """
    s3 = _s3_client()
    inference = importlib.import_module(code.inference_module)
    source = job["TransformInput"]["DataSource"]["S3DataSource"]
    input_bucket, input_prefix = _split_s3_uri(source["S3Uri"])
    output_bucket, output_prefix = _split_s3_uri(job["TransformOutput"]["S3OutputPath"].rstrip("/") + "/")
    content_type = job["TransformInput"].get("ContentType", "application/json")
    accept = job["TransformOutput"].get("Accept", "application/json")
    line_output = job["TransformOutput"].get("AssembleWith", "None") == "Line"
    split_type = job["TransformInput"].get("SplitType", "None")
    max_payload = int(job.get("MaxPayloadInMB") or _DEFAULT_MAX_PAYLOAD_MB) * 1024 * 1024
    variables = {
        name: str(value)
        for name, value in {
            **code.transform_environment,
            **job.get("ModelEnvironment", {}),
            **job.get("Environment", {}),
        }.items()
    }
    records = 0
    with tempfile.TemporaryDirectory(prefix=f"sagemaker-{job['TransformJobName']}-") as model_dir:
        _extract_model(s3, job["ModelDataUrl"], Path(model_dir))
        with PROCESS_ENVIRONMENT.applied(variables, owner=f"transform job {job['TransformJobName']}"):
            model = inference.model_fn(model_dir)
            for key in _keys_under(s3, input_bucket, input_prefix):
                body = s3.get_object(Bucket=input_bucket, Key=key)["Body"].read()
                records += sum(1 for line in body.splitlines() if line.strip()) if split_type == "Line" else 1
                outputs = []
                try:
                    for payload in mini_batches(body, split_type, job.get("BatchStrategy", "MultiRecord"), max_payload):
                        prediction = inference.predict_fn(inference.input_fn(payload, content_type), model)
                        output = _as_bytes(inference.output_fn(prediction, accept))
                        outputs.append(output if not line_output or output.endswith(b"\n") else output + b"\n")
                except JobFailure:
                    raise
                except Exception as exc:
                    raise JobFailure(f"ClientError: s3://{input_bucket}/{key}: {type(exc).__name__}: {exc}") from exc
                relative = _relative_key(key, input_prefix)
                s3.put_object(Bucket=output_bucket, Key=f"{output_prefix}{relative}.out", Body=b"".join(outputs))
    return records


def _finish_transform(job: Any, request: dict[str, Any], code: SageMakerJobCode) -> None:
    started = time.monotonic()
    records = None
    try:
        records = run_transform_job(request, code)
        job.transform_job_status = "Completed"
    except Exception as exc:  # any failure is the job's failure, reported through DescribeTransformJob
        job.failure_reason = _failure_reason(exc)
        job.transform_job_status = "Failed"
    job.transform_end_time = job.last_modified_time = utcnow()
    USAGE.record_job(
        "transform",
        JobUsage(
            job_name=request["name"],
            status=job.transform_job_status,
            wall_seconds=round(time.monotonic() - started, 3),
            input_records=records,
        ),
    )


def _create_transform_job(self: Any, **kwargs: Any) -> Any:
    job = _ORIGINAL_CREATE_TRANSFORM_JOB(self, **kwargs)
    job.transform_job_status = "InProgress"
    container = self.describe_model(job.model_name).primary_container or {}
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
    _start(_finish_transform, job, request)
    return job


# ---------------------------------------------------------------- Step Functions integration

_SYNC_DESCRIBE = {
    "create_training_job": ("describe_training_job", "TrainingJobName", "TrainingJobStatus"),
    "create_transform_job": ("describe_transform_job", "TransformJobName", "TransformJobStatus"),
}
_RUNNING_STATUSES = frozenset({"InProgress", "Stopping"})


class StateTaskServiceSageMaker(StateTaskServiceCallback):
    """``arn:aws:states:::sagemaker:<action>[.sync]`` for moto's interpreter."""

    def __init__(self) -> None:
        super().__init__(supported_integration_patterns={ResourceCondition.Sync, ResourceCondition.WaitForTaskToken})

    def _validate_service_integration_is_supported(self) -> None:
        """Accept any SageMaker action: the request goes to moto's SageMaker, which validates it."""

    @staticmethod
    def _client(resource_runtime_part: Any, state_credentials: Any) -> Any:
        return boto_client_for(service="sagemaker", region=resource_runtime_part.region, state_credentials=state_credentials)

    def _eval_service_task(self, env: Any, resource_runtime_part: Any, normalised_parameters: dict, state_credentials: Any) -> None:
        action = getattr(self._client(resource_runtime_part, state_credentials), self._get_boto_service_action())
        response = action(**normalised_parameters)
        response.pop("ResponseMetadata", None)
        env.stack.append(json.loads(json.dumps(response, default=str)))

    def _build_sync_resolver(
        self, env: Any, resource_runtime_part: Any, normalised_parameters: dict, state_credentials: Any
    ) -> Callable[[], Any]:
        action = self._get_boto_service_action()
        if action not in _SYNC_DESCRIBE:
            return super()._build_sync_resolver(env, resource_runtime_part, normalised_parameters, state_credentials)
        describe_action, name_key, status_key = _SYNC_DESCRIBE[action]
        env.stack.pop()
        describe = getattr(self._client(resource_runtime_part, state_credentials), describe_action)
        job_name = normalised_parameters[name_key]

        def resolver() -> dict[str, Any] | None:
            description = describe(**{name_key: job_name})
            description.pop("ResponseMetadata", None)
            description = json.loads(json.dumps(description, default=str))
            if description[status_key] in _RUNNING_STATUSES:
                return None
            if description[status_key] == "Completed":
                return description
            raise FailureEventException(
                FailureEvent(
                    env=env,
                    error_name=StatesErrorName(typ=StatesErrorNameType.StatesTaskFailed),
                    event_type=HistoryEventType.TaskFailed,
                    event_details=EventDetails(
                        taskFailedEventDetails=TaskFailedEventDetails(
                            resource=self._get_sfn_resource(),
                            resourceType=self._get_sfn_resource_type(),
                            error=StatesErrorNameType.StatesTaskFailed.to_name(),
                            cause=json.dumps(description),
                        )
                    ),
                )
            )

        return resolver


def _state_task_service_for(service_name: str) -> Any:
    return StateTaskServiceSageMaker() if service_name == "sagemaker" else _ORIGINAL_SERVICE_FOR(service_name)


# ---------------------------------------------------------------- installation


def install(code: SageMakerJobCode | None = None) -> None:
    """Make moto's SageMaker run jobs with ``code`` (default ``sagemaker_jobs``) in this process (idempotent)."""
    _JOBS.code = code or SageMakerJobCode()
    sagemaker_models.SageMakerModelBackend.create_training_job = _create_training_job
    sagemaker_models.SageMakerModelBackend.create_transform_job = _create_transform_job
    state_task_factory.state_task_service_for = _state_task_service_for


def stop_running_jobs(wait_seconds: float = 30.0) -> None:
    """Kill running training scripts and wait for job threads to finish (used on shutdown)."""
    with _JOBS.lock:
        processes = list(_JOBS.processes.values())
        threads = list(_JOBS.threads)
    for process in processes:
        process.kill()
    for thread in threads:
        thread.join(timeout=wait_seconds)
