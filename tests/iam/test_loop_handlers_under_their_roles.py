"""The loop Lambdas' tests, each handler run under its own synthesized role with moto's IAM enforcement on."""

from __future__ import annotations

import re

import pytest

from infra.loop_functions import LOOP_HANDLERS, LOOP_WRITES
from lambdas.loop import (
    check_human_label_quality,
    choose_shard_images_to_infer,
    compute_threshold,
    finalize,
    publish_manifest_version,
    record_failure,
    register_pool,
    route_shard,
    select_images_for_humans,
    select_initial_sample,
    split_train_validation,
)
from tests.iam.role_credentials import RoleCredentials, enforce_handler_roles
from tests.iam.role_policies import data_bucket_logical_id
from tests.lambdas_loop.conftest import BUCKET, RUN_ID
from tests.lambdas_loop.conftest import aws as open_aws  # noqa: F401  (fixture)
from tests.lambdas_loop.test_handlers import (  # noqa: F401  (run again here, under the roles)
    test_a_late_answer_is_published_once_in_the_next_version,
    test_a_resumed_run_failing_before_its_first_context_is_recorded_under_the_iteration_it_was_starting,
    test_a_resumed_run_takes_the_lock_back_unless_another_run_holds_it,
    test_a_trained_iteration_without_budget_asks_nobody_and_hands_the_rest_to_people_waves,
    test_check_human_label_quality_fails_the_run_when_too_many_initial_labels_fail,
    test_record_failure_writes_the_error_and_releases_the_lock,
    test_register_pool_returns_the_iteration_context_and_snapshots_the_config,
    test_register_pool_takes_pending_images_once_and_counts_them_down,
)
from tests.lambdas_loop.test_iteration_chain import (  # noqa: F401
    test_an_iteration_labels_every_image_once_keeps_audits_human_and_stays_in_budget,
    test_finalize_exports_read_back_as_yolo_and_voc,
)
from tests.moto_account import FakeLambdaContext

HANDLERS = {
    f"lambdas.loop.{module.__name__.rsplit('.', 1)[-1]}.handler": module
    for module in (
        check_human_label_quality,
        choose_shard_images_to_infer,
        compute_threshold,
        finalize,
        publish_manifest_version,
        record_failure,
        register_pool,
        route_shard,
        select_images_for_humans,
        select_initial_sample,
        split_train_validation,
    )
}


@pytest.fixture
def handler_roles(open_aws, monkeypatch, dev_a2i) -> dict[str, RoleCredentials]:  # noqa: F811
    """Each loop handler called under its own role; the credentials record what moto authorised."""
    return enforce_handler_roles(
        monkeypatch, dev_a2i.template, HANDLERS, {data_bucket_logical_id(dev_a2i.template): BUCKET}
    )


@pytest.fixture
def aws(open_aws, handler_roles):  # noqa: F811
    """The loop Lambdas' mocked account, each handler called under its own role."""
    return open_aws


def test_every_write_grant_of_every_loop_role_is_used(aws, handler_roles):
    """An excess write grant fails here: a whole iteration, Finalize and RecordFailure use each pattern."""
    test_an_iteration_labels_every_image_once_keeps_audits_human_and_stays_in_budget(aws)
    failure = {"Error": "States.TaskFailed", "Cause": "boom"}
    state = {"run_id": RUN_ID, "bucket": BUCKET, "resume_from": None, "iteration": {"number": 1, "label": "0001"}}
    record_failure.handler(
        {"state": {**state, "failure": failure}, "execution_name": f"{RUN_ID}-i0000"}, FakeLambdaContext()
    )
    for name, spec in LOOP_HANDLERS.items():
        written = [resource for action, resource in handler_roles[spec.handler].authorised if action == "s3:PutObject"]
        for pattern in LOOP_WRITES[name]:
            arn_pattern = re.compile(re.escape(f"arn:aws:s3:::{BUCKET}/{pattern}").replace(r"\*", ".*"))
            assert any(arn_pattern.fullmatch(resource) for resource in written), (name, pattern, written)
