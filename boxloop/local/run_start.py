"""How a local run's execution starts: the images and then the configuration uploaded (the config Lambda
starts the run), or a resumed run's execution started from its saved state."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from boxloop.layout import CONFIG_KEY, CONFIG_STATUS_KEY, INCOMING_PREFIX, QUARANTINE_PREFIX
from boxloop.local.aws import LocalAws
from boxloop.local.human_workforce import image_files
from boxloop.local.process_environment import PROCESS_ENVIRONMENT
from boxloop.local.resources import LocalResources
from boxloop.local.run_records import LocalRunError
from boxloop.local.snapshot import Snapshot
from lambdas.adapters.executions import execution_name
from lambdas.adapters.runs import active_run, claim_active_run, mark_run_started, registered_image_count


def upload_images(aws: LocalAws, bucket: str, images_dir: Path, console: Console) -> int:
    """Upload every file under ``images_dir`` to ``incoming/<relative path>``; returns how many."""
    files = image_files(images_dir)
    s3 = aws.client("s3")

    def upload(path: Path) -> None:
        s3.put_object(
            Bucket=bucket, Key=INCOMING_PREFIX + path.relative_to(images_dir).as_posix(), Body=path.read_bytes()
        )

    started = time.monotonic()
    for path in files:
        upload(path)
    console.print(
        f"uploaded {len(files):,} files to {INCOMING_PREFIX} in {time.monotonic() - started:.0f} s (ingest ran on each)"
    )
    return len(files)


def start_by_config_upload(aws: LocalAws, resources: LocalResources, config_bytes: bytes) -> tuple[str, str]:
    """Upload the configuration; the config Lambda starts the run. Returns (run id, execution ARN)."""
    s3 = aws.client("s3")
    s3.put_object(Bucket=resources.data_bucket, Key=CONFIG_KEY, Body=config_bytes)
    try:
        status = json.loads(s3.get_object(Bucket=resources.data_bucket, Key=CONFIG_STATUS_KEY)["Body"].read())
    except s3.exceptions.NoSuchKey as exc:
        raise LocalRunError(f"the config Lambda wrote no {CONFIG_STATUS_KEY}: it failed on the upload") from exc
    if not status["valid"]:
        raise LocalRunError(f"the labelling configuration was rejected: {status['error']}")
    with PROCESS_ENVIRONMENT.applied(resources.shared_environment, owner="the local run"):
        holder = active_run()
        registered = registered_image_count()
    if holder is None or holder.execution_arn is None:
        needed = status.get("min_images_to_start")
        raise LocalRunError(
            f"no run started: {registered} valid images are registered and the configuration asks for at least "
            f"{needed} (min_images_to_start); see the {QUARANTINE_PREFIX} reasons for rejected files"
        )
    return holder.run_id, holder.execution_arn


def start_resumed_execution(resources: LocalResources, snapshot: Snapshot, sfn: Any) -> str:
    """Start ``<run-id>-i<NNNN>`` with ``resume_from`` and hold the active-run lock for it."""
    name = execution_name(snapshot.run_id, snapshot.resume_from)
    execution_input = {
        "run_id": snapshot.run_id,
        "bucket": resources.data_bucket,
        "config_key": CONFIG_KEY,
        "resume_from": snapshot.resume_from,
    }
    with PROCESS_ENVIRONMENT.applied(resources.shared_environment, owner="the local run"):
        holder = active_run() or claim_active_run(snapshot.run_id)
        if holder.run_id != snapshot.run_id:
            raise LocalRunError(f"the saved state holds the active-run lock for {holder.run_id}, not {snapshot.run_id}")
        arn = sfn.start_execution(
            stateMachineArn=resources.state_machine_arn, name=name, input=json.dumps(execution_input)
        )["executionArn"]
        mark_run_started(snapshot.run_id, arn)
    return arn
