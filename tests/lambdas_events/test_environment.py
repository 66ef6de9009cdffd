"""The typed Lambda environment and the shared Powertools set-up."""

from __future__ import annotations

from pathlib import Path

import pytest

from lambdas import observability
from lambdas.environment import VARIABLES, LambdaEnvironmentError, lambda_environment

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def bare_environment(monkeypatch):
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_variables_are_read_typed_with_defaults(bare_environment):
    bare_environment.setenv("RUNS_TABLE", "runs")
    bare_environment.setenv("TRAINING_MAX_SECONDS", "900")
    bare_environment.setenv("NOTIFICATION_TOPIC_ARN", "")
    environment = lambda_environment()
    assert environment.require("runs_table") == "runs"
    assert environment.training_max_seconds == 900 and environment.training_model == "centernet-effnet-lite0"
    assert environment.notification_topic_arn is None and environment.labeling_defaults is None


def test_a_missing_variable_a_function_needs_is_named(bare_environment):
    with pytest.raises(LambdaEnvironmentError, match="STATE_MACHINE_ARN is not set .*ingest and config"):
        lambda_environment().require("state_machine_arn")


def test_an_invalid_variable_is_named(bare_environment):
    bare_environment.setenv("TRAINING_MAX_SECONDS", "an hour")
    with pytest.raises(LambdaEnvironmentError, match="TRAINING_MAX_SECONDS"):
        lambda_environment()


def test_the_model_follows_the_environment_it_is_read_in(bare_environment):
    bare_environment.setenv("IMAGES_TABLE", "images-a")
    assert lambda_environment().require("images_table") == "images-a"
    bare_environment.setenv("IMAGES_TABLE", "images-b")
    assert lambda_environment().require("images_table") == "images-b"


def test_every_variable_is_set_by_the_stack():
    infra_source = "".join(path.read_text() for path in sorted((PROJECT_ROOT / "infra").glob("*.py")))
    assert [name for name in VARIABLES if f'"{name}"' not in infra_source] == []


def test_each_invocation_logs_measures_and_traces_as_its_own_function(bare_environment, lambda_context):
    seen = []

    @observability.lambda_handler
    def handler(event, context):
        logger, metrics, tracer = observability.logger, observability.metrics, observability.tracer
        seen.append((logger.get_current_keys()["service"], metrics.service, tracer.service))
        return event

    for service in ("boxloop-ingest", "boxloop-loop"):
        bare_environment.setenv("POWERTOOLS_SERVICE_NAME", service)
        with pytest.warns(UserWarning, match="No application metrics to publish"):
            assert handler({"n": 1}, lambda_context) == {"n": 1}
    assert seen == [("boxloop-ingest",) * 3, ("boxloop-loop",) * 3]
