"""The job image's entry point: SageMaker runs ``<image> train`` for training jobs and ``<image> serve`` for
batch transform (docs: "How Amazon SageMaker Runs Your Training Image" / "… Your Inference Image").

``train`` turns SageMaker's training contract into the ``SM_*`` variables ``sagemaker_jobs.settings`` reads,
as SageMaker's training toolkit does for script mode: ``/opt/ml/input/config/hyperparameters.json`` (string
values, JSON-decoded where they parse; the framework's own ``sagemaker_*`` ones left out),
``inputdataconfig.json`` (one ``SM_CHANNEL_<NAME>=/opt/ml/input/data/<name>`` per channel), the model
directory ``/opt/ml/model`` and the output data directory ``/opt/ml/output/data`` (``/opt/ml`` is
``$SAGEMAKER_BASE_DIR`` when set, as in SageMaker's toolkits). A failure's message is
written to ``/opt/ml/output/failure``, which SageMaker shows as the job's ``FailureReason``.

``serve`` runs ``sagemaker_jobs.serving`` in a new interpreter whose import path starts with the model's
``code/`` directory, so the code the artefact carries is the code that serves it.
"""

from __future__ import annotations

import json
import os
import re
import sys
import traceback
from collections.abc import Mapping
from pathlib import Path

from sagemaker_jobs.accelerator import require_usable_gpu
from sagemaker_jobs.serving_layout import CODE_DIR
from sagemaker_jobs.settings import read_environment
from sagemaker_jobs.train import train

DEFAULT_BASE_DIR = Path("/opt/ml")
FAILURE_REASON_LIMIT = 1024
USAGE = "usage: python -m sagemaker_jobs.container train|serve"


def _hyperparameter_value(raw: str) -> object:
    try:
        return json.loads(raw)
    except (TypeError, ValueError):
        return raw


def training_variables(base_dir: Path = DEFAULT_BASE_DIR) -> dict[str, str]:
    """The ``SM_*`` variables of the training job whose SageMaker files are under ``base_dir``."""
    config_dir = base_dir / "input" / "config"
    hyperparameters = json.loads((config_dir / "hyperparameters.json").read_text())
    channels = json.loads((config_dir / "inputdataconfig.json").read_text())
    user_hyperparameters = {
        name: _hyperparameter_value(value)
        for name, value in hyperparameters.items()
        if not name.startswith("sagemaker_")
    }
    variables = {
        "SM_MODEL_DIR": str(base_dir / "model"),
        "SM_OUTPUT_DATA_DIR": str(base_dir / "output" / "data"),
        "SM_CHANNELS": json.dumps(sorted(channels)),
        "SM_HPS": json.dumps(user_hyperparameters),
    }
    for name in channels:
        variables[f"SM_CHANNEL_{re.sub(r'[^A-Za-z0-9_]', '_', name).upper()}"] = str(base_dir / "input" / "data" / name)
    return variables


def run_training(base_dir: Path = DEFAULT_BASE_DIR) -> int:
    """Train as SageMaker's training job; on failure write the reason to ``output/failure`` and return 1."""
    try:
        require_usable_gpu()
        environment = read_environment({**os.environ, **training_variables(base_dir)})
        train(environment)
    except Exception as exc:
        traceback.print_exc()
        failure = base_dir / "output" / "failure"
        failure.parent.mkdir(parents=True, exist_ok=True)
        failure.write_text(f"{type(exc).__name__}: {exc}"[:FAILURE_REASON_LIMIT])
        return 1
    return 0


def serving_command(environ: Mapping[str, str], base_dir: Path = DEFAULT_BASE_DIR) -> tuple[list[str], dict[str, str]]:
    """The interpreter command and environment that serve the model with its own ``code/`` first on the path."""
    code_dir = base_dir / "model" / CODE_DIR
    python_path = os.pathsep.join(part for part in (str(code_dir), environ.get("PYTHONPATH", "")) if part)
    return [sys.executable, "-P", "-m", "sagemaker_jobs.serving"], {**environ, "PYTHONPATH": python_path}


def main(argv: list[str] | None = None) -> int:
    """Dispatch SageMaker's ``train`` / ``serve`` argument."""
    arguments = sys.argv[1:] if argv is None else argv
    base_dir = Path(os.environ.get("SAGEMAKER_BASE_DIR", str(DEFAULT_BASE_DIR)))
    if arguments == ["train"]:
        return run_training(base_dir)
    if arguments == ["serve"]:
        command, environment = serving_command(os.environ, base_dir)
        os.execve(command[0], command, environment)
    print(USAGE, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
