"""Encrypted, SSL-only SQS queues with a dead-letter queue."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.nag import acknowledge


def queue_with_dlq(
    scope: Construct, construct_id: str, *, visibility_timeout: Duration, max_receive_count: int = 5
) -> tuple[sqs.Queue, sqs.Queue]:
    """A queue (SQS-managed encryption, TLS enforced) whose poison messages land in its own DLQ after
    ``max_receive_count`` receives. Returns ``(queue, dlq)``."""
    dlq = sqs.Queue(
        scope,
        f"{construct_id}DeadLetters",
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        retention_period=Duration.days(14),
    )
    acknowledge(
        dlq,
        "AwsSolutions-SQS3",
        "This queue is itself a dead-letter queue.",
    )
    queue = sqs.Queue(
        scope,
        construct_id,
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        visibility_timeout=visibility_timeout,
        retention_period=Duration.days(4),
        dead_letter_queue=sqs.DeadLetterQueue(queue=dlq, max_receive_count=max_receive_count),
    )
    return queue, dlq
