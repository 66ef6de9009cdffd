"""Fixtures for the labelling API: a mocked account with the task table, a run waiting on a browser batch, a clock.

``Labelling.call`` hands the API's handler the API Gateway HTTP API event the local server builds
(``boxloop.local.labelling_server.http_api_event``) and returns (status, JSON body).
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from moto import mock_aws
from PIL import Image

# Powertools reads these when the handler modules are imported, before any fixture runs.
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "boxloop-test")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "boxloop")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")

from boxloop.local.api_gateway import http_api_event
from boxloop.models import Box, HumanTask, ScoredBox
from lambdas.adapters.clients import aws_client, presigning_s3_client
from lambdas.adapters.runs import create_run_state
from lambdas.human_review.requests import HumanReviewRequest, start_review
from lambdas.labelling_api import handler as api
from tests.moto_account import REGION, FakeLambdaContext, create_tables, set_account_environment

BUCKET = "boxloop-data-test"
TABLE = "labelling"
RUN = "run-20260101T000000Z-aaaaaa"
OTHER_RUN = "run-20260102T000000Z-bbbbbb"
CLASSES = ["bottle", "can", "jar"]
LEASE_SECONDS = 600
START = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def create_labelling_table(dynamodb) -> None:
    """The task table of the prompts' table contract: ``pk``/``sk`` and the sparse ``claimable`` index."""
    dynamodb.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
            {"AttributeName": "claim_pk", "AttributeType": "S"},
            {"AttributeName": "available_at", "AttributeType": "N"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "claimable",
                "KeySchema": [
                    {"AttributeName": "claim_pk", "KeyType": "HASH"},
                    {"AttributeName": "available_at", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )


def jpeg(width: int, height: int, seed: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (seed * 40 % 256, 90, 160)).save(buffer, "JPEG")
    return buffer.getvalue()


def make_task(number: int, purpose: str = "uncertain", prefill: list[ScoredBox] | None = None) -> HumanTask:
    """Task ``number``: an 80x60 image ``incoming/img-<number>.jpg``; gold tasks know their answer."""
    return HumanTask(
        image_id=f"{number:064x}",
        source_ref=f"s3://{BUCKET}/incoming/img-{number}.jpg",
        width=80,
        height=60,
        purpose=purpose,
        prefill=prefill or [],
        gold_boxes=[Box(class_id=0, left=10, top=10, width=20, height=30)] if purpose == "gold" else None,
    )


@dataclass
class Clock:
    now: datetime = START

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Labelling:
    """Handles on the mocked account and the API."""

    s3: object
    dynamodb: object
    clock: Clock
    tokens: list[str] = field(default_factory=list)

    def call(
        self, method: str, path: str, worker: str | None = "alice", body=None, query: str = ""
    ) -> tuple[int, dict | None]:
        raw = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        event = http_api_event(method, path, query, {"content-type": "application/json"}, raw, worker)
        response = api.handler(event, FakeLambdaContext())
        text = response.get("body")
        return response["statusCode"], json.loads(text) if text else None

    def put_run(self, run_id: str, **config) -> None:
        document = {"classes": CLASSES, "workforce": {"task_timeout_seconds": LEASE_SECONDS}, **config}
        self.s3.put_object(Bucket=BUCKET, Key=f"runs/{run_id}/config.json", Body=json.dumps(document).encode())
        create_run_state(run_id, budget_seconds=7200.0)

    def send_batch(self, run_id: str, iteration: int, tasks: list[HumanTask]) -> None:
        """What the human-review consumer does with the queue message of this batch (workforce ``browser``)."""
        tasks_key = f"runs/{run_id}/iterations/{iteration:04d}/human/tasks.jsonl"
        body = "".join(task.model_dump_json() + "\n" for task in tasks)
        self.s3.put_object(Bucket=BUCKET, Key=tasks_key, Body=body.encode())
        for task in tasks:
            number = int(task.image_id, 16)
            self.s3.put_object(
                Bucket=BUCKET, Key=f"incoming/img-{number}.jpg", Body=jpeg(task.width, task.height, number)
            )
        token = f"token-{run_id}-{iteration}"
        self.tokens.append(token)
        start_review(
            HumanReviewRequest(run_id=run_id, iteration=iteration, bucket=BUCKET, tasks_key=tasks_key, task_token=token)
        )

    def answer_keys(self) -> list[str]:
        listing = self.s3.list_objects_v2(Bucket=BUCKET, Prefix="answers/")
        return sorted(item["Key"] for item in listing.get("Contents", []))


def answer_body(outcome: str = "boxes", boxes: list[dict] | None = None, active: float = 12.5, **overrides) -> dict:
    """A valid answer (opened 30 s after the clock's start, submitted 20 s later) unless overridden."""
    opened = START + timedelta(seconds=30)
    body = {
        "outcome": outcome,
        "boxes": boxes
        if boxes is not None
        else ([{"class_id": 1, "left": 5, "top": 6, "width": 30, "height": 40}] if outcome == "boxes" else []),
        "reason": None,
        "active_seconds": active,
        "opened_at": opened.isoformat(),
        "submitted_at": (opened + timedelta(seconds=20)).isoformat(),
    }
    return {**body, **overrides}


@pytest.fixture
def labelling(monkeypatch) -> Iterator[Labelling]:
    """A mocked account with the runs and task tables, run ``RUN`` started, and the API's clock at ``START``."""
    set_account_environment(monkeypatch, BUCKET, LABELLING_TABLE=TABLE, IMAGE_URL_SECONDS="300")
    aws_client.cache_clear()
    presigning_s3_client.cache_clear()
    clock = Clock()
    monkeypatch.setattr(api, "clock", clock)
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        create_tables(dynamodb)
        create_labelling_table(dynamodb)
        labelling = Labelling(s3, dynamodb, clock)
        labelling.put_run(RUN)
        yield labelling
    aws_client.cache_clear()
    presigning_s3_client.cache_clear()
