"""Acknowledging cdk-nag findings (cdk-nag 3 uses CDK's ``Validations.of(scope).acknowledge``).

Every acknowledgment names the rule, the exact findings (cdk-nag 3 has no prefix
matching: ``AwsSolutions-IAM5[Resource::…]`` one by one) and the reason;
docs/stack.md lists them all.
"""

from __future__ import annotations

from collections.abc import Iterable

from aws_cdk import Acknowledgment, Validations
from constructs import IConstruct


def acknowledge(scope: IConstruct, rule: str, reason: str, findings: Iterable[str] = ()) -> None:
    """Acknowledge ``rule`` on ``scope`` (and what it contains) for each finding, or for the rule as a whole."""
    ids = [f"{rule}[{finding}]" for finding in findings] or [rule]
    Validations.of(scope).acknowledge(*(Acknowledgment(id=rule_id, reason=reason) for rule_id in ids))
