"""The synthesized state machine in moto runs a whole run on the real loop Lambdas.

Lambda invocations call the handlers in-process (``tests/infra/moto_hooks.py``), SageMaker jobs
run the stand-in detector (``boxloop.local.sagemaker``), and the test answers each human
batch from the queue as the human-answer Lambda would, then resumes the execution.
"""

from __future__ import annotations

import importlib
import json
import time
from pathlib import Path

import boto3
import pytest

from boxloop.local.sagemaker.job_code import SageMakerJobCode
from boxloop.local.sagemaker.local_sagemaker import LocalSageMaker
from boxloop.models import HumanTaskPurpose, LabelSource
from infra.asl import resolve_definition
from lambdas.adapters import runs
from tests.infra.conftest import synthesize
from tests.infra.moto_hooks import invoke_in_process
from tests.infra.test_state_machine_in_moto import _local_substitutions
from tests.lambdas_loop import stand_in_detector
from tests.lambdas_loop.conftest import BUCKET, RUN_ID
from tests.moto_account import REGION, FakeLambdaContext

HERE = Path(__file__).parent
RUN_SECONDS = 60


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> dict:
    return synthesize("dev", tmp_path_factory.mktemp("cdk-dev")).template


def _with_lambda_context(handler):
    """The handler called with a context that has every field Powertools reads."""
    return lambda event, context: handler(event, FakeLambdaContext(function_name=context.function_name))


def _handlers(template: dict) -> dict:
    """Function logical id → the loop handler its image command names."""
    handlers = {}
    for logical_id, resource in template["Resources"].items():
        command = (
            resource["Properties"].get("ImageConfig", {}).get("Command")
            if resource["Type"] == "AWS::Lambda::Function"
            else None
        )
        if command and command[0].startswith("lambdas.loop."):
            module, function = command[0].rsplit(".", 1)
            handlers[logical_id] = _with_lambda_context(getattr(importlib.import_module(module), function))
    return handlers


def _state_machine(template: dict) -> tuple[str, str]:
    """Create the definition's resources (the data bucket is ``BUCKET``); returns the machine ARN and queue URL."""
    substitutions = _local_substitutions(template)
    (data_bucket,) = [
        key
        for key, r in template["Resources"].items()
        if key.startswith("StorageDataBucket") and r["Type"] == "AWS::S3::Bucket"
    ]
    substitutions[data_bucket] = BUCKET
    substitutions[f"{data_bucket}.Arn"] = f"arn:aws:s3:::{BUCKET}"
    (queue,) = [
        key
        for key in template["Resources"]
        if key.startswith("HumanReviewHumanReviewQueue")
        and "DeadLetters" not in key
        and template["Resources"][key]["Type"] == "AWS::SQS::Queue"
    ]
    sfn = boto3.client("stepfunctions", region_name=REGION)
    machine = sfn.create_state_machine(
        name="boxloop-loop",
        definition=json.dumps(resolve_definition(template, substitutions)),
        roleArn="arn:aws:iam::123456789012:role/local",
    )["stateMachineArn"]
    return machine, substitutions[queue]


def _answer_batches(aws, queue_url: str) -> int:
    """Answer every human batch on the queue (all tasks, 4 s each) and resume the execution; returns how many."""
    sqs, sfn = boto3.client("sqs", region_name=REGION), boto3.client("stepfunctions", region_name=REGION)
    answered = 0
    for message in sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
        body = json.loads(message["Body"])
        for task in aws.tasks(body["iteration"]):
            aws.answer(body["iteration"], task, 4.0)
        sfn.send_task_success(
            taskToken=body["task_token"], output=json.dumps({"answered": len(aws.tasks(body["iteration"]))})
        )
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        answered += 1
    return answered


@pytest.mark.timeout(180)
def test_a_run_goes_from_registration_to_report_through_the_synthesized_state_machine(aws, template, tmp_path):
    aws.put_config(max_iterations=1, human_budget_hours=0.34, expected_objects_per_image=1)
    aws.register_images(80)
    with LocalSageMaker(
        SageMakerJobCode(
            training_script=HERE / "stand_in_detector_train.py",
            inference_module=stand_in_detector.__name__,
            log_dir=tmp_path / "jobs",
        )
    ):
        machine, queue_url = _state_machine(template)
        sfn = boto3.client("stepfunctions", region_name=REGION)
        with invoke_in_process(_handlers(template)):
            execution = sfn.start_execution(
                stateMachineArn=machine,
                name=f"{RUN_ID}-i0000",
                input=json.dumps(
                    {"run_id": RUN_ID, "bucket": BUCKET, "config_key": "config/labeling.json", "resume_from": None}
                ),
            )["executionArn"]
            batches = 0
            deadline = time.monotonic() + RUN_SECONDS
            while (description := sfn.describe_execution(executionArn=execution))["status"] == "RUNNING":
                assert time.monotonic() < deadline, "the run did not finish"
                batches += _answer_batches(aws, queue_url)
                time.sleep(0.1)

    assert description["status"] == "SUCCEEDED", description
    output = json.loads(description["output"])
    # the initial sample in two waves (10 before anyone is measured, then 20), the uncertain images of the one
    # trained iteration, then people finish the pool
    assert batches == 4 and output["progress"]["iteration_cap_reached"] and output["progress"]["pool_labelled"]
    assert output["final"]["manifest_version"] == 4 and runs.active_run() is None
    sources = [
        json.loads(line)["bounding-box-metadata"]["label-source"]
        for key in aws.keys(f"runs/{RUN_ID}/manifests/v0004/shard-")
        for line in aws.read_lines(key)
    ]
    assert LabelSource.AUTO.value in sources and LabelSource.AUDIT.value in sources and len(sources) == 80
    assert [len(aws.tasks(0)), len(aws.tasks(1))] == [10, 20]
    assert {task.purpose for task in aws.tasks(3)} == {HumanTaskPurpose.REMAINING}
    report = aws.read_json(f"runs/{RUN_ID}/report/report.json")
    assert report["finish"]["images_finished_by_people"] == len(aws.tasks(3)) and report["images_unlabelled"] == 0
    assert aws.read_json(f"runs/{RUN_ID}/report/report.json")["images_total"] == 80
    assert aws.keys(f"runs/{RUN_ID}/exports/coco/annotations.json")
