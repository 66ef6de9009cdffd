"""Tell people a run has finished (SNS topic ``NOTIFICATION_TOPIC_ARN``, when configured)."""

from __future__ import annotations

import os
from functools import cache

import boto3

TOPIC_ENV = "NOTIFICATION_TOPIC_ARN"


@cache
def _sns():
    return boto3.client("sns")


def notify(subject: str, message: str) -> bool:
    """Publish to the configured topic; False when no topic is configured."""
    topic_arn = os.environ.get(TOPIC_ENV)
    if not topic_arn:
        return False
    _sns().publish(TopicArn=topic_arn, Subject=subject[:100], Message=message)
    return True
