"""The labelling task table: the browser workforce's batches, tasks, leases and answers (DynamoDB).

Just over 400 lines: every conditional write of the task table's item design is here, so the lease rules are
checked against one schema.

Items (``pk``/``sk``):

- ``CURRENT``/``BATCH``: the batch waiting for people (``OpenBatch``). Written last when a batch is
  recorded, so labellers never see a half-written batch; it moves only forward within a run.
- ``BATCH#<run-id>#<NNNN>``/``TASK#<task-id>``: one task: the ``HumanTask`` (without a gold task's
  known answer), its status, its lease (``lease_worker``, ``lease_granted_at``, ``lease_expires_at``)
  and, once answered, the answer document and the active and open→submit seconds.

A task that can be claimed carries ``claim_pk`` (its batch's key) and ``available_at`` (its position
in the batch while open; its lease's expiry while leased), so the sparse ``claimable`` index holds
exactly the tasks a labeller can claim now or once a lease lapses. A claim is one Query on that index
plus one conditional UpdateItem; answering removes ``claim_pk``; releasing a lease (a skip) makes the task
claimable again behind the open ones. Every item expires (``expires_at``)
30 days after its batch could have been open. No transactions: each change is one conditional write.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta

from pydantic import BaseModel, Field

from boxloop.config import LabelingConfig, QcConfig
from boxloop.human_loop import human_loop_name
from boxloop.models import HumanTask
from boxloop.task_leases import Lease, TaskStatus, epoch_seconds, from_epoch_seconds, grant_lease, visible_status
from lambdas.adapters.clients import aws_client
from lambdas.environment import lambda_environment

CLAIMABLE_INDEX = "claimable"
CURRENT_KEY = {"pk": {"S": "CURRENT"}, "sk": {"S": "BATCH"}}
TASK_PREFIX = "TASK#"
RETENTION = timedelta(days=30)
WRITE_BATCH = 25
"""DynamoDB's BatchWriteItem limit."""
CLAIM_CANDIDATES = 10
CLAIM_ATTEMPTS = 5
MAX_PAGE = 100


class CursorError(ValueError):
    """A list cursor this table did not hand out."""


class ClaimContentionError(RuntimeError):
    """Every candidate task was claimed by someone else first, attempt after attempt; try again."""


class OpenBatch(BaseModel):
    """The batch waiting for people: what the page shows and what answers are checked against."""

    run_id: str
    iteration: int = Field(ge=0)
    tasks_key: str
    total: int = Field(ge=0)
    classes: list[str]
    instructions: str
    lease_seconds: int = Field(gt=0)
    qc: QcConfig
    recorded_at: datetime

    @property
    def pk(self) -> str:
        return batch_pk(self.run_id, self.iteration)


class StoredTask(BaseModel):
    """One task as stored: the image's task, its lease, and whether (and by whom) it was answered."""

    task_id: str
    run_id: str
    iteration: int
    task: HumanTask
    lease: Lease | None
    answered_by: str | None
    answer_document: str | None

    @property
    def answered(self) -> bool:
        return self.answered_by is not None


class TaskSummary(BaseModel):
    task_id: str
    status: TaskStatus


class TaskPage(BaseModel):
    items: list[TaskSummary]
    next_cursor: str | None


def _dynamodb():
    return aws_client("dynamodb")


def _table() -> str:
    return lambda_environment().require("labelling_table")


def batch_pk(run_id: str, iteration: int) -> str:
    """``BATCH#<run-id>#<NNNN>``: the partition of one batch's tasks."""
    return f"BATCH#{run_id}#{iteration:04d}"


def _task_key(pk: str, task_id: str) -> dict:
    return {"pk": {"S": pk}, "sk": {"S": f"{TASK_PREFIX}{task_id}"}}


def _number(value: float) -> dict:
    return {"N": repr(float(value))}


def _task_item(pk: str, run_id: str, iteration: int, position: int, task: HumanTask, expires: float) -> dict:
    task_id = human_loop_name(run_id, iteration, task.image_id)
    shown = task.model_copy(update={"gold_boxes": None})  # a gold task's known answer stays in tasks.jsonl
    return {
        **_task_key(pk, task_id),
        "task_id": {"S": task_id},
        "run_id": {"S": run_id},
        "iteration": {"N": str(iteration)},
        "task": {"S": shown.model_dump_json()},
        "status": {"S": TaskStatus.OPEN.value},
        "claim_pk": {"S": pk},
        "available_at": {"N": str(position)},
        "expires_at": _number(expires),
    }


def _lease_of(item: dict) -> Lease | None:
    if "lease_worker" not in item:
        return None
    return Lease(
        worker_id=item["lease_worker"]["S"],
        granted_at=from_epoch_seconds(float(item["lease_granted_at"]["N"])),
        expires_at=from_epoch_seconds(float(item["lease_expires_at"]["N"])),
    )


def _stored_task(item: dict) -> StoredTask:
    return StoredTask(
        task_id=item["task_id"]["S"],
        run_id=item["run_id"]["S"],
        iteration=int(item["iteration"]["N"]),
        task=HumanTask.model_validate_json(item["task"]["S"]),
        lease=_lease_of(item),
        answered_by=item.get("answered_by", {}).get("S"),
        answer_document=item.get("answer_document", {}).get("S"),
    )


def _open_batch(item: dict) -> OpenBatch:
    return OpenBatch.model_validate_json(item["batch"]["S"])


def current_batch() -> OpenBatch | None:
    """The batch waiting for people, if any (read consistently)."""
    item = _dynamodb().get_item(TableName=_table(), Key=CURRENT_KEY, ConsistentRead=True).get("Item")
    return _open_batch(item) if item else None


def _write_items(items: Sequence[dict]) -> None:
    client, table = _dynamodb(), _table()
    for start in range(0, len(items), WRITE_BATCH):
        requests = {table: [{"PutRequest": {"Item": item}} for item in items[start : start + WRITE_BATCH]]}
        while requests:
            requests = client.batch_write_item(RequestItems=requests).get("UnprocessedItems") or {}


def record_batch(
    run_id: str, iteration: int, tasks_key: str, tasks: Sequence[HumanTask], config: LabelingConfig, now: datetime
) -> bool:
    """Record a batch's tasks, then make it the batch waiting for people; False when it was recorded before.

    Safe to repeat: until the ``CURRENT`` item names the batch nobody can claim its tasks, so
    writing them again is harmless; once it does (or names a later batch of the run), nothing is written.
    """
    current = current_batch()
    if current is not None and current.run_id == run_id and current.iteration >= iteration:
        return False
    pk = batch_pk(run_id, iteration)
    expires = epoch_seconds(now + timedelta(seconds=config.workforce.batch_timeout_seconds) + RETENTION)
    _write_items([_task_item(pk, run_id, iteration, position, task, expires) for position, task in enumerate(tasks)])
    batch = OpenBatch(
        run_id=run_id,
        iteration=iteration,
        tasks_key=tasks_key,
        total=len(tasks),
        classes=config.classes,
        instructions=config.workforce.instructions,
        lease_seconds=config.workforce.task_timeout_seconds,
        qc=config.qc,
        recorded_at=now,
    )
    client = _dynamodb()
    try:
        client.put_item(
            TableName=_table(),
            Item={
                **CURRENT_KEY,
                "batch": {"S": batch.model_dump_json()},
                "run_id": {"S": run_id},
                "iteration": {"N": str(iteration)},
            },
            ConditionExpression="attribute_not_exists(pk) OR run_id <> :run OR iteration < :iteration",
            ExpressionAttributeValues={":run": {"S": run_id}, ":iteration": {"N": str(iteration)}},
        )
    except client.exceptions.ConditionalCheckFailedException:
        return False
    return True


def get_task(batch: OpenBatch, task_id: str) -> StoredTask | None:
    """One task of ``batch`` (read consistently), or None when the batch has no such task."""
    item = _dynamodb().get_item(TableName=_table(), Key=_task_key(batch.pk, task_id), ConsistentRead=True).get("Item")
    return _stored_task(item) if item else None


def encode_cursor(sort_key: str) -> str:
    return base64.urlsafe_b64encode(sort_key.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    """The sort key a cursor names; CursorError when it is not one this table handed out."""
    try:
        sort_key = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise CursorError(f"cursor {cursor!r} is not a cursor this API handed out") from None
    if not sort_key.startswith(TASK_PREFIX):
        raise CursorError(f"cursor {cursor!r} is not a cursor this API handed out")
    return sort_key


def list_tasks(batch: OpenBatch, limit: int, cursor: str | None, now: datetime) -> TaskPage:
    """One page of the batch's tasks in task-id order (one Query of at most ``limit`` items)."""
    if not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"limit must be between 1 and {MAX_PAGE}, got {limit}")
    request = {
        "TableName": _table(),
        "KeyConditionExpression": "pk = :pk AND begins_with(sk, :task)",
        "ExpressionAttributeValues": {":pk": {"S": batch.pk}, ":task": {"S": TASK_PREFIX}},
        "ProjectionExpression": "pk, sk, task_id, answered_by, lease_worker, lease_granted_at, lease_expires_at",
        "Limit": limit,
    }
    if cursor is not None:
        request["ExclusiveStartKey"] = {"pk": {"S": batch.pk}, "sk": {"S": decode_cursor(cursor)}}
    response = _dynamodb().query(**request)
    items = [
        TaskSummary(task_id=item["task_id"]["S"], status=visible_status("answered_by" in item, _lease_of(item), now))
        for item in response.get("Items", [])
    ]
    last = response.get("LastEvaluatedKey")
    return TaskPage(items=items, next_cursor=encode_cursor(last["sk"]["S"]) if last else None)


def _claimable_pages(
    batch: OpenBatch, condition: str, now: datetime, values: dict | None = None, **options
) -> Iterator[dict]:
    """Query pages of the ``claimable`` index: the batch's tasks whose ``available_at`` is ``condition`` now."""
    request = {
        "TableName": _table(),
        "IndexName": CLAIMABLE_INDEX,
        "KeyConditionExpression": f"claim_pk = :pk AND available_at {condition} :now",
        "ExpressionAttributeValues": {":pk": {"S": batch.pk}, ":now": _number(epoch_seconds(now)), **(values or {})},
        **options,
    }
    while True:
        response = _dynamodb().query(**request)
        yield response
        if "LastEvaluatedKey" not in response:
            return
        request["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def live_lease_count(batch: OpenBatch, now: datetime) -> int:
    """How many of the batch's tasks are under a live lease (reads only those: about one per active labeller)."""
    return sum(response["Count"] for response in _claimable_pages(batch, ">", now, Select="COUNT"))


def held_task(batch: OpenBatch, worker_id: str, now: datetime) -> StoredTask | None:
    """The task ``worker_id`` holds a live lease on, if any."""
    pages = _claimable_pages(
        batch, ">", now, values={":worker": {"S": worker_id}}, FilterExpression="lease_worker = :worker"
    )
    for response in pages:
        for item in response.get("Items", []):
            return get_task(batch, item["task_id"]["S"])
    return None


def _try_lease(batch: OpenBatch, task_id: str, lease: Lease, now: datetime) -> StoredTask | None:
    client = _dynamodb()
    try:
        item = client.update_item(
            TableName=_table(),
            Key=_task_key(batch.pk, task_id),
            UpdateExpression=(
                "SET #status = :leased, lease_worker = :worker, lease_granted_at = :granted, "
                "lease_expires_at = :expires, available_at = :expires"
            ),
            ConditionExpression="claim_pk = :pk AND available_at <= :now",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={
                ":leased": {"S": TaskStatus.LEASED.value},
                ":worker": {"S": lease.worker_id},
                ":granted": _number(epoch_seconds(lease.granted_at)),
                ":expires": _number(epoch_seconds(lease.expires_at)),
                ":pk": {"S": batch.pk},
                ":now": _number(epoch_seconds(now)),
            },
            ReturnValues="ALL_NEW",
        )["Attributes"]
    except client.exceptions.ConditionalCheckFailedException:
        return None
    return _stored_task(item)


def claim_task(batch: OpenBatch, worker_id: str, now: datetime) -> StoredTask | None:
    """Lease the next claimable task of ``batch`` to ``worker_id``; the task they already hold, if any.

    None when no task is claimable. Each candidate is taken with a conditional write, so two
    labellers never hold the same task; ClaimContentionError when others took every candidate.
    """
    held = held_task(batch, worker_id, now)
    if held is not None:
        return held
    lease = grant_lease(worker_id, now, batch.lease_seconds)
    for _ in range(CLAIM_ATTEMPTS):
        candidates = next(_claimable_pages(batch, "<=", now, Limit=CLAIM_CANDIDATES)).get("Items", [])
        if not candidates:
            return None
        for item in candidates:
            claimed = _try_lease(batch, item["task_id"]["S"], lease, now)
            if claimed is not None:
                return claimed
    raise ClaimContentionError(f"other labellers claimed every candidate task {CLAIM_ATTEMPTS} times in a row")


def release_task(batch: OpenBatch, task_id: str, worker_id: str, now: datetime) -> bool:
    """Give back ``worker_id``'s lease on an unanswered task (they skipped it); False when they hold none on it.

    The task is claimable again at once, behind every task still open in the batch (``available_at`` becomes
    the release time, later than any open task's position), so the labeller's next claim prefers another task.
    """
    client = _dynamodb()
    try:
        client.update_item(
            TableName=_table(),
            Key=_task_key(batch.pk, task_id),
            UpdateExpression=(
                "SET #status = :open, available_at = :now REMOVE lease_worker, lease_granted_at, lease_expires_at"
            ),
            ConditionExpression="attribute_exists(claim_pk) AND lease_worker = :worker",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={
                ":open": {"S": TaskStatus.OPEN.value},
                ":worker": {"S": worker_id},
                ":now": _number(epoch_seconds(now)),
            },
        )
    except client.exceptions.ConditionalCheckFailedException:
        return False
    return True


def mark_answered(
    batch: OpenBatch,
    task: StoredTask,
    worker_id: str,
    answer_document: str,
    active_seconds: float,
    open_to_submit_seconds: float,
    now: datetime,
) -> bool:
    """Store the answer on the task if ``worker_id`` still holds its latest lease; False when not (someone else
    claimed it since, or it was answered). The task leaves the ``claimable`` index."""
    if task.lease is None:
        return False
    client = _dynamodb()
    try:
        client.update_item(
            TableName=_table(),
            Key=_task_key(batch.pk, task.task_id),
            UpdateExpression=(
                "SET #status = :submitted, answered_by = :worker, answered_at = :now, answer_document = :document, "
                "active_seconds = :active, open_to_submit_seconds = :open REMOVE claim_pk"
            ),
            ConditionExpression=(
                "attribute_not_exists(answered_by) AND lease_worker = :worker AND lease_granted_at = :granted"
            ),
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={
                ":submitted": {"S": TaskStatus.SUBMITTED.value},
                ":worker": {"S": worker_id},
                ":now": _number(epoch_seconds(now)),
                ":document": {"S": answer_document},
                ":active": _number(active_seconds),
                ":open": _number(open_to_submit_seconds),
                ":granted": _number(epoch_seconds(task.lease.granted_at)),
            },
        )
    except client.exceptions.ConditionalCheckFailedException:
        return False
    return True
