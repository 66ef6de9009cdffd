"""The Lambda environment, read through one typed model.

The variables are set by the CDK constructs (``infra/stack.py`` for every function,
``infra/ingest.py``, ``infra/human_review.py``, ``infra/loop_functions.py`` and
``infra/lambda_image.py`` for some); the local run gives each function the variables of its
synthesized template. Variables only some functions have are optional here: ``require``
fails with a clear message when a function that needs one lacks it.

``lambda_environment()`` reads ``os.environ`` on each call and parses each distinct set of
values once, so it follows the variables a test or the local run's in-process Lambda
runtime applies for an invocation.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

RequiredVariable = Literal[
    "images_table",
    "runs_table",
    "idempotency_table",
    "state_machine_arn",
    "flow_definition_arn",
    "labelling_table",
    "data_bucket",
]


class LambdaEnvironmentError(RuntimeError):
    """A variable the function needs is missing or invalid; the message names it."""


class LambdaEnvironment(BaseModel):
    """The variables boxloop's handlers and adapters read (field aliases are the variable names)."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="forbid")

    images_table: str | None = Field(None, alias="IMAGES_TABLE", description="every function (infra/stack.py)")
    runs_table: str | None = Field(None, alias="RUNS_TABLE", description="every function (infra/stack.py)")
    idempotency_table: str | None = Field(
        None, alias="IDEMPOTENCY_TABLE", description="every function (infra/stack.py); the human-answer Lambda uses it"
    )
    state_machine_arn: str | None = Field(
        None, alias="STATE_MACHINE_ARN", description="the ingest and config Lambdas (infra/stack.py), which start runs"
    )
    flow_definition_arn: str | None = Field(
        None, alias="FLOW_DEFINITION_ARN", description="the human-review Lambdas (infra/human_review.py)"
    )
    notification_topic_arn: str | None = Field(
        None, alias="NOTIFICATION_TOPIC_ARN", description="Finalize (infra/loop_functions.py); none: no notice"
    )
    labeling_defaults: str | None = Field(
        None, alias="LABELING_DEFAULTS", description="JSON labelling defaults of the environment (infra/stack.py)"
    )
    training_model: str = Field(
        "centernet-effnet-lite0", alias="TRAINING_MODEL", description="RegisterPool (infra/loop_functions.py)"
    )
    training_max_seconds: int = Field(
        3600, gt=0, alias="TRAINING_MAX_SECONDS", description="RegisterPool (infra/loop_functions.py)"
    )
    training_epochs: int = Field(
        60, ge=1, alias="TRAINING_EPOCHS", description="RegisterPool (infra/loop_functions.py): epochs per training job"
    )
    training_min_steps: int = Field(
        1,
        ge=1,
        alias="TRAINING_MIN_STEPS",
        description="RegisterPool (infra/loop_functions.py): steps per job at least",
    )
    service_name: str | None = Field(
        None, alias="POWERTOOLS_SERVICE_NAME", description="each function's Powertools service (infra/lambda_image.py)"
    )
    data_bucket: str | None = Field(None, alias="DATA_BUCKET", description="every function (infra/stack.py)")
    labelling_table: str | None = Field(
        None,
        alias="LABELLING_TABLE",
        description="the browser workforce: the human-review consumer and the labelling API",
    )
    image_url_seconds: int = Field(
        300, gt=0, le=3600, alias="IMAGE_URL_SECONDS", description="the labelling API: lifetime of presigned image URLs"
    )
    site_origin: str | None = Field(
        None, alias="SITE_ORIGIN", description="the labelling API: the page's origin allowed by CORS (none: no CORS)"
    )

    def require(self, field: RequiredVariable) -> str:
        """The value of a variable this function needs; LambdaEnvironmentError naming it when it is not set."""
        value = getattr(self, field)
        if value is None:
            info = type(self).model_fields[field]
            raise LambdaEnvironmentError(
                f"{info.alias} is not set in this Lambda function's environment (set for {info.description})"
            )
        return value


VARIABLES = tuple(info.alias for info in LambdaEnvironment.model_fields.values())
"""The names of the variables the model reads."""


def lambda_environment() -> LambdaEnvironment:
    """The current environment as a ``LambdaEnvironment`` (empty variables count as unset)."""
    return _parsed(tuple((name, os.environ.get(name) or None) for name in VARIABLES))


@lru_cache(maxsize=32)
def _parsed(values: tuple[tuple[str, str | None], ...]) -> LambdaEnvironment:
    try:
        return LambdaEnvironment.model_validate({name: value for name, value in values if value is not None})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}" for error in exc.errors())
        raise LambdaEnvironmentError(f"invalid Lambda environment: {problems}") from exc
