"""The runs table: the active-run lock, the registered counter, human batches and budget (DynamoDB).

Keys follow docs/architecture.md: ``ACTIVE/RUN``, ``COUNTER/REGISTERED``,
``RUN#<run-id>/STATE``, ``RUN#<run-id>/BATCH#<NNNN>``; each counted answer also leaves a
``RUN#<run-id>/ANSWER#<human-loop-name>`` marker so it is counted exactly once.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel, Field

from lambdas.adapters.clients import aws_client
from lambdas.adapters.transactions import transact_once
from lambdas.environment import lambda_environment


def _dynamodb():
    return aws_client("dynamodb")


def _table() -> str:
    return lambda_environment().require("runs_table")


def _run_pk(run_id: str) -> dict:
    return {"S": f"RUN#{run_id}"}


def _batch_key(run_id: str, iteration: int) -> dict:
    return {"pk": _run_pk(run_id), "sk": {"S": f"BATCH#{iteration:04d}"}}


class ActiveRun(BaseModel):
    """The active-run lock: ``execution_arn`` is set once its first execution is started."""

    run_id: str
    execution_arn: str | None = None


class HumanBatch(BaseModel):
    """One iteration's human batch: how many answers are expected, and how many came back."""

    task_token: str
    expected: int = Field(ge=0)
    done: int = Field(default=0, ge=0)
    rejected: int = Field(default=0, ge=0)
    success_sent: bool = False

    @property
    def complete(self) -> bool:
        return self.done >= self.expected


def registered_image_count() -> int:
    """How many distinct images ingest has registered."""
    item = (
        _dynamodb()
        .get_item(TableName=_table(), Key={"pk": {"S": "COUNTER"}, "sk": {"S": "REGISTERED"}}, ConsistentRead=True)
        .get("Item")
    )
    return int(item["count"]["N"]) if item else 0


def _active_run_from_item(item: dict) -> ActiveRun:
    arn = item.get("execution_arn", {}).get("S")
    return ActiveRun(run_id=item["run_id"]["S"], execution_arn=arn)


def active_run() -> ActiveRun | None:
    """The holder of the active-run lock, if any."""
    item = (
        _dynamodb()
        .get_item(TableName=_table(), Key={"pk": {"S": "ACTIVE"}, "sk": {"S": "RUN"}}, ConsistentRead=True)
        .get("Item")
    )
    return _active_run_from_item(item) if item else None


def claim_active_run(run_id: str) -> ActiveRun:
    """Take the active-run lock for ``run_id``; if someone holds it already, return the holder."""
    client = _dynamodb()
    try:
        client.put_item(
            TableName=_table(),
            Item={
                "pk": {"S": "ACTIVE"},
                "sk": {"S": "RUN"},
                "run_id": {"S": run_id},
                "claimed_at": {"S": datetime.now(UTC).isoformat()},
            },
            ConditionExpression="attribute_not_exists(pk)",
        )
    except client.exceptions.ConditionalCheckFailedException:
        holder = active_run()
        if holder is None:
            raise RuntimeError("the active-run lock was released while being claimed; retry") from None
        return holder
    return ActiveRun(run_id=run_id)


def mark_run_started(run_id: str, execution_arn: str) -> None:
    """Record on the lock that ``run_id``'s first execution has been started."""
    _dynamodb().update_item(
        TableName=_table(),
        Key={"pk": {"S": "ACTIVE"}, "sk": {"S": "RUN"}},
        UpdateExpression="SET execution_arn = :arn",
        ConditionExpression="run_id = :run",
        ExpressionAttributeValues={":arn": {"S": execution_arn}, ":run": {"S": run_id}},
    )


def record_human_batch(run_id: str, iteration: int, task_token: str, expected: int) -> None:
    """Create (or refresh) the iteration's batch item without touching its counters."""
    _dynamodb().update_item(
        TableName=_table(),
        Key=_batch_key(run_id, iteration),
        UpdateExpression="SET task_token = :token, expected = :expected, recorded_at = :now",
        ExpressionAttributeValues={
            ":token": {"S": task_token},
            ":expected": {"N": str(expected)},
            ":now": {"S": datetime.now(UTC).isoformat()},
        },
    )


def human_batch(run_id: str, iteration: int) -> HumanBatch | None:
    """The iteration's batch item, read consistently."""
    item = _dynamodb().get_item(TableName=_table(), Key=_batch_key(run_id, iteration), ConsistentRead=True).get("Item")
    if item is None:
        return None
    return HumanBatch(
        task_token=item["task_token"]["S"],
        expected=int(item["expected"]["N"]),
        done=int(item.get("done", {"N": "0"})["N"]),
        rejected=int(item.get("rejected", {"N": "0"})["N"]),
        success_sent="success_sent_at" in item,
    )


def count_human_answer(run_id: str, iteration: int, human_loop_name: str, human_seconds: float, rejected: bool) -> bool:
    """Charge the answer's human seconds to the run and count it in the batch, exactly once.

    One transaction writes the answer's marker (condition: absent), ADDs ``human_seconds``
    to the run's ``human_seconds_used`` and ADDs 1 to the batch's ``done`` (and ``rejected``).
    Returns False when this answer was counted before.
    """
    batch_update = "ADD done :one, rejected :one" if rejected else "ADD done :one"
    return transact_once(
        _dynamodb(),
        [
            {
                "Put": {
                    "TableName": _table(),
                    "Item": {
                        "pk": _run_pk(run_id),
                        "sk": {"S": f"ANSWER#{human_loop_name}"},
                        "iteration": {"N": str(iteration)},
                        "human_seconds": {"N": repr(float(human_seconds))},
                        "rejected": {"BOOL": rejected},
                    },
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            {
                "Update": {
                    "TableName": _table(),
                    "Key": {"pk": _run_pk(run_id), "sk": {"S": "STATE"}},
                    "UpdateExpression": "ADD human_seconds_used :seconds",
                    "ExpressionAttributeValues": {":seconds": {"N": repr(float(human_seconds))}},
                }
            },
            {
                "Update": {
                    "TableName": _table(),
                    "Key": _batch_key(run_id, iteration),
                    "UpdateExpression": batch_update,
                    "ExpressionAttributeValues": {":one": {"N": "1"}},
                }
            },
        ],
    )


def mark_batch_success_sent(run_id: str, iteration: int) -> None:
    """Record that the batch's waiting execution was resumed."""
    _dynamodb().update_item(
        TableName=_table(),
        Key=_batch_key(run_id, iteration),
        UpdateExpression="SET success_sent_at = :now",
        ExpressionAttributeValues={":now": {"S": datetime.now(UTC).isoformat()}},
    )


def human_seconds_used(run_id: str) -> float:
    """The run's human seconds charged so far."""
    item = (
        _dynamodb()
        .get_item(TableName=_table(), Key={"pk": _run_pk(run_id), "sk": {"S": "STATE"}}, ConsistentRead=True)
        .get("Item")
    )
    return float(item["human_seconds_used"]["N"]) if item and "human_seconds_used" in item else 0.0


class RunState(BaseModel):
    """``RUN#<run-id>/STATE``: the run's human budget, what it has used, and its status."""

    run_id: str
    human_budget_seconds: float = Field(ge=0.0)
    human_seconds_used: float = Field(default=0.0, ge=0.0)
    status: str


def create_run_state(run_id: str, budget_seconds: float) -> None:
    """Create (or refresh) the run's state item: budget and status; ``human_seconds_used`` is never reset."""
    _dynamodb().update_item(
        TableName=_table(),
        Key={"pk": _run_pk(run_id), "sk": {"S": "STATE"}},
        UpdateExpression=(
            "SET human_budget_seconds = :budget, #status = :running, "
            "human_seconds_used = if_not_exists(human_seconds_used, :zero), started_at = if_not_exists(started_at, :now)"
        ),
        ExpressionAttributeNames={"#status": "status"},
        ExpressionAttributeValues={
            ":budget": {"N": repr(float(budget_seconds))},
            ":running": {"S": "running"},
            ":zero": {"N": "0"},
            ":now": {"S": datetime.now(UTC).isoformat()},
        },
    )


def get_run_state(run_id: str) -> RunState | None:
    """The run's state item, read consistently; None before RegisterPool created it."""
    item = (
        _dynamodb()
        .get_item(TableName=_table(), Key={"pk": _run_pk(run_id), "sk": {"S": "STATE"}}, ConsistentRead=True)
        .get("Item")
    )
    if item is None:
        return None
    return RunState(
        run_id=run_id,
        human_budget_seconds=float(item.get("human_budget_seconds", {"N": "0"})["N"]),
        human_seconds_used=float(item.get("human_seconds_used", {"N": "0"})["N"]),
        status=item.get("status", {"S": "unknown"})["S"],
    )


def set_run_status(run_id: str, status: str) -> None:
    """Record the run's status (``running``, ``succeeded``, ``failed``)."""
    _dynamodb().update_item(
        TableName=_table(),
        Key={"pk": _run_pk(run_id), "sk": {"S": "STATE"}},
        UpdateExpression="SET #status = :status, status_changed_at = :now",
        ExpressionAttributeNames={"#status": "status"},
        ExpressionAttributeValues={":status": {"S": status}, ":now": {"S": datetime.now(UTC).isoformat()}},
    )


def release_active_run(run_id: str) -> bool:
    """Delete the active-run lock if ``run_id`` holds it; False when it does not (already released)."""
    client = _dynamodb()
    try:
        client.delete_item(
            TableName=_table(),
            Key={"pk": {"S": "ACTIVE"}, "sk": {"S": "RUN"}},
            ConditionExpression="run_id = :run",
            ExpressionAttributeValues={":run": {"S": run_id}},
        )
    except client.exceptions.ConditionalCheckFailedException:
        return False
    return True


def answer_seconds(run_id: str) -> list[float]:
    """The human seconds of every answer the run has counted (its ``ANSWER#`` markers), read consistently."""
    pages = (
        _dynamodb()
        .get_paginator("query")
        .paginate(
            TableName=_table(),
            KeyConditionExpression="pk = :run AND begins_with(sk, :answer)",
            ExpressionAttributeValues={":run": _run_pk(run_id), ":answer": {"S": "ANSWER#"}},
            ProjectionExpression="human_seconds",
            ConsistentRead=True,
        )
    )
    return [float(item["human_seconds"]["N"]) for page in pages for item in page.get("Items", [])]
