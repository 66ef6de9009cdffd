"""What local SageMaker jobs run, and how a job's failure becomes its ``FailureReason``."""

from __future__ import annotations

import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[3]
FAILURE_REASON_LIMIT = 1024
"""SageMaker truncates ``FailureReason`` to 1,024 characters."""


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


class JobFailure(Exception):
    """A local job failed; the message becomes the job's ``FailureReason``."""


def failure_reason(exc: Exception) -> str:
    """A job's ``FailureReason``: a JobFailure's message, else the exception and its traceback (last 1,024 chars)."""
    reason = str(exc) if isinstance(exc, JobFailure) else f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"
    return reason[-FAILURE_REASON_LIMIT:] if len(reason) > FAILURE_REASON_LIMIT else reason
