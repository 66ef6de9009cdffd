"""What a local run is started with and what it gives back: ``<out>/<run-id>/run.json`` and the result."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from boxloop.report import RunReport

RUN_SPEC_FILE = "run.json"


class LocalRunError(RuntimeError):
    """The local run could not start, failed, or was interrupted; the message says what to do."""


LocalWorkforce = Literal["simulated", "browser"]
"""Who labels locally: the simulated workforce (from known truth) or people in the labelling app."""


class RunSpec(BaseModel):
    """What a local run was started with (``<out>/<run-id>/run.json``): all ``--resume`` needs besides the state."""

    run_id: str
    images_dir: Path
    truth_path: Path | None
    workforce: LocalWorkforce = "simulated"
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
