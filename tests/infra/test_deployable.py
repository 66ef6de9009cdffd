"""What a first deploy on a fresh account needs from the stack (issue 12): images it builds, no A2I unless
configured, grants for every call, pool inference sized within its timeouts, a CPU training fallback."""

from __future__ import annotations

import json
from pathlib import Path

import aws_cdk as cdk
import pytest

from infra.application import build_app
from infra.settings import SettingsError, environment_settings
from tests.infra.conftest import Synthesized, cdk_context

WORKTEAM = "arn:aws:sagemaker:eu-west-1:210987654321:workteam/private-crowd/labellers"
A2I_CALLS = ("createFlowDefinition", "createHumanTaskUi")


@pytest.fixture(scope="module")
def a2i(tmp_path_factory) -> Synthesized:
    """dev with ``-c workforce=a2i -c workteam_arn=…``."""
    outdir = tmp_path_factory.mktemp("cdk-a2i")
    app = cdk.App(
        context={**cdk_context(), "env": "dev", "workforce": "a2i", "workteam_arn": WORKTEAM}, outdir=str(outdir)
    )
    stack = build_app(app)
    return Synthesized(template=app.synth().get_stack_by_name(stack.stack_name).template, outdir=outdir)


def _a2i_calls(synthesized: Synthesized) -> list[str]:
    return [json.dumps(r["Properties"]["Create"]) for r in synthesized.of_type("Custom::AWS").values()
            if any(call in json.dumps(r["Properties"].get("Create", "")) for call in A2I_CALLS)]  # fmt: skip


def _function(synthesized: Synthesized, handler: str) -> tuple[str, dict]:
    return next(
        (logical_id, f) for logical_id, f in synthesized.of_type("AWS::Lambda::Function").items()
        if f["Properties"].get("ImageConfig", {}).get("Command") == [handler]
    )  # fmt: skip


def _role_statements(synthesized: Synthesized, role_ref: dict) -> list[dict]:
    role_id = role_ref["Fn::GetAtt"][0]
    return [
        statement
        for policy in synthesized.of_type("AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def _actions(statement: dict) -> list[str]:
    actions = statement["Action"]
    return [actions] if isinstance(actions, str) else actions


def test_no_a2i_resources_unless_an_environment_configures_a2i(dev, prod, a2i):
    for synthesized in (dev, prod):
        assert _a2i_calls(synthesized) == []
        assert "FlowDefinitionArn" not in synthesized.template.get("Outputs", {})
        _, consumer = _function(synthesized, "lambdas.human_review.consumer.handler")
        assert "FLOW_DEFINITION_ARN" not in consumer["Properties"]["Environment"]["Variables"]
    flow = next(call for call in _a2i_calls(a2i) if "createFlowDefinition" in call)
    assert WORKTEAM in flow and "/a2i-output/" in flow
    assert any("createHumanTaskUi" in call for call in _a2i_calls(a2i))
    assert "FlowDefinitionArn" in a2i.template["Outputs"]
    report = json.loads((a2i.outdir / "validation-report.json").read_text())
    assert [v["ruleName"] for p in report["pluginReports"] for v in p["violations"]] == []


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"workforce": "a2i"}, "workforce 'a2i' needs workteam_arn"),
        ({"workforce": "a2i", "workteam_arn": "arn:aws:sagemaker:us-east-1:111122223333:workteam/private-crowd/x"},
         "is a placeholder"),
        ({"workforce": "a2i", "workteam_arn": "arn:aws:sagemaker:us-east-1:1234:workteam/private-crowd/x"}, "workteam_arn"),
        ({"workteam_arn": WORKTEAM}, "only workforce 'a2i' uses it"),
        ({"training_instance_type": "ml.m5.2xlarge"}, "set \"training_accelerator\": \"cpu\""),
        ({"training_accelerator": "cpu", "training_instance_type": "ml.g4dn.xlarge"}, "is not a CPU type"),
        ({"transform_max_payload_mb": 6}, "over the 3600 s invocation timeout"),
    ],
)  # fmt: skip
def test_settings_that_would_fail_a_deploy_or_a_run_are_refused(overrides, problem):
    context = cdk_context()
    context["boxloop:environments"]["dev"].update(overrides)
    with pytest.raises(SettingsError, match=problem.replace("(", r"\(")):
        environment_settings({**context, "env": "dev"})


def test_the_cpu_training_fallback_is_a_setting():
    context = cdk_context()
    context["boxloop:environments"]["dev"].update(training_accelerator="cpu", training_instance_type="ml.m5.2xlarge")
    settings = environment_settings({**context, "env": "dev"})
    assert (settings.training_accelerator, settings.training_instance_type) == ("cpu", "ml.m5.2xlarge")


def test_the_consumer_may_resume_the_run_it_waits_for(dev):
    _, consumer = _function(dev, "lambdas.human_review.consumer.handler")
    statements = _role_statements(dev, consumer["Properties"]["Role"])
    (machine_id,) = dev.of_type("AWS::StepFunctions::StateMachine")
    resume = [s for s in statements if "states:SendTaskSuccess" in _actions(s)]
    assert resume and resume[0]["Resource"] == {"Ref": machine_id}


def test_the_jobs_run_the_image_cdk_builds_from_the_repository(dev):
    states = dev.asl()["States"]
    image = states["TrainDetector"]["Parameters"]["AlgorithmSpecification"]["TrainingImage"]
    assert "cdk-hnb659fds-container-assets-" in image
    assert states["CreateModel"]["Parameters"]["PrimaryContainer"]["Image"] == image
    assets = json.loads(next(Path(dev.outdir).glob("*.assets.json")).read_text())["dockerImages"]
    sources = {asset["source"]["dockerFile"]: asset["source"] for asset in assets.values()}
    assert set(sources) == {"lambdas/Dockerfile", "sagemaker_jobs/Dockerfile"}
    assert all(source["platform"] == "linux/amd64" for source in sources.values())
    assert image.endswith(
        ":" + next(k for k, a in assets.items() if a["source"]["dockerFile"] == "sagemaker_jobs/Dockerfile")
    )
    training = states["TrainDetector"]["Parameters"]
    assert not any(name.startswith("sagemaker_") for name in training["HyperParameters"])
    assert training["Environment"] == {"AWS_DEFAULT_REGION": "us-east-1"}
    role_id = next(k for k in dev.of_type("AWS::IAM::Role") if k.startswith("LabellingSageMakerJobRole"))
    role_ref = {"Fn::GetAtt": [role_id, "Arn"]}
    pulls = [s for s in _role_statements(dev, role_ref) if "ecr:BatchGetImage" in _actions(s)]
    assert pulls and "container-assets" in json.dumps(pulls[0]["Resource"])


def test_pool_inference_requests_are_sized_within_the_invocation_timeout(dev, prod):
    for synthesized in (dev, prod):
        states = synthesized.asl()["States"]
        transform = states["RunPoolInference"]["Parameters"]
        assert transform["MaxPayloadInMB"] == 1 and transform["MaxConcurrentTransforms"] == 1
        assert transform["ModelClientConfig"]["InvocationsTimeoutInSeconds"] == 3600
        assert (
            states["CreateModel"]["Parameters"]["PrimaryContainer"]["Environment"]["SAGEMAKER_PROGRAM"]
            == "inference.py"
        )
