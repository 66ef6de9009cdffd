"""Tell people a run has finished (SNS topic ``NOTIFICATION_TOPIC_ARN``, when configured)."""

from __future__ import annotations

from lambdas.adapters.clients import aws_client
from lambdas.environment import lambda_environment


def notify(subject: str, message: str) -> bool:
    """Publish to the configured topic; False when no topic is configured."""
    topic_arn = lambda_environment().notification_topic_arn
    if topic_arn is None:
        return False
    aws_client("sns").publish(TopicArn=topic_arn, Subject=subject[:100], Message=message)
    return True
