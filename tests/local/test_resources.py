"""Resources from the synthesized template: the state machine that runs is the synthesized one."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from boxloop.local.aws import LocalAws
from boxloop.local.resources import HUMAN_REVIEW_CONSUMER_HANDLER, LocalResources, create_resources, synthesize_template
from infra.state_names import HUMAN_STATES


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return synthesize_template("dev")


@pytest.fixture(scope="module")
def created(template: dict[str, Any]) -> Iterator[tuple[LocalAws, LocalResources]]:
    with LocalAws() as aws:
        yield aws, create_resources(aws, template)


def _states(definition: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, state in definition["States"].items():
        yield name, state
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor:
            yield from _states(processor)


def test_the_state_machine_in_moto_is_the_synthesized_definition_unchanged(
    template: dict[str, Any], created: tuple[LocalAws, LocalResources]
) -> None:
    aws, resources = created
    described = aws.client("stepfunctions").describe_state_machine(stateMachineArn=resources.state_machine_arn)
    running = json.loads(described["definition"])
    synthesized = json.loads(
        "".join(
            part if isinstance(part, str) else "\x00"
            for part in next(
                r for r in template["Resources"].values() if r["Type"] == "AWS::StepFunctions::StateMachine"
            )["Properties"]["DefinitionString"]["Fn::Join"][1]
        ).replace("\x00", "REF")
    )

    assert running == resources.definition
    assert [name for name, _ in _states(running)] == [name for name, _ in _states(synthesized)]
    for (name, state), (_, original) in zip(_states(running), _states(synthesized), strict=True):
        assert state["Type"] == original["Type"], name
        assert state.get("Next") == original.get("Next"), name
        assert state.get("Catch") == original.get("Catch"), name


def test_every_task_target_exists_and_the_human_step_is_the_synthesized_queue_task(
    created: tuple[LocalAws, LocalResources],
) -> None:
    aws, resources = created
    function_arns = {f["FunctionArn"] for f in aws.client("lambda").list_functions()["Functions"]}
    human_states = []
    for name, state in _states(resources.definition):
        if state["Type"] != "Task":
            continue
        parameters = state.get("Parameters", {})
        if state["Resource"].endswith(":lambda:invoke"):
            assert parameters["FunctionName"] in function_arns, name
        if state["Resource"] == "arn:aws:states:::sqs:sendMessage.waitForTaskToken":
            assert parameters["QueueUrl"] == resources.human_review_queue_url
            human_states.append(name)
    assert sorted(human_states) == sorted(HUMAN_STATES)


def test_event_wiring_matches_the_template_except_the_consumer_mapping(
    template: dict[str, Any], created: tuple[LocalAws, LocalResources]
) -> None:
    aws, resources = created
    mappings = aws.client("lambda").list_event_source_mappings()["EventSourceMappings"]
    template_mappings = [r for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::EventSourceMapping"]

    assert len(mappings) == len(template_mappings) - 1
    assert len(resources.skipped_event_source_mappings) == 1
    consumer = resources.function_names[HUMAN_REVIEW_CONSUMER_HANDLER]
    assert all(not m["FunctionArn"].endswith(f":{consumer}") for m in mappings)
    notifications = aws.client("s3").get_bucket_notification_configuration(Bucket=resources.data_bucket)
    prefixes = {
        rule["Value"]
        for kind in ("QueueConfigurations", "LambdaFunctionConfigurations")
        for configuration in notifications.get(kind, [])
        for rule in configuration["Filter"]["Key"]["FilterRules"]
    }
    assert {"incoming/", "a2i-output/", "config/labeling.json"} <= prefixes


def test_tables_and_functions_carry_the_template_settings(created: tuple[LocalAws, LocalResources]) -> None:
    aws, resources = created
    images = aws.client("dynamodb").describe_table(TableName=resources.images_table)["Table"]
    assert [index["IndexName"] for index in images["GlobalSecondaryIndexes"]] == ["pending"]
    for handler, name in resources.function_names.items():
        configuration = aws.client("lambda").get_function_configuration(FunctionName=name)
        assert configuration["Handler"] == handler
        assert configuration["Environment"]["Variables"]["RUNS_TABLE"] == resources.runs_table
    assert resources.flow_definition_name.startswith("boxloop-dev-flow-")
