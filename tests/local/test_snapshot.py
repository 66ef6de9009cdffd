"""Saved state for ``--resume``: objects and items round-trip; a pause waits for running invocations."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from boxloop.local.aws import LocalAws
from boxloop.local.lambda_runtime import InvocationGate, InvocationsBusyError
from boxloop.local.snapshot import SnapshotError, read_snapshot, restore_snapshot, save_snapshot

BUCKET, TABLE = "data", "runs"


def _create(aws: LocalAws) -> None:
    aws.client("s3").create_bucket(Bucket=BUCKET)
    aws.client("dynamodb").create_table(
        TableName=TABLE,
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        BillingMode="PAY_PER_REQUEST",
    )


def test_a_snapshot_restores_objects_and_items_into_a_fresh_aws(tmp_path: Path) -> None:
    with LocalAws() as aws:
        _create(aws)
        s3, dynamodb = aws.client("s3"), aws.client("dynamodb")
        for number in range(30):
            s3.put_object(Bucket=BUCKET, Key=f"runs/r/{number}.json", Body=f"{number % 3}".encode())
            dynamodb.put_item(
                TableName=TABLE, Item={"pk": {"S": "RUN#r"}, "sk": {"S": f"B{number}"}, "n": {"N": str(number)}}
            )
        first = save_snapshot(aws, tmp_path, "r", 1, 0, BUCKET, [TABLE])
        s3.put_object(Bucket=BUCKET, Key="runs/r/late.json", Body=b"late")
        second = save_snapshot(aws, tmp_path, "r", 2, 1, BUCKET, [TABLE])

    assert len(list((tmp_path / ".state" / "objects").iterdir())) == 4  # bodies are stored once
    assert not (tmp_path / ".state" / first.tables_dir).exists()
    assert read_snapshot(tmp_path) == second and second.resume_from == 2

    with LocalAws() as aws:
        _create(aws)
        restore_snapshot(aws, tmp_path, second, BUCKET, [TABLE])
        keys = [item["Key"] for item in aws.client("s3").list_objects_v2(Bucket=BUCKET)["Contents"]]
        items = aws.client("dynamodb").scan(TableName=TABLE)["Items"]
        body = aws.client("s3").get_object(Bucket=BUCKET, Key="runs/r/4.json")["Body"].read()

    assert len(keys) == 31 and body == b"1"
    assert sorted(int(item["n"]["N"]) for item in items) == list(range(30))


def test_restoring_into_other_names_or_without_a_snapshot_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SnapshotError, match="nothing to resume"):
        read_snapshot(tmp_path)
    with LocalAws() as aws:
        _create(aws)
        snapshot = save_snapshot(aws, tmp_path, "r", 1, 0, BUCKET, [TABLE])
        with pytest.raises(SnapshotError, match="was the stack changed"):
            restore_snapshot(aws, tmp_path, snapshot, "other-bucket", [TABLE])


def test_a_pause_waits_for_running_invocations_and_holds_new_ones() -> None:
    gate = InvocationGate()
    order: list[str] = []
    release = threading.Event()

    def running() -> None:
        with gate.invocation():
            release.wait()
            order.append("first finished")

    def late() -> None:
        with gate.invocation():
            order.append("late ran")

    first = threading.Thread(target=running)
    first.start()
    with pytest.raises(InvocationsBusyError), gate.paused(wait_seconds=0.1):
        pass
    threading.Timer(0.2, release.set).start()
    with gate.paused(wait_seconds=5):
        order.append("paused")
        second = threading.Thread(target=late)
        second.start()
        time.sleep(0.2)
        order.append("resuming")
    second.join(timeout=5)
    first.join(timeout=5)

    assert order == ["first finished", "paused", "resuming", "late ran"]
