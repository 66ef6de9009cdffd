"""The ingest, config, human-review consumer and answer Lambdas' tests, each handler run under its own synthesized
role with moto's IAM enforcement on: a grant the code needs and the role lacks fails here."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from boxloop.layout import CONFIG_STATUS_KEY
from lambdas.config import handler as config_handler
from lambdas.human_review import answer, consumer
from lambdas.ingest import handler as ingest_handler
from tests.iam.role_credentials import assume_role_with_policy, enforce_handler_roles, under_role
from tests.iam.role_policies import data_bucket_logical_id, moto_policy
from tests.lambdas_events import test_config, test_ingest
from tests.lambdas_events.conftest import (
    BUCKET,
    lambda_context,  # noqa: F401  (fixture)
)
from tests.lambdas_events.conftest import aws as open_aws  # noqa: F401  (fixture)
from tests.lambdas_events.test_config import (  # noqa: F401  (run again here, under the roles)
    test_invalid_config_is_rejected_naming_the_field,
    test_valid_config_after_enough_images_starts_the_run,
    test_valid_config_is_accepted,
)
from tests.lambdas_events.test_human_review import (  # noqa: F401
    batch_of_two,
    test_consumer_starts_one_named_loop_per_task_and_records_the_batch,
    test_empty_batch_resumes_the_run_at_once,
    test_gold_task_scores_the_worker_and_completing_the_batch_resumes_the_run,
    test_one_worker_answer_is_labelled_and_charged_once,
)
from tests.lambdas_events.test_ingest import (  # noqa: F401
    test_bad_uploads_are_quarantined_with_a_reason,
    test_duplicate_events_and_uploads_register_and_count_once,
    test_run_starts_exactly_once_when_the_threshold_is_crossed,
)

HANDLERS = {
    "lambdas.config.handler.handler": config_handler,
    "lambdas.ingest.handler.handler": ingest_handler,
    "lambdas.human_review.consumer.handler": consumer,
    "lambdas.human_review.answer.handler": answer,
}


@pytest.fixture
def aws(open_aws, monkeypatch, dev_a2i):  # noqa: F811
    """The event Lambdas' mocked account, each handler called under its own role."""
    enforce_handler_roles(
        monkeypatch,
        dev_a2i.template,
        HANDLERS,
        {data_bucket_logical_id(dev_a2i.template): BUCKET},
        callers=[test_config, test_ingest],
    )
    return open_aws


def test_the_config_lambda_without_its_status_grant_is_denied(open_aws, lambda_context, dev_a2i):  # noqa: F811
    """The defect these tests found: the config role could write config/labeling.json, not the status it writes."""
    command = "lambdas.config.handler.handler"
    policy = moto_policy(dev_a2i.template, command, {data_bucket_logical_id(dev_a2i.template): BUCKET})
    policy["Statement"] = [s for s in policy["Statement"] if CONFIG_STATUS_KEY not in json.dumps(s["Resource"])]
    open_aws.put_config()
    (event,) = open_aws.s3_events()
    with pytest.raises(ClientError, match="AccessDenied"):
        under_role(config_handler.handler, assume_role_with_policy("config-without-status", policy))(
            event, lambda_context
        )
