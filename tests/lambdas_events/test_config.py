"""Config Lambda on moto: accept / reject with the field named, and run start on a valid config."""

from __future__ import annotations

from lambdas.config.handler import handler
from lambdas.ingest.handler import handler as ingest_handler
from tests.lambdas_events.conftest import BUCKET, image_bytes


def _config_event(aws) -> dict:
    (event,) = aws.s3_events()
    return event


def test_valid_config_is_accepted(aws, lambda_context):
    aws.put_config(min_images_to_start=50)
    assert handler(_config_event(aws), lambda_context) == {"checked": 1, "valid": [True]}
    status = aws.read_json("config/labeling.status.json")
    assert status["valid"] is True
    assert status["classes"] == ["bottle", "can"]
    assert "error" not in status
    assert aws.executions() == []


def test_invalid_config_is_rejected_naming_the_field(aws, lambda_context):
    aws.put_config(quality={"delta": 0.9}, classes=["bottle", "bottle"])
    assert handler(_config_event(aws), lambda_context) == {"checked": 1, "valid": [False]}
    status = aws.read_json("config/labeling.status.json")
    assert status["valid"] is False
    assert "quality.delta" in status["error"]
    assert "classes" in status["error"]


def test_config_that_is_not_json_is_rejected(aws, lambda_context):
    aws.s3.put_object(Bucket=BUCKET, Key="config/labeling.json", Body=b"classes: [bottle]")
    handler(_config_event(aws), lambda_context)
    assert "not valid JSON" in aws.read_json("config/labeling.status.json")["error"]


def test_valid_config_after_enough_images_starts_the_run(aws, lambda_context):
    for seed in range(2):
        aws.s3.put_object(Bucket=BUCKET, Key=f"incoming/{seed}.png", Body=image_bytes("PNG", seed=seed))
    ingest_handler(aws.sqs_batch(), lambda_context)
    assert aws.executions() == []  # no config yet
    aws.put_config(min_images_to_start=2)
    handler(_config_event(aws), lambda_context)
    (execution,) = aws.executions()
    assert execution["name"] == f"{aws.runs_item('ACTIVE', 'RUN')['run_id']['S']}-i0000"


def test_non_finite_budget_is_rejected_and_starts_no_run(aws, lambda_context):
    for seed in range(2):
        aws.s3.put_object(Bucket=BUCKET, Key=f"incoming/{seed}.png", Body=image_bytes("PNG", seed=seed))
    ingest_handler(aws.sqs_batch(), lambda_context)
    aws.put_config(min_images_to_start=2, human_budget_hours=float("inf"), classes=["a", " a"])
    assert handler(_config_event(aws), lambda_context) == {"checked": 1, "valid": [False]}
    error = aws.read_json("config/labeling.status.json")["error"]
    assert "human_budget_hours: Input should be a finite number" in error
    assert "unique after trimming" in error
    assert aws.executions() == []
    assert aws.runs_item("ACTIVE", "RUN") is None  # no run claimed the waiting images
    assert aws.runs_item("COUNTER", "REGISTERED")["count"]["N"] == "2"
