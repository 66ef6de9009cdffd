"""Acknowledging cdk-nag findings (cdk-nag 3 uses CDK's ``Validations.of(scope).acknowledge``).

Every acknowledgment names the rule, the exact findings (cdk-nag 3 has no prefix
matching: ``AwsSolutions-IAM5[Resource::…]`` one by one) and the reason;
docs/stack.md lists them all.
"""

from __future__ import annotations

from collections.abc import Iterable

from aws_cdk import Acknowledgment, Stack, Validations
from constructs import IConstruct


def acknowledge(scope: IConstruct, rule: str, reason: str, findings: Iterable[str] = ()) -> None:
    """Acknowledge ``rule`` on ``scope`` (and what it contains) for each finding, or for the rule as a whole."""
    ids = [f"{rule}[{finding}]" for finding in findings] or [rule]
    Validations.of(scope).acknowledge(*(Acknowledgment(id=rule_id, reason=reason) for rule_id in ids))


CDK_GRANT_ACTION_GROUPS = ("s3:GetBucket*", "s3:GetObject*", "s3:List*", "s3:Abort*", "s3:DeleteObject*")
"""The action groups CDK's ``Bucket.grant_*`` methods write (read, write, delete families of one bucket)."""


def arn_token(construct: IConstruct) -> str:
    """How cdk-nag prints ``Fn::GetAtt [<logical id>, Arn]`` of an L2 construct's resource: ``<LogicalId.Arn>``."""
    stack = Stack.of(construct)
    return f"<{stack.resolve(stack.get_logical_id(construct.node.default_child))}.Arn>"


def acknowledge_object_prefixes(scope: IConstruct, bucket: IConstruct, prefixes: Iterable[str], reason: str) -> None:
    """Acknowledge IAM5 for object ARNs ``<bucket>/<prefix>*`` and CDK's bucket-grant action groups under ``scope``."""
    findings = [f"Resource::{arn_token(bucket)}/{prefix}*" for prefix in prefixes]
    findings += [f"Action::{action}" for action in CDK_GRANT_ACTION_GROUPS]
    acknowledge(scope, "AwsSolutions-IAM5", reason, findings)
