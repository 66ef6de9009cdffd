import json

from boxloop.config import LabelingConfig
from boxloop.iteration_context import JOB_TOKEN_LENGTH, iteration_context, job_token
from boxloop.layout import RunLayout

CONFIG = LabelingConfig.model_validate({"classes": ["bottle", "can"], "workforce": {"batch_timeout_seconds": 7200}})
LAYOUT = RunLayout(bucket="data", run_id="run-1")


def test_job_tokens_differ_per_execution():
    assert len(job_token("run-1-i0000")) == JOB_TOKEN_LENGTH
    assert job_token("run-1-i0000") != job_token("run-1-i0003") and job_token("x") == job_token("x")


def test_the_context_names_the_iteration_s_data_and_training_job():
    context = iteration_context(
        LAYOUT,
        2,
        "run-1-i0000",
        CONFIG,
        None,
        training_model="tiny",
        training_max_seconds=60,
        training_epochs=5,
        training_min_steps=40,
    )
    token = job_token("run-1-i0000")
    assert (context["number"], context["label"], context["job_token"]) == (2, "0002", token)
    assert context["uris"]["train"] == "s3://data/runs/run-1/iterations/0002/training/train/"
    assert "warm_start" not in context["uris"]
    assert context["keys"]["threshold"] == "runs/run-1/iterations/0002/threshold.json"
    assert context["hyperparameters"] == {
        "classes": json.dumps(["bottle", "can"]),
        "label_attribute": "bounding-box",
        "epochs": "5",
        "min_steps": "40",
        "max_seconds": "60",
        "model": "tiny",
        "model_version": f"run-1-i0002-{token}-train",
    }
    assert context["human_timeout_seconds"] == 7200


def test_a_warm_start_is_passed_on():
    context = iteration_context(
        LAYOUT,
        3,
        "e",
        CONFIG,
        "s3://data/m.tar.gz",
        training_model="m",
        training_max_seconds=1,
        training_epochs=1,
        training_min_steps=1,
    )
    assert context["uris"]["warm_start"] == "s3://data/m.tar.gz"
