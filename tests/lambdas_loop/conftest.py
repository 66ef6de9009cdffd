"""Fixtures for the loop Lambdas: moto S3 and DynamoDB (tables as in docs/architecture.md), a synthetic pool.

Images are registered through the ingest adapter, human answers are stored and charged as
the human-answer Lambda stores and charges them, and the detector's pool inference output
is written by hand as Prediction JSONL (one ``.out`` per pool shard, like batch transform).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime

import boto3
import pytest
from moto import mock_aws

# Powertools reads these when the handler modules are imported, before any fixture runs.
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "boxloop-test")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "boxloop")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")

from boxloop.human_loop import GoldAnswer, RejectedAnswer, human_loop_name
from boxloop.layout import RunLayout
from boxloop.models import HumanLabel, HumanTask, HumanTaskPurpose, ImageRecord
from boxloop.qc import WorkerGoldScore
from lambdas.adapters import registry, runs, storage
from lambdas.adapters.clients import aws_client
from tests.lambdas_loop.stand_in_detector import predict, truth_boxes
from tests.moto_account import REGION, create_tables, set_account_environment

BUCKET = "boxloop-loop-test"
RUN_ID = "run-1"
ADAPTER_CLIENTS = [aws_client]
CLASSES = ["bottle", "can"]


def image_id(number: int) -> str:
    return hashlib.sha256(f"image-{number}".encode()).hexdigest()


@dataclass
class LoopAws:
    """Handles on the mocked account and helpers that play the parts outside the loop Lambdas."""

    s3: object
    dynamodb: object
    layout: RunLayout = field(default_factory=lambda: RunLayout(bucket=BUCKET, run_id=RUN_ID))
    next_image: int = 0

    def put_config(self, **overrides) -> None:
        config = {
            "classes": CLASSES,
            "initial_sample_size": 30,
            "validation_share": 0.5,
            "human_batch_size": 8,
            "audit_size": 3,
            "human_budget_hours": 0.07,
            "max_iterations": 3,
            "quality": {"min_validation_images": 5},
            "qc": {"gold_share": 0.2},
            **overrides,
        }
        self.s3.put_object(Bucket=BUCKET, Key="config/labeling.json", Body=json.dumps(config).encode())

    def register_images(self, count: int) -> list[ImageRecord]:
        """Register ``count`` new images through the ingest adapter (pending, counted)."""
        records = []
        for _ in range(count):
            identifier = image_id(self.next_image)
            record = ImageRecord(
                image_id=identifier,
                source_ref=f"s3://{BUCKET}/incoming/{self.next_image:05d}.jpg",
                width=320,
                height=240,
                registered_at=datetime(2026, 1, 1, 0, 0, self.next_image % 60, self.next_image, tzinfo=UTC),
            )
            assert registry.register_image(record)
            records.append(record)
            self.next_image += 1
        return records

    def registered_counter(self) -> int:
        return runs.registered_image_count()

    def read_json(self, key: str) -> dict:
        return json.loads(self.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())

    def read_lines(self, key: str) -> list[str]:
        return self.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode().splitlines()

    def keys(self, prefix: str = "") -> list[str]:
        paginator = self.s3.get_paginator("list_objects_v2")
        return sorted(
            item["Key"]
            for page in paginator.paginate(Bucket=BUCKET, Prefix=prefix)
            for item in page.get("Contents", [])
        )

    def tasks(self, iteration: int) -> list[HumanTask]:
        return [HumanTask.model_validate_json(line) for line in self.read_lines(self.layout.tasks(iteration))]

    def answer(self, iteration: int, task: HumanTask, seconds: float, reject: bool = False) -> None:
        """Store and charge one human answer the way the human-answer Lambda does."""
        loop = human_loop_name(RUN_ID, iteration, task.image_id)
        now = datetime(2026, 1, 2, tzinfo=UTC)
        if task.purpose == HumanTaskPurpose.GOLD:
            key = f"{self.layout.gold(iteration)}{task.image_id}.json"
            score = WorkerGoldScore(worker_id="w1", gold_images=1, mean_miou=0.9)
            body = GoldAnswer(
                image_id=task.image_id,
                human_loop_name=loop,
                scores={"w1": score},
                workers_below_minimum=[],
                time_spent_seconds=seconds,
                submitted_at=now,
            ).model_dump_json()
        elif reject:
            key = f"{self.layout.rejected(iteration)}{task.image_id}.json"
            body = RejectedAnswer(
                image_id=task.image_id,
                source_ref=task.source_ref,
                human_loop_name=loop,
                reasons=["box too small"],
                worker_ids=["w1"],
                time_spent_seconds=seconds,
                submitted_at=now,
            ).model_dump_json()
        else:
            key = f"{self.layout.labels(iteration)}{task.image_id}.json"
            body = HumanLabel(
                image_id=task.image_id,
                source_ref=task.source_ref,
                width=task.width,
                height=task.height,
                boxes=truth_boxes(task.image_id),
                worker_ids=["w1"],
                time_spent_seconds=seconds,
                submitted_at=now,
                job_name=loop,
            ).model_dump_json()
        assert storage.write_document_once(BUCKET, key, body)
        runs.record_human_batch(RUN_ID, iteration, "token", expected=len(self.tasks(iteration)))
        assert runs.count_human_answer(RUN_ID, iteration, loop, seconds, rejected=reject)

    def write_predictions(self, iteration: int) -> None:
        """Batch transform's output: one ``.out`` per pool shard, from the stand-in detector."""
        for pool_key in self.keys(self.layout.pool_prefix):
            predictions = [
                predict(ImageRecord.model_validate_json(line), "job-1").model_dump_json()
                for line in self.read_lines(pool_key)
            ]
            name = pool_key.rsplit("/", 1)[-1]
            body = "".join(f"{line}\n" for line in predictions).encode()
            self.s3.put_object(Bucket=BUCKET, Key=f"{self.layout.inference(iteration)}{name}.out", Body=body)


@pytest.fixture
def aws(monkeypatch) -> LoopAws:
    """A fresh mocked account with the data bucket, the images and runs tables, and a notification topic."""
    set_account_environment(
        monkeypatch, BUCKET, LABELING_DEFAULTS=json.dumps({"workforce": {"batch_timeout_seconds": 7200}})
    )
    monkeypatch.delenv("NOTIFICATION_TOPIC_ARN", raising=False)
    for client_factory in ADAPTER_CLIENTS:
        client_factory.cache_clear()
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        s3 = boto3.client("s3", region_name=REGION)
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        create_tables(dynamodb)
        runs.claim_active_run(RUN_ID)
        yield LoopAws(s3=s3, dynamodb=dynamodb)
    for client_factory in ADAPTER_CLIENTS:
        client_factory.cache_clear()
