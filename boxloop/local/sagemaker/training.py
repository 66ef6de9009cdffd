"""A training job run locally: the script as a subprocess with SageMaker's script-mode container contract.

Channels are downloaded from S3 into ``<root>/input/data/<channel>/``; the script gets ``SM_CHANNEL_<NAME>``,
``SM_CHANNELS``, ``SM_MODEL_DIR``, ``SM_OUTPUT_DATA_DIR``, ``SM_HPS`` (JSON) and ``SM_HP_<NAME>``,
``input/config/*.json``, and the hyperparameters as ``--name value`` arguments. On exit 0 the model directory
is uploaded as ``<S3OutputPath>/<job>/output/model.tar.gz`` (and a non-empty output data directory as
``output.tar.gz``); otherwise the job fails with ``<root>/output/failure`` or the tail of the script's output.
``MaxRuntimeInSeconds`` is enforced (the script is killed). Metric lines matching the job's
``MetricDefinitions`` become its final metrics.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import tarfile
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from moto.core.utils import utcnow

from boxloop.local.process_environment import PROCESS_ENVIRONMENT
from boxloop.local.sagemaker.job_code import PROJECT_ROOT, JobFailure, SageMakerJobCode
from boxloop.local.sagemaker.s3_objects import keys_under, relative_key, s3_client, split_s3_uri

OUTPUT_TAIL_LINES = 25


class MaxRuntimeExceeded(Exception):
    """The script ran past the job's ``MaxRuntimeInSeconds`` and was killed."""


class RunningScripts:
    """The training scripts running now, by job name, so that a shutdown can kill them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._processes: dict[str, subprocess.Popen[bytes]] = {}

    @contextmanager
    def running(self, job_name: str, process: subprocess.Popen[bytes]) -> Iterator[None]:
        """Hold ``process`` as ``job_name``'s script for the block."""
        with self._lock:
            self._processes[job_name] = process
        try:
            yield
        finally:
            with self._lock:
                self._processes.pop(job_name, None)

    def kill_all(self) -> None:
        """Kill every script still running (its job then fails)."""
        with self._lock:
            processes = list(self._processes.values())
        for process in processes:
            process.kill()


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


def _channel_keys(s3: Any, channel: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(bucket, key, relative path) for every object a channel's S3 data source names."""
    source = channel["DataSource"]["S3DataSource"]
    data_type = source.get("S3DataType", "S3Prefix")
    bucket, prefix = split_s3_uri(source["S3Uri"])
    if data_type == "S3Prefix":
        return [(bucket, key, relative_key(key, prefix)) for key in keys_under(s3, bucket, prefix)]
    if data_type == "ManifestFile":
        manifest = json.loads(s3.get_object(Bucket=bucket, Key=prefix)["Body"].read())
        base_bucket, base_prefix = split_s3_uri(manifest[0]["prefix"])
        return [(base_bucket, base_prefix + name, name) for name in manifest[1:]]
    raise JobFailure(
        f"ClientError: channel {channel['ChannelName']!r}: S3DataType {data_type!r} is not supported locally"
    )


def _prepare_training_root(s3: Any, root: Path, job: dict[str, Any]) -> list[str]:
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
        json.dumps(
            {c["ChannelName"]: {k: v for k, v in c.items() if k != "DataSource"} for c in job["InputDataConfig"]}
        )
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
    return "\n".join(lines[-OUTPUT_TAIL_LINES:])


def final_metrics(log_text: str, metric_definitions: list[dict[str, str]]) -> list[dict[str, Any]]:
    """The last value each ``MetricDefinitions`` regex captured in a job's output."""
    metrics = []
    for definition in metric_definitions:
        values = re.findall(definition["Regex"], log_text)
        if values:
            last = values[-1][0] if isinstance(values[-1], tuple) else values[-1]
            metrics.append({"MetricName": definition["Name"], "Value": float(last), "Timestamp": utcnow()})
    return metrics


def _failure(root: Path, code: SageMakerJobCode, return_code: int, log_path: Path) -> JobFailure:
    failure_file = root / "output" / "failure"
    detail = failure_file.read_text(errors="replace").strip() if failure_file.exists() else ""
    return JobFailure(
        f"AlgorithmError: {code.training_script.name} exited with code {return_code}: {detail or _output_tail(log_path)}"
    )


def run_training_job(job: dict[str, Any], code: SageMakerJobCode, scripts: RunningScripts) -> list[dict[str, Any]]:
    """Run one training job (the ``CreateTrainingJob`` request) to completion; returns its final metrics.

    The script is held in ``scripts`` while it runs. Raises JobFailure (exit code and output tail) or
    MaxRuntimeExceeded.
    """
    name = job["TrainingJobName"]
    max_runtime = job.get("StoppingCondition", {}).get("MaxRuntimeInSeconds")
    s3 = s3_client()
    with tempfile.TemporaryDirectory(prefix=f"sagemaker-{name}-") as workdir:
        root = Path(workdir)
        channels = _prepare_training_root(s3, root, job)
        hyperparameters = {k: str(v) for k, v in (job.get("HyperParameters") or {}).items()}
        env = {
            **PROCESS_ENVIRONMENT.snapshot(),
            **training_environment(root, channels, hyperparameters, code.training_script),
        }
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
            with scripts.running(name, process):
                try:
                    return_code = process.wait(timeout=max_runtime)
                except subprocess.TimeoutExpired as exc:
                    process.kill()
                    process.wait()
                    raise MaxRuntimeExceeded(f"Training job exceeded MaxRuntimeInSeconds ({max_runtime} s)") from exc
        if return_code != 0:
            raise _failure(root, code, return_code, log_path)
        bucket, prefix = split_s3_uri(job["OutputDataConfig"]["S3OutputPath"].rstrip("/") + f"/{name}/output/")
        s3.put_object(Bucket=bucket, Key=prefix + "model.tar.gz", Body=_tar_gz(root / "model"))
        if any((root / "output" / "data").iterdir()):
            s3.put_object(Bucket=bucket, Key=prefix + "output.tar.gz", Body=_tar_gz(root / "output" / "data"))
        return final_metrics(log_path.read_text(errors="replace"), job.get("MetricDefinitions", []))
