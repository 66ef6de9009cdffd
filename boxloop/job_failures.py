"""What to do when SageMaker refuses a job for a service quota (RecordFailure's advice).

New AWS accounts often have a quota of 0 instances for GPU types in SageMaker training and transform
jobs. SageMaker then refuses the job with ``ResourceLimitExceeded`` and a message such as "The
account-level service limit 'ml.g4dn.xlarge for training job usage' is 0 Instances, with current
utilization of 0 Instances and a request delta of 1 Instances. …"; Step Functions hands it to the
Catch as the task's error (``SageMaker.…``) with SageMaker's message in the cause. The quota's name
in Service Quotas (service code ``sagemaker``) is the quoted text.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict

RESOURCE_LIMIT_ERROR = "ResourceLimitExceeded"
_QUOTA = re.compile(
    r"service limit '(?P<quota>(?P<instance_type>ml\.[a-z0-9.\-]+) for (?P<job_kind>training|transform) job usage)'"
    r" is (?P<limit>\d+) Instances?"
    r"(?:, with current utilization of (?P<used>\d+) Instances?)?"
    r"(?: and a request delta of (?P<delta>\d+) Instances?)?"
)
CPU_TRAINING_FALLBACK = {"training_accelerator": "cpu", "training_instance_type": "ml.m5.2xlarge"}
"""The ``cdk.json`` settings that move training to CPU instances (``infra/settings.py`` validates them)."""
CPU_TRANSFORM_FALLBACK = {"transform_instance_type": "ml.c5.xlarge"}
"""The ``cdk.json`` setting that runs pool inference on a CPU instance."""


class QuotaRefusal(BaseModel):
    """A job SageMaker refused because an instance quota is too low."""

    model_config = ConfigDict(frozen=True)

    quota: str
    instance_type: str
    job_kind: Literal["training", "transform"]
    limit: int
    needed: int


def quota_refusal(error: str, cause: str) -> QuotaRefusal | None:
    """The refusal ``error``/``cause`` describe, or None when they are not a training/transform instance quota."""
    if RESOURCE_LIMIT_ERROR not in error and RESOURCE_LIMIT_ERROR not in cause:
        return None
    match = _QUOTA.search(cause)
    if match is None:
        return None
    used, delta = int(match["used"] or 0), int(match["delta"] or 1)
    return QuotaRefusal(
        quota=match["quota"],
        instance_type=match["instance_type"],
        job_kind=match["job_kind"],  # type: ignore[arg-type]
        limit=int(match["limit"]),
        needed=used + delta,
    )


def _settings_text(settings: dict[str, str]) -> str:
    return ", ".join(f'"{key}": "{value}"' for key, value in settings.items())


def quota_advice(refusal: QuotaRefusal) -> str:
    """What the user can do: the quota to raise (with the AWS CLI commands), or the CPU setting to choose."""
    find_code = (
        "aws service-quotas list-service-quotas --service-code sagemaker "
        f"--query \"Quotas[?QuotaName=='{refusal.quota}'].QuotaCode\" --output text"
    )
    request = (
        "aws service-quotas request-service-quota-increase --service-code sagemaker "
        f"--quota-code <the code the first command prints> --desired-value {refusal.needed}"
    )
    if refusal.job_kind == "training":
        fallback = (
            f"Or train on CPU instead: set {_settings_text(CPU_TRAINING_FALLBACK)} in the environment's block of "
            "cdk.json and redeploy. CPU training is much slower (about 10 images/s on 2 cores against hundreds on "
            "a GPU), so each iteration trains fewer steps in training_max_seconds and its model is weaker."
        )
    else:
        fallback = (
            f"Or run pool inference on CPU: set {_settings_text(CPU_TRANSFORM_FALLBACK)} in the environment's "
            "block of cdk.json and redeploy (slower per image, no GPU quota needed)."
        )
    return (
        f"SageMaker refused the {refusal.job_kind} job: this account's service quota '{refusal.quota}' is "
        f"{refusal.limit} instances and the job needs {refusal.needed}. Request an increase (Service Quotas, "
        f"service code sagemaker; approval can take a day), then resume the run from its last published "
        f"version:\n  {find_code}\n  {request}\n{fallback}"
    )


def job_failure_advice(error: str, cause: str) -> str | None:
    """Advice for a failed state's ``error``/``cause`` when it is a SageMaker quota refusal; None otherwise."""
    refusal = quota_refusal(error, cause)
    return quota_advice(refusal) if refusal else None
