"""Per-environment settings of the stack, read from CDK context (``cdk.json``).

``cdk.json`` holds one block per environment under ``boxloop:environments``;
``-c env=<name>`` picks one (``dev`` by default). ``-c workteam_arn=…`` and
``-c alarm_email=…`` override the block's values on the command line.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

ENVIRONMENTS_CONTEXT_KEY = "boxloop:environments"
DEFAULT_ENVIRONMENT = "dev"
OVERRIDABLE_KEYS = ("workteam_arn", "alarm_email")


class SettingsError(ValueError):
    """The environment name or its settings in ``cdk.json`` are invalid."""


class SageMakerImages(BaseModel):
    """The AWS Deep Learning Containers the jobs run in (script mode)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    registry_account: str = Field(pattern=r"^[0-9]{12}$")
    training_repository: str = "pytorch-training"
    training_tag: str
    inference_repository: str = "pytorch-inference"
    inference_tag: str


class EnvironmentSettings(BaseModel):
    """Everything that differs between environments."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9]{0,11}$")
    training_instance_type: str = Field(pattern=r"^ml\.(p|g)[0-9a-z.]+$")
    training_instance_count: int = Field(ge=1, le=8)
    training_volume_gb: int = Field(ge=10, le=1024)
    training_max_runtime_seconds: int = Field(ge=600, le=432000)
    training_model: str = Field(min_length=1)
    training_max_seconds: int = Field(ge=60)
    transform_instance_type: str = Field(pattern=r"^ml\.[0-9a-z.]+$")
    transform_instance_count: int = Field(ge=1, le=100)
    transform_max_payload_mb: int = Field(ge=1, le=100)
    images: SageMakerImages
    removal_policy: Literal["destroy", "retain"]
    versioned_bucket: bool
    point_in_time_recovery: bool
    quarantine_expiry_days: int = Field(ge=1)
    scratch_expiry_days: int = Field(ge=1)
    log_retention: Literal["ONE_WEEK", "TWO_WEEKS", "ONE_MONTH", "THREE_MONTHS", "SIX_MONTHS", "ONE_YEAR"]
    route_max_concurrency: int = Field(ge=1, le=1000)
    labelling_defaults: dict[str, Any] = Field(default_factory=dict)
    workteam_arn: str = Field(pattern=r"^arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:[0-9]{12}:workteam/.+$")
    alarm_email: str = Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def environment_settings(context: dict[str, Any]) -> EnvironmentSettings:
    """The settings of the environment named by context ``env`` (default ``dev``).

    ``context`` maps context keys to values as ``App.node.try_get_context`` returns
    them. Raises SettingsError for an unknown environment or an invalid block.
    """
    environments = context.get(ENVIRONMENTS_CONTEXT_KEY)
    if not isinstance(environments, dict) or not environments:
        raise SettingsError(f"cdk.json context has no '{ENVIRONMENTS_CONTEXT_KEY}' block of environments")
    name = context.get("env") or DEFAULT_ENVIRONMENT
    if name not in environments:
        known = ", ".join(sorted(environments))
        raise SettingsError(f"unknown environment {name!r} (-c env=…): cdk.json defines {known}")
    block = dict(environments[name])
    for key in OVERRIDABLE_KEYS:
        if context.get(key):
            block[key] = context[key]
    try:
        return EnvironmentSettings.model_validate({"name": name, **block})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors())
        raise SettingsError(f"invalid settings for environment {name!r} in cdk.json: {problems}") from exc
