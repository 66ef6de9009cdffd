"""RecordFailure tells the user what to do when SageMaker refuses a job for an instance quota."""

from __future__ import annotations

from lambdas.loop import record_failure
from tests.core.test_job_failures import TRAINING_CAUSE
from tests.lambdas_loop.conftest import BUCKET, RUN_ID
from tests.moto_account import FakeLambdaContext


def test_a_quota_refusal_is_recorded_with_the_quota_and_the_cpu_fallback(aws):
    state = {
        "run_id": RUN_ID,
        "bucket": BUCKET,
        "config_key": "config/labeling.json",
        "resume_from": None,
        "iteration": {"number": 1, "label": "0001"},
        "failure": {"Error": "SageMaker.AmazonSageMakerException", "Cause": TRAINING_CAUSE},
    }
    result = record_failure.handler({"state": state, "execution_name": f"{RUN_ID}-i0000"}, FakeLambdaContext())
    document = aws.read_json(result["failure_key"])
    assert document["advice"] == result["advice"]
    assert "'ml.g4dn.xlarge for training job usage'" in document["advice"]
    assert '"training_accelerator": "cpu"' in document["advice"]


def test_other_failures_carry_no_advice(aws):
    state = {
        "run_id": RUN_ID,
        "bucket": BUCKET,
        "config_key": "config/labeling.json",
        "iteration": {"number": 1, "label": "0001"},
        "failure": {"Error": "States.TaskFailed", "Cause": "boom"},
    }
    result = record_failure.handler({"state": state, "execution_name": f"{RUN_ID}-i0000"}, FakeLambdaContext())
    assert result["advice"] is None and "advice" not in aws.read_json(result["failure_key"])
