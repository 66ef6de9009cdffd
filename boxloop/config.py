"""The labelling configuration (``config/labeling.json``) and its validation.

A bad configuration is rejected with a message naming the offending field, so
no run ever starts on it.
"""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from boxloop.manifest import ManifestError, check_attribute_name


class ConfigError(ValueError):
    """The labelling configuration is invalid; the message names the field."""


class HumanParity(BaseModel):
    """Target = measured human-label quality (gold/audit images) minus ``margin``."""

    model_config = ConfigDict(extra="forbid")

    margin: float = Field(default=0.02, ge=0.0, le=0.5)
    fallback_target_miou: float = Field(default=0.6, gt=0.0, lt=1.0)
    min_measured_images: int = Field(default=20, ge=1)


class QualityConfig(BaseModel):
    """What quality auto-labels must reach, and with what confidence."""

    model_config = ConfigDict(extra="forbid")

    target_miou: float = Field(default=0.6, gt=0.0, lt=1.0)
    delta: float = Field(default=0.05, gt=0.0, lt=0.5)
    human_parity: HumanParity | None = None
    min_validation_images: int = Field(default=30, ge=5)
    bound: Literal["betting", "hoeffding-bentkus"] = "betting"


class QcConfig(BaseModel):
    """Rules applied to every human answer before it is merged."""

    model_config = ConfigDict(extra="forbid")

    boundary_tolerance_px: float = Field(default=2.0, ge=0.0)
    min_box_side_px: float = Field(default=2.0, ge=0.0)
    duplicate_iou: float = Field(default=0.9, gt=0.0, le=1.0)
    size_outlier_z: float = Field(default=4.0, gt=0.0)
    max_initial_failure_share: float = Field(default=0.10, ge=0.0, le=1.0)
    gold_share: float = Field(default=0.05, ge=0.0, le=0.5)
    min_gold_quality: float = Field(default=0.5, ge=0.0, le=1.0)
    workers_per_image: int = Field(default=1, ge=1, le=5)


class WorkforceConfig(BaseModel):
    """Who labels: A2I human loops, Ground Truth jobs, or the simulated workforce."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["a2i", "ground-truth", "simulated"] = "a2i"
    workteam_arn: str | None = None
    task_timeout_seconds: int = Field(default=3600, ge=60)
    batch_timeout_seconds: int = Field(default=86400, ge=60)
    simulated_error_rate: float = Field(default=0.08, ge=0.0, le=1.0)
    simulated_workers: int = Field(default=5, ge=1)
    seed: int = 0


class LabelingConfig(BaseModel):
    """The whole labelling configuration a user uploads."""

    model_config = ConfigDict(extra="forbid")

    classes: list[str] = Field(min_length=1, max_length=50)
    label_attribute: str = "bounding-box"
    quality: QualityConfig = Field(default_factory=QualityConfig)
    human_budget_hours: float = Field(default=100.0, gt=0.0)
    initial_sample_size: int = Field(default=300, ge=10)
    validation_share: float = Field(default=0.4, gt=0.0, lt=1.0)
    human_batch_size: int = Field(default=200, ge=1)
    audit_size: int = Field(default=20, ge=0)
    max_iterations: int = Field(default=10, ge=1, le=1000)
    min_images_to_start: int = Field(default=100, ge=1)
    qc: QcConfig = Field(default_factory=QcConfig)
    workforce: WorkforceConfig = Field(default_factory=WorkforceConfig)
    seed: int = 0

    @field_validator("classes")
    @classmethod
    def _classes_unique_and_named(cls, classes: list[str]) -> list[str]:
        if any(not name.strip() for name in classes):
            raise ValueError("class names must be non-empty")
        if len(set(classes)) != len(classes):
            raise ValueError("class names must be unique")
        return classes

    @field_validator("label_attribute")
    @classmethod
    def _attribute_allowed(cls, name: str) -> str:
        try:
            check_attribute_name(name)
        except ManifestError as exc:
            raise ValueError(str(exc)) from exc
        return name

    @property
    def class_map(self) -> dict[str, str]:
        """Ground Truth's ``class-map``: class id (as a string) to name."""
        return {str(i): name for i, name in enumerate(self.classes)}

    @property
    def human_budget_seconds(self) -> float:
        return self.human_budget_hours * 3600.0


def _merged(defaults: dict, overrides: dict) -> dict:
    """``overrides`` on top of ``defaults``, nested objects merged key by key."""
    merged = dict(defaults)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merged(merged[key], value)
        else:
            merged[key] = value
    return merged


def _json_object(raw: bytes | str | dict, name: str) -> dict:
    try:
        data = json.loads(raw) if isinstance(raw, (bytes, str)) else raw
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{name} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{name} must be a JSON object")
    return data


def parse_config(raw: bytes | str | dict, defaults: bytes | str | dict | None = None) -> LabelingConfig:
    """Parse and validate a labelling configuration, merged over ``defaults`` (an environment's settings).

    Raises ConfigError whose message names each offending field, e.g.
    ``quality.delta: Input should be less than 0.5``.
    """
    data = _json_object(raw, "labeling.json")
    if defaults:
        data = _merged(_json_object(defaults, "the environment's labelling defaults"), data)
    try:
        return LabelingConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"invalid labeling configuration: {problems}") from exc
