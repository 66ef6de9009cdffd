"""The SageMaker training contract: environment variables, channels and hyperparameters.

SageMaker script mode passes hyperparameters as strings in ``SM_HPS`` (a JSON
object) and mounts each input channel at ``SM_CHANNEL_<NAME>``. The same
variables set by hand run the job locally.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from sagemaker_jobs.model import DEFAULT_ARCHITECTURE, ArchitectureName

TRAIN_CHANNEL = "train"
VALIDATION_CHANNEL = "validation"
WARM_START_CHANNEL = "warm_start"


class SettingsError(ValueError):
    """The job's environment or hyperparameters are invalid; the message names the variable or field."""


class Hyperparameters(BaseModel):
    """Training hyperparameters (strings from SageMaker are converted; unknown names are rejected)."""

    model_config = ConfigDict(extra="forbid")

    model: ArchitectureName = DEFAULT_ARCHITECTURE
    classes: list[str] = Field(min_length=1)
    label_attribute: str = "bounding-box"
    image_size: int = Field(default=256, ge=32, multiple_of=32)
    batch_size: int = Field(default=16, ge=1)
    epochs: int = Field(default=60, ge=1)
    min_steps: int = Field(default=1, ge=1)
    max_steps: int | None = Field(default=None, ge=1)
    max_seconds: float = Field(default=3600.0, gt=0.0)
    lr: float = Field(default=2e-3, gt=0.0)
    weight_decay: float = Field(default=1e-4, ge=0.0)
    seed: int = 0
    num_workers: int = Field(default=2, ge=0)
    model_version: str | None = None

    @field_validator("classes", mode="before")
    @classmethod
    def _classes_from_json(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return json.loads(value)
            except json.JSONDecodeError as exc:
                raise ValueError(f"must be a JSON list of class names: {exc}") from exc
        return value

    @field_validator("classes")
    @classmethod
    def _classes_unique(cls, classes: list[str]) -> list[str]:
        if any(not name.strip() for name in classes) or len(set(classes)) != len(classes):
            raise ValueError("class names must be non-empty and unique")
        return classes


def planned_steps(n_train_images: int, batch_size: int, epochs: int, max_steps: int | None, min_steps: int = 1) -> int:
    """The optimiser steps a job takes: ``epochs`` passes over the training images, at least ``min_steps`` (a
    small corpus still trains enough steps to learn), at most ``max_steps``.

    A pure function of the data and the hyperparameters, so the same inputs train the same steps on any
    machine; ``max_seconds`` only stops a job that runs far longer than planned (reported as a safety stop).
    """
    steps = max(min_steps, epochs * max(1, n_train_images // max(1, min(batch_size, n_train_images))))
    return steps if max_steps is None else min(steps, max_steps)


class TrainingEnvironment(BaseModel):
    """Where the job reads its inputs and writes its outputs."""

    train_dir: Path
    validation_dir: Path
    warm_start_dir: Path | None
    model_dir: Path
    output_data_dir: Path
    hyperparameters: Hyperparameters


def _required_dir(environ: Mapping[str, str], variable: str) -> Path:
    value = environ.get(variable)
    if not value:
        raise SettingsError(f"environment variable {variable} is not set")
    path = Path(value)
    if not path.is_dir():
        raise SettingsError(f"{variable}={value} is not a directory")
    return path


def read_environment(environ: Mapping[str, str] = os.environ) -> TrainingEnvironment:
    """Read channels, output directories and hyperparameters from SageMaker's variables.

    Requires ``SM_CHANNEL_TRAIN``, ``SM_CHANNEL_VALIDATION``, ``SM_MODEL_DIR``,
    ``SM_OUTPUT_DATA_DIR`` and ``SM_HPS`` (with at least ``classes``);
    ``SM_CHANNEL_WARM_START`` is optional. Raises SettingsError naming what is wrong.
    """
    raw_hyperparameters = environ.get("SM_HPS", "{}")
    try:
        decoded = json.loads(raw_hyperparameters)
    except json.JSONDecodeError as exc:
        raise SettingsError(f"SM_HPS is not valid JSON: {exc}") from exc
    if not isinstance(decoded, dict):
        raise SettingsError("SM_HPS must be a JSON object of hyperparameters")
    try:
        hyperparameters = Hyperparameters.model_validate(decoded)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise SettingsError(f"invalid hyperparameters in SM_HPS: {problems}") from exc
    for variable in ("SM_MODEL_DIR", "SM_OUTPUT_DATA_DIR"):
        if not environ.get(variable):
            raise SettingsError(f"environment variable {variable} is not set")
    warm_start = environ.get(f"SM_CHANNEL_{WARM_START_CHANNEL.upper()}")
    return TrainingEnvironment(
        train_dir=_required_dir(environ, f"SM_CHANNEL_{TRAIN_CHANNEL.upper()}"),
        validation_dir=_required_dir(environ, f"SM_CHANNEL_{VALIDATION_CHANNEL.upper()}"),
        warm_start_dir=_required_dir(environ, f"SM_CHANNEL_{WARM_START_CHANNEL.upper()}") if warm_start else None,
        model_dir=Path(environ["SM_MODEL_DIR"]),
        output_data_dir=Path(environ["SM_OUTPUT_DATA_DIR"]),
        hyperparameters=hyperparameters,
    )
