"""The configuration a local run uses: the uploaded file over the stack's defaults, then the run's snapshot."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from types import SimpleNamespace

import boto3
from rich.console import Console

from boxloop.config import parse_config
from boxloop.layout import RunLayout
from boxloop.local.progress import RunProgress
from boxloop.local.run_config import config_over_stack_defaults, read_run_config
from boxloop.local.watcher import RunWatcher

BUCKET = "data"
RUN_ID = "run-1"
PARTIAL_CONFIG = b'{"classes": ["bottle", "can"]}'
STACK_DEFAULTS = {"human_budget_hours": 10, "max_iterations": 5}


def _resources() -> SimpleNamespace:
    """The parts of ``LocalResources`` the run's configuration and the watcher read."""
    environment = {"DATA_BUCKET": BUCKET, "LABELING_DEFAULTS": json.dumps(STACK_DEFAULTS)}
    return SimpleNamespace(
        data_bucket=BUCKET, shared_environment=environment, images_table="i", runs_table="r", idempotency_table="d"
    )


def _snapshot_the_run_config() -> None:
    """What RegisterPool writes: the uploaded configuration over the defaults, validated, in full."""
    config = parse_config(PARTIAL_CONFIG, STACK_DEFAULTS)
    key = RunLayout(bucket=BUCKET, run_id=RUN_ID).config
    boto3.client("s3").put_object(Bucket=BUCKET, Key=key, Body=config.model_dump_json(indent=2).encode())


def test_the_uploaded_config_is_read_over_the_stacks_defaults() -> None:
    config = config_over_stack_defaults(PARTIAL_CONFIG, _resources())

    assert config.human_budget_hours == 10 and config.max_iterations == 5
    assert parse_config(PARTIAL_CONFIG).human_budget_hours == 100  # the file alone says otherwise


def test_the_run_config_is_the_snapshot_once_register_pool_wrote_it(mocked_aws: None) -> None:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    assert read_run_config(s3, BUCKET, RUN_ID) is None

    _snapshot_the_run_config()

    assert read_run_config(s3, BUCKET, RUN_ID) == parse_config(PARTIAL_CONFIG, STACK_DEFAULTS)


def _last_panel(out: Console) -> str:
    text = out.export_text(clear=False)
    return " ".join(text[text.rindex("boxloop run") :].split())


def test_the_progress_panel_shows_the_budget_the_run_uses(mocked_aws: None, role_arn: str, tmp_path: Path) -> None:
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    _snapshot_the_run_config()
    sfn = boto3.client("stepfunctions")
    definition = {"StartAt": "RegisterPool", "States": {"RegisterPool": {"Type": "Pass", "End": True}}}
    machine = sfn.create_state_machine(name="loop", definition=json.dumps(definition), roleArn=role_arn)
    execution = sfn.start_execution(stateMachineArn=machine["stateMachineArn"], name=f"{RUN_ID}-i0000", input="{}")
    out = Console(file=io.StringIO(), force_terminal=True, width=120, record=True, color_system=None)
    aws = SimpleNamespace(client=boto3.client)
    workforce = SimpleNamespace(errors=[])

    uploaded_budget = parse_config(PARTIAL_CONFIG).human_budget_seconds  # 100 h: the file without the defaults
    with RunProgress(RUN_ID, uploaded_budget, console=out, clock=time.monotonic) as progress:
        watcher = RunWatcher(
            aws, _resources(), RUN_ID, tmp_path, progress, workforce, poll_seconds=0.05, saved_version=None
        )
        description = watcher.watch(execution["executionArn"])

    assert description["status"] == "SUCCEEDED"
    assert "0.00 h of 10.0 h (0%)" in _last_panel(out)
