"""A Lambda function's synthesized role policy, resolved for moto's IAM enforcement.

moto (5.2) checks the *action* of every request it serves, but the *resource* only for S3 (bucket and object
ARNs) and SQS (queue ARNs); every other service is asked with resource ``*``. So statements on other services
keep their actions and get ``Resource: "*"`` here, and their resources are checked statically
(``tests/infra/test_state_machine.py``, ``tests/iam/test_role_resources.py``). moto evaluates no condition keys
(a statement with a ``Condition`` is always denied), so a Lambda role statement with a condition is refused here
and must be checked statically instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from infra.asl import DEFAULT_PSEUDO_PARAMETERS, resolve_value

RESOURCE_CHECKED_SERVICES = ("s3", "sqs")
"""Services whose requests moto authorises against the resource ARN, not ``*``."""

TRANSACTION_ACTIONS = {
    "dynamodb:TransactWriteItems": {
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:ConditionCheckItem",
    },
    "dynamodb:TransactGetItems": {"dynamodb:GetItem"},
}
"""moto asks for the transaction's own action; AWS has none and checks each item's action instead. A statement
granting every item action a transaction may use gets moto's transaction action too."""


class UncheckableStatement(ValueError):
    """A statement moto cannot evaluate faithfully (it has a ``Condition``)."""


def function_logical_id(template: Mapping[str, Any], handler: str) -> str:
    """The logical id of the container Lambda whose command is ``handler`` (``lambdas.x.handler.handler``)."""
    matches = [
        logical_id
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Lambda::Function"
        and resource["Properties"].get("ImageConfig", {}).get("Command") == [handler]
    ]
    if len(matches) != 1:
        raise LookupError(f"{len(matches)} functions run {handler!r}")
    return matches[0]


def role_statements(template: Mapping[str, Any], handler: str) -> list[dict]:
    """The raw statements of every inline policy attached to the role of the function running ``handler``."""
    function = template["Resources"][function_logical_id(template, handler)]
    role_logical_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
    statements: list[dict] = []
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::IAM::Policy":
            continue
        if {"Ref": role_logical_id} in resource["Properties"].get("Roles", []):
            statements.extend(resource["Properties"]["PolicyDocument"]["Statement"])
    return statements


def moto_policy(template: Mapping[str, Any], handler: str, bucket_names: Mapping[str, str]) -> dict:
    """The role policy of ``handler``'s function as a policy document moto can enforce.

    ``bucket_names`` maps bucket logical ids to the mocked account's bucket names; other references resolve to
    stand-ins (moto does not check their resources). Raises UncheckableStatement for a statement with a condition.
    """
    values = {**DEFAULT_PSEUDO_PARAMETERS, **_stand_in_references(template)}
    for logical_id, name in bucket_names.items():
        values[logical_id] = name
        values[f"{logical_id}.Arn"] = f"arn:aws:s3:::{name}"
    statements = []
    for statement in role_statements(template, handler):
        if "Condition" in statement:
            raise UncheckableStatement(f"{handler}: moto cannot evaluate the condition of {statement}")
        resolved = resolve_value(statement, values)
        actions = resolved["Action"] if isinstance(resolved["Action"], list) else [resolved["Action"]]
        actions += [transaction for transaction, items in TRANSACTION_ACTIONS.items() if items <= set(actions)]
        checked = [action for action in actions if action.split(":")[0] in RESOURCE_CHECKED_SERVICES]
        unchecked = [action for action in actions if action not in checked]
        if checked:
            statements.append({**resolved, "Action": checked})
        if unchecked:
            statements.append({**resolved, "Action": unchecked, "Resource": "*"})
    return {"Version": "2012-10-17", "Statement": statements}


def _stand_in_references(template: Mapping[str, Any]) -> dict[str, str]:
    values: dict[str, str] = {}
    for logical_id in template["Resources"]:
        values[logical_id] = logical_id
        for attribute in ("Arn", "QueueUrl", "QueueName", "TopicArn", "Name"):
            values[f"{logical_id}.{attribute}"] = f"arn:aws:stand-in:us-east-1:123456789012:{logical_id}"
    return values


def data_bucket_logical_id(template: Mapping[str, Any]) -> str:
    """The logical id of the stack's data bucket (``Storage/DataBucket``)."""
    (logical_id,) = [
        logical_id
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::S3::Bucket" and logical_id.startswith("StorageDataBucket")
    ]
    return logical_id
