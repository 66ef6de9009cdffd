"""Grants moto's IAM enforcement cannot check (tests/iam runs the handlers under their roles): resources of
services moto authorises against ``*``, statements with conditions, and the narrowed run-data grants."""

from __future__ import annotations

from infra.asl import DEFAULT_PSEUDO_PARAMETERS, resolve_value
from infra.loop_functions import LOOP_HANDLERS, LOOP_WRITES
from tests.iam.role_policies import role_statements

DATA_BUCKET = "arn:aws:s3:::data"
WRITE_ACTIONS = ("s3:PutObject", "s3:DeleteObject*", "s3:DeleteObject")


def _stand_ins(template: dict) -> dict[str, str]:
    values = dict(DEFAULT_PSEUDO_PARAMETERS)
    for logical_id in template["Resources"]:
        values[logical_id] = logical_id
        values[f"{logical_id}.Arn"] = DATA_BUCKET if logical_id.startswith("StorageDataBucket") else logical_id
    return values


def _resolved_statements(template: dict, handler: str) -> list[dict]:
    values = _stand_ins(template)
    statements = []
    for statement in role_statements(template, handler):
        resolved = resolve_value(statement, values)
        for field in ("Action", "Resource"):
            if not isinstance(resolved[field], list):
                resolved[field] = [resolved[field]]
        statements.append(resolved)
    return statements


def _object_patterns(template: dict, handler: str, actions: tuple[str, ...]) -> set[str]:
    """The data-bucket key patterns ``handler``'s role may apply any of ``actions`` to."""
    return {
        resource.removeprefix(f"{DATA_BUCKET}/")
        for statement in _resolved_statements(template, handler)
        if set(statement["Action"]) & set(actions)
        for resource in statement["Resource"]
        if resource.startswith(f"{DATA_BUCKET}/")
    }


def test_the_config_lambda_may_write_its_status_but_not_the_config_it_is_triggered_by(dev):
    writes = _object_patterns(dev.template, "lambdas.config.handler.handler", WRITE_ACTIONS)
    assert writes == {"config/labeling.status.json"}


def test_each_loop_lambda_writes_only_its_own_files_of_a_run_and_deletes_nothing(dev):
    for name, spec in LOOP_HANDLERS.items():
        assert _object_patterns(dev.template, spec.handler, ("s3:PutObject",)) == set(LOOP_WRITES[name]), name
        assert not _object_patterns(dev.template, spec.handler, ("s3:DeleteObject*", "s3:DeleteObject")), name
        assert "runs/*" not in _object_patterns(dev.template, spec.handler, ("s3:PutObject",)), name


def test_the_answer_lambda_writes_only_reviewed_answers_and_rejection_records(dev, prod):
    for synthesized in (dev, prod):
        writes = _object_patterns(synthesized.template, "lambdas.human_review.answer.handler", WRITE_ACTIONS)
        assert writes == {
            "runs/*/iterations/*/human/labels/*",
            "runs/*/iterations/*/human/rejected/*",
            "runs/*/iterations/*/human/gold/*",
            "runs/*/iterations/*/human/unlabellable/*",
            "rejected-answers/*",
        }


def test_lambda_table_and_state_machine_grants_name_the_stacks_own_resources(dev):
    """moto authorises DynamoDB and Step Functions requests against ``*``: their resources are checked here."""
    own = set(dev.template["Resources"])
    for logical_id, resource in dev.template["Resources"].items():
        command = (
            resource["Properties"].get("ImageConfig", {}).get("Command")
            if resource["Type"] == "AWS::Lambda::Function"
            else None
        )
        if not command:
            continue
        for statement in _resolved_statements(dev.template, command[0]):
            if not any(action.startswith(("dynamodb:", "states:")) for action in statement["Action"]):
                continue
            for arn in statement["Resource"]:
                assert arn.split("/", 1)[0] in own, (logical_id, statement)


def test_cloudwatch_may_use_the_topic_key_only_for_this_accounts_alarms(dev, prod):
    for synthesized in (dev, prod):
        (key,) = synthesized.of_type("AWS::KMS::Key").values()
        statements = [
            s
            for s in key["Properties"]["KeyPolicy"]["Statement"]
            if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}
        ]
        assert len(statements) == 1
        condition = statements[0]["Condition"]
        assert condition["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
        source_arn = resolve_value(condition["ArnLike"]["aws:SourceArn"], DEFAULT_PSEUDO_PARAMETERS)
        assert source_arn == "arn:aws:cloudwatch:us-east-1:123456789012:alarm:*"
        assert sorted(statements[0]["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey*"]
