"""How the labelling state machine's tasks retry: which errors are transient, and one backoff for all of them."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_stepfunctions as sfn

LAMBDA_TRANSIENT_ERRORS = [
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
    "Lambda.Unknown",
    "TransientStorageError",
]
SAGEMAKER_TRANSIENT_ERRORS = ["SageMaker.AmazonSageMakerException", "SageMaker.ThrottlingException"]
SQS_TRANSIENT_ERRORS = ["SQS.AmazonSQSException", "SQS.SdkClientException"]

TRANSIENT_RETRY = {"interval": Duration.seconds(5), "max_attempts": 4, "backoff_rate": 2.0}
"""The one backoff of every retry: 5 s, doubling, at most 4 attempts."""


def retry_transient_errors(task: sfn.TaskStateBase, errors: list[str], *, jitter: bool = True) -> None:
    """Retry ``errors`` on ``task`` with ``TRANSIENT_RETRY``, spread by full jitter unless ``jitter`` is False.

    The human-review queue tasks retry without jitter (one message per iteration, nothing to spread).
    """
    task.add_retry(errors=errors, jitter_strategy=sfn.JitterType.FULL if jitter else None, **TRANSIENT_RETRY)
