"""Per-environment settings of the stack, read from CDK context (``cdk.json``).

``cdk.json`` holds one block per environment under ``boxloop:environments``;
``-c env=<name>`` picks one (``dev`` by default). ``-c workforce=…``,
``-c workteam_arn=…`` and ``-c alarm_email=…`` override the block's values on the
command line.

Pool inference is sized so that no batch-transform request can time out: a request
holds at most ``transform_max_payload_mb`` MiB of pool lines, a pool line (an
``ImageRecord``) is at least ``MIN_POOL_LINE_BYTES`` long, and at the slowest measured
CPU inference (``SLOWEST_SECONDS_PER_IMAGE``) those images must finish within
SageMaker's longest invocation timeout (``TRANSFORM_INVOCATION_TIMEOUT_SECONDS``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

ENVIRONMENTS_CONTEXT_KEY = "boxloop:environments"
DEFAULT_ENVIRONMENT = "dev"
OVERRIDABLE_KEYS = ("workforce", "workteam_arn", "alarm_email")
GPU_INSTANCE_FAMILIES = ("p", "g")
CPU_INSTANCE_FAMILIES = ("m", "c", "r")
WORKTEAM_ARN_PATTERN = r"^arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:[0-9]{12}:workteam/(private|vendor)-crowd/[A-Za-z0-9-]+$"
DOCUMENTATION_ACCOUNTS = frozenset({"111122223333", "444455556666", "777788889999"})
"""Account ids AWS's documentation uses in examples: a workteam in one is a placeholder."""
TRANSFORM_INVOCATION_TIMEOUT_SECONDS = 3600
"""SageMaker's longest ``ModelClientConfig.InvocationsTimeoutInSeconds``; the transform job asks for it."""
MIN_POOL_LINE_BYTES = 174
"""The shortest pool line: an ImageRecord with a 3-letter bucket, a 1-letter key and 1×1 pixels."""
SLOWEST_SECONDS_PER_IMAGE = 0.47
"""The slowest CPU pool inference measured: plain + mirrored pass at 256 px on a loaded 2-core machine
(docs/benchmarks.md; 0.147 s on a quiet one)."""


class SettingsError(ValueError):
    """The environment name or its settings in ``cdk.json`` are invalid."""


class EnvironmentSettings(BaseModel):
    """Everything that differs between environments."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9]{0,11}$")
    training_accelerator: Literal["gpu", "cpu"] = "gpu"
    """``cpu`` trains on a CPU instance type (for accounts without GPU quota): the same training_epochs take
    far longer (about 10 images/s on 2 CPU cores against hundreds on a GPU); lower them or raise the safety stops."""
    training_instance_type: str = Field(pattern=r"^ml\.[a-z][0-9a-z]*\.[0-9a-z]+$")
    training_instance_count: int = Field(ge=1, le=8)
    training_volume_gb: int = Field(ge=10, le=1024)
    training_max_runtime_seconds: int = Field(ge=600, le=432000)
    training_model: str = Field(min_length=1)
    training_max_seconds: int = Field(ge=60)
    """Only a safety stop: a job trains the steps ``training_epochs`` give on its data, whatever the machine."""
    training_epochs: int = Field(default=60, ge=1)
    training_min_steps: int = Field(default=300, ge=1)
    """Steps a job trains at least, however few its training images (60 epochs of 40 images are only 120 steps)."""
    transform_instance_type: str = Field(pattern=r"^ml\.[0-9a-z.]+$")
    transform_instance_count: int = Field(ge=1, le=100)
    transform_max_payload_mb: int = Field(ge=1, le=100)
    removal_policy: Literal["destroy", "retain"]
    versioned_bucket: bool
    point_in_time_recovery: bool
    quarantine_expiry_days: int = Field(ge=1)
    scratch_expiry_days: int = Field(ge=1)
    log_retention: Literal["ONE_WEEK", "TWO_WEEKS", "ONE_MONTH", "THREE_MONTHS", "SIX_MONTHS", "ONE_YEAR"]
    route_max_concurrency: int = Field(ge=1, le=1000)
    """Parallel Lambdas in each Distributed Map over shards (ChooseImagesToInfer, RouteImages)."""
    labelling_defaults: dict[str, Any] = Field(default_factory=dict)
    workforce: Literal["browser", "a2i"] = "browser"
    """Who labels on AWS: ``browser`` (boxloop's labelling page, API and sign-in) or ``a2i`` (accounts that
    still have A2I)."""
    workteam_arn: str | None = Field(default=None, pattern=WORKTEAM_ARN_PATTERN)
    """The A2I workteam (``workforce: a2i`` only, required there); other workforces create no A2I resource."""
    alarm_email: str = Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

    @model_validator(mode="after")
    def _consistent(self) -> EnvironmentSettings:
        family = self.training_instance_type.removeprefix("ml.")[0]
        families = GPU_INSTANCE_FAMILIES if self.training_accelerator == "gpu" else CPU_INSTANCE_FAMILIES
        if family not in families:
            raise ValueError(
                f"training_instance_type {self.training_instance_type} is not a {self.training_accelerator.upper()} "
                f"type (families {', '.join(f'ml.{f}*' for f in families)}); to train on CPU, set "
                '"training_accelerator": "cpu" with a CPU type such as ml.m5.2xlarge'
            )
        if self.workforce == "a2i" and self.workteam_arn is None:
            raise ValueError("workforce 'a2i' needs workteam_arn, the ARN of your private A2I workteam")
        if self.workforce != "a2i" and self.workteam_arn is not None:
            raise ValueError(f"workteam_arn is set but workforce is {self.workforce!r}; only workforce 'a2i' uses it")
        if self.workteam_arn is not None and self.workteam_arn.split(":")[4] in DOCUMENTATION_ACCOUNTS:
            raise ValueError(f"workteam_arn {self.workteam_arn} is a placeholder (an AWS documentation account)")
        records = self.transform_max_payload_mb * 2**20 // MIN_POOL_LINE_BYTES
        if records * SLOWEST_SECONDS_PER_IMAGE > TRANSFORM_INVOCATION_TIMEOUT_SECONDS:
            raise ValueError(
                f"transform_max_payload_mb {self.transform_max_payload_mb} lets one request hold {records} images, "
                f"{records * SLOWEST_SECONDS_PER_IMAGE:.0f} s at {SLOWEST_SECONDS_PER_IMAGE} s per image: over the "
                f"{TRANSFORM_INVOCATION_TIMEOUT_SECONDS} s invocation timeout"
            )
        return self


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
