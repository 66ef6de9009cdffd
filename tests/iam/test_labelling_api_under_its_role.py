"""The labelling API's tests, its handler run under its own synthesized role (browser workforce) with moto's IAM
enforcement on."""

from __future__ import annotations

import pytest

from lambdas.labelling_api import handler as api
from tests.iam.role_credentials import enforce_handler_roles
from tests.iam.role_policies import data_bucket_logical_id
from tests.labelling_api.conftest import BUCKET
from tests.labelling_api.conftest import labelling as open_labelling  # noqa: F401  (fixture)
from tests.labelling_api.test_api import (  # noqa: F401  (run again here, under the role)
    test_a_batch_the_run_no_longer_waits_for_is_closed,
    test_a_claim_returns_the_task_with_a_presigned_image_and_prefilled_boxes,
    test_a_skipped_task_is_released_and_the_next_claim_prefers_another,
    test_an_answer_is_written_once_in_a2i_format_and_charged_once,
    test_bad_answers_are_refused_with_reasons_and_nothing_is_stored,
    test_the_batch_shows_classes_instructions_progress_and_budget,
)


@pytest.fixture
def labelling(open_labelling, monkeypatch, dev):  # noqa: F811
    """The labelling API's mocked account, its handler called under its own role."""
    handlers = {"lambdas.labelling_api.handler.handler": api}
    enforce_handler_roles(monkeypatch, dev.template, handlers, {data_bucket_logical_id(dev.template): BUCKET})
    return open_labelling
