"""The labelling configuration (``config/labeling.json``) and its validation.

A bad configuration is rejected with a message naming the offending field, so
no run ever starts on it. Every number is finite (``Infinity``, ``NaN`` and overflowing
literals such as ``1e999`` are rejected) and within the bounds of its field (README's
configuration table); class names are trimmed and must be unique after trimming.
"""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from boxloop.labeling_time import PREFILLED_FACTOR
from boxloop.manifest import ManifestError, check_attribute_name


class ConfigError(ValueError):
    """The labelling configuration is invalid; the message names the field."""


FINITE_NUMBERS = ConfigDict(extra="forbid", allow_inf_nan=False)
"""Every configuration model: unknown fields and non-finite numbers are errors."""
MAX_CLASS_NAME_LENGTH = 100
MAX_SEED = 2**63 - 1


class HumanParity(BaseModel):
    """Target = measured human-label quality (gold/audit images) minus ``margin``."""

    model_config = FINITE_NUMBERS

    margin: float = Field(default=0.02, ge=0.0, le=0.5)
    fallback_target_miou: float = Field(default=0.6, gt=0.0, lt=1.0)
    min_measured_images: int = Field(default=20, ge=1, le=100_000)


class QualityConfig(BaseModel):
    """What quality auto-labels must reach, and with what confidence."""

    model_config = FINITE_NUMBERS

    target_miou: float = Field(default=0.6, gt=0.0, lt=1.0)
    delta: float = Field(default=0.05, gt=0.0, lt=0.5)
    human_parity: HumanParity | None = None
    min_validation_images: int = Field(default=30, ge=5, le=100_000)
    bound: Literal["betting", "hoeffding-bentkus"] = "betting"


class QcConfig(BaseModel):
    """Rules applied to every human answer before it is merged."""

    model_config = FINITE_NUMBERS

    boundary_tolerance_px: float = Field(default=2.0, ge=0.0, le=1000.0)
    min_box_side_px: float = Field(default=2.0, ge=0.0, le=1000.0)
    duplicate_iou: float = Field(default=0.9, gt=0.0, le=1.0)
    size_outlier_z: float = Field(default=4.0, gt=0.0, le=100.0)
    max_initial_failure_share: float = Field(default=0.10, ge=0.0, le=1.0)
    gold_share: float = Field(default=0.05, ge=0.0, le=0.5)
    min_gold_quality: float = Field(default=0.5, ge=0.0, le=1.0)
    workers_per_image: int = Field(default=1, ge=1, le=5)


DEFAULT_INSTRUCTIONS = (
    "Draw one tight box around every object of the listed classes. Adjust the suggested boxes, delete wrong "
    "ones, and add the ones that are missing."
)


class WorkforceConfig(BaseModel):
    """Who labels: people in boxloop's labelling page (``browser``), A2I human loops (``a2i``, for
    accounts that still have A2I), or the simulated workforce of local runs (``simulated``).

    For ``browser``, ``task_timeout_seconds`` is how long a labeller's lease on a task lasts (an
    abandoned image comes back after it) and ``instructions`` are shown in the page.
    """

    model_config = FINITE_NUMBERS

    kind: Literal["browser", "a2i", "simulated"] = "browser"
    instructions: str = Field(default=DEFAULT_INSTRUCTIONS, min_length=1, max_length=4000)
    workteam_arn: str | None = None
    task_timeout_seconds: int = Field(default=3600, ge=60, le=7 * 86400)
    batch_timeout_seconds: int = Field(default=86400, ge=60, le=365 * 86400)
    simulated_error_rate: float = Field(default=0.08, ge=0.0, le=1.0)
    simulated_workers: int = Field(default=5, ge=1, le=1000)
    simulated_anchoring: float = Field(default=0.0, ge=0.0, le=1.0)
    """Share of the model's pre-filled errors a simulated person keeps (``boxloop.workforce``); 0: none."""
    simulated_prefill_factor: float = Field(default=PREFILLED_FACTOR, gt=0.0, le=1.0)
    """Simulated people's seconds with pre-filled boxes as a share of drawing them (``boxloop.labeling_time``)."""
    seed: int = Field(default=0, ge=0, le=MAX_SEED)


class LabelingConfig(BaseModel):
    """The whole labelling configuration a user uploads."""

    model_config = FINITE_NUMBERS

    classes: list[str] = Field(min_length=1, max_length=50)
    label_attribute: str = "bounding-box"
    quality: QualityConfig = Field(default_factory=QualityConfig)
    human_budget_hours: float = Field(default=100.0, gt=0.0, le=1_000_000.0)
    expected_objects_per_image: float = Field(default=4.0, gt=0.0, le=10_000.0)
    auto_label: bool = True
    initial_sample_size: int = Field(default=300, ge=10, le=1_000_000)
    validation_share: float = Field(default=0.4, gt=0.0, lt=1.0)
    human_batch_size: int = Field(default=200, ge=1, le=1_000_000)
    audit_size: int = Field(default=20, ge=0, le=1_000_000)
    max_iterations: int = Field(default=10, ge=1, le=1000)
    min_images_to_start: int = Field(default=100, ge=1, le=100_000_000)
    qc: QcConfig = Field(default_factory=QcConfig)
    workforce: WorkforceConfig = Field(default_factory=WorkforceConfig)
    seed: int = Field(default=0, ge=0, le=MAX_SEED)

    @field_validator("classes")
    @classmethod
    def _classes_trimmed_unique_and_named(cls, classes: list[str]) -> list[str]:
        trimmed = [name.strip() for name in classes]
        for position, name in enumerate(trimmed):
            if not name:
                raise ValueError(f"class {position}: names must be non-empty")
            if len(name) > MAX_CLASS_NAME_LENGTH:
                raise ValueError(f"class {position}: names are at most {MAX_CLASS_NAME_LENGTH} characters")
            if any(not character.isprintable() for character in name):
                raise ValueError(f"class {position} {name!r}: names may not contain control characters")
        duplicates = sorted({name for name in trimmed if trimmed.count(name) > 1})
        if duplicates:
            raise ValueError(f"class names must be unique after trimming spaces; repeated: {duplicates}")
        return trimmed

    @field_validator("label_attribute")
    @classmethod
    def _attribute_allowed(cls, name: str) -> str:
        try:
            check_attribute_name(name)
        except ManifestError as exc:
            raise ValueError(str(exc)) from exc
        return name

    @model_validator(mode="after")
    def _one_labeller_per_browser_task(self) -> LabelingConfig:
        if self.workforce.kind == "browser" and self.qc.workers_per_image > 1:
            raise ValueError(
                "qc.workers_per_image must be 1 with workforce.kind 'browser' (each image is labelled by one person)"
            )
        return self

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
