"""A local run's saved state: the data bucket and the tables, so ``--resume`` works although moto is in-memory.

Layout under ``<run folder>/.state/``:

- ``objects/<etag>``: each distinct object body, stored once (objects are copied only when new);
- ``tables-v<NNNN>/<table>.jsonl``: every item of each table, in DynamoDB's typed JSON;
- ``snapshot.json``: ``Snapshot`` (the run, the published version, key → etag of every object,
  the tables folder). It is replaced atomically and written last, so a run killed while saving
  keeps the previous complete snapshot.

``save_snapshot`` is meant to run while no Lambda runs (``lambda_runtime.INVOCATIONS.paused``);
``restore_snapshot`` before any event reaches a function (``create_resources(before_event_wiring=…)``).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from boxloop.local.aws import LocalAws
from boxloop.manifest import write_bytes_atomic

STATE_DIR = ".state"
SNAPSHOT_FILE = "snapshot.json"
_BATCH_WRITE_LIMIT = 25


class SnapshotError(ValueError):
    """A saved state is missing or does not fit the run it is restored into; the message says which part."""


class Snapshot(BaseModel):
    """What ``snapshot.json`` records."""

    run_id: str
    version: int = Field(ge=1)
    iteration: int = Field(ge=0)
    taken_at: datetime
    bucket: str
    objects: dict[str, str]
    tables_dir: str
    tables: list[str]

    @property
    def resume_from(self) -> int:
        """The iteration a resumed execution starts from: the one after the published version's."""
        return self.iteration + 1


def state_dir(run_dir: Path) -> Path:
    """Where a run's saved state lives."""
    return run_dir / STATE_DIR


def read_snapshot(run_dir: Path) -> Snapshot:
    """The run's last complete snapshot; SnapshotError when there is none."""
    path = state_dir(run_dir) / SNAPSHOT_FILE
    if not path.is_file():
        raise SnapshotError(
            f"{path} does not exist: the run published no manifest version before it stopped, so there is "
            "nothing to resume (start it again without --resume)"
        )
    return Snapshot.model_validate_json(path.read_bytes())


def saved_object(run_dir: Path, snapshot: Snapshot, key: str) -> bytes | None:
    """The body the snapshot saved for ``key`` of its bucket, or None when the bucket had no such object."""
    etag = snapshot.objects.get(key)
    return None if etag is None else (state_dir(run_dir) / "objects" / etag).read_bytes()


def _etag(item: dict[str, Any]) -> str:
    return item["ETag"].strip('"')


def _scan(dynamodb: Any, table: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for page in dynamodb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
        items.extend(page["Items"])
    return items


def save_snapshot(
    aws: LocalAws, run_dir: Path, run_id: str, version: int, iteration: int, bucket: str, tables: Sequence[str]
) -> Snapshot:
    """Copy the bucket's new objects and every table's items; then commit ``snapshot.json``."""
    root = state_dir(run_dir)
    objects_dir = root / "objects"
    objects_dir.mkdir(parents=True, exist_ok=True)
    s3, dynamodb = aws.client("s3"), aws.client("dynamodb")
    objects: dict[str, str] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            etag = _etag(item)
            stored = objects_dir / etag
            if not stored.exists():
                write_bytes_atomic(stored, s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read())
            objects[item["Key"]] = etag
    tables_dir = f"tables-v{version:04d}"
    (root / tables_dir).mkdir(exist_ok=True)
    for table in tables:
        lines = "".join(json.dumps(item, sort_keys=True) + "\n" for item in _scan(dynamodb, table))
        write_bytes_atomic(root / tables_dir / f"{table}.jsonl", lines.encode())
    previous = read_snapshot(run_dir) if (root / SNAPSHOT_FILE).is_file() else None
    snapshot = Snapshot(
        run_id=run_id,
        version=version,
        iteration=iteration,
        taken_at=datetime.now(UTC),
        bucket=bucket,
        objects=objects,
        tables_dir=tables_dir,
        tables=list(tables),
    )
    write_bytes_atomic(root / SNAPSHOT_FILE, snapshot.model_dump_json(indent=1).encode())
    if previous is not None and previous.tables_dir != tables_dir:
        shutil.rmtree(root / previous.tables_dir, ignore_errors=True)
    return snapshot


def restore_snapshot(aws: LocalAws, run_dir: Path, snapshot: Snapshot, bucket: str, tables: Sequence[str]) -> None:
    """Put the saved objects and items back into an empty bucket and tables of the same names."""
    if bucket != snapshot.bucket or sorted(tables) != sorted(snapshot.tables):
        raise SnapshotError(
            f"the saved state is of bucket {snapshot.bucket!r} and tables {sorted(snapshot.tables)}, but this "
            f"run has bucket {bucket!r} and tables {sorted(tables)} (was the stack changed since?)"
        )
    root = state_dir(run_dir)
    s3, dynamodb = aws.client("s3"), aws.client("dynamodb")
    for key, etag in snapshot.objects.items():
        s3.put_object(Bucket=bucket, Key=key, Body=(root / "objects" / etag).read_bytes())
    for table in tables:
        path = root / snapshot.tables_dir / f"{table}.jsonl"
        items = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        for start in range(0, len(items), _BATCH_WRITE_LIMIT):
            requests = [{"PutRequest": {"Item": item}} for item in items[start : start + _BATCH_WRITE_LIMIT]]
            pending = {table: requests}
            while pending:
                pending = dynamodb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
