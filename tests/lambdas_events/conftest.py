"""Fixtures for the event-side Lambdas: moto AWS with the tables of docs/architecture.md.

S3 events are produced by moto itself (bucket notifications to SQS queues) and handed to
the handlers as Lambda would: ingest gets the SQS batch, config and answer get the S3 event.
"""

from __future__ import annotations

import io
import json
import os
import struct
import zlib
from dataclasses import dataclass

import boto3
import numpy as np
import pytest
from moto import mock_aws
from PIL import Image

# Powertools reads these when the handler modules are imported, before any fixture runs.
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "boxloop-test")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "boxloop")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")

from lambdas.adapters.clients import aws_client
from lambdas.human_review import answer
from tests.moto_account import REGION, FakeLambdaContext, create_tables, set_account_environment

BUCKET = "boxloop-data-test"
ADAPTER_CLIENTS = [aws_client, answer._persistence_layer]


@dataclass
class Aws:
    """Handles on the mocked account."""

    s3: object
    sqs: object
    dynamodb: object
    stepfunctions: object
    state_machine_arn: str
    incoming_queue_url: str
    events_queue_url: str

    def sqs_batch(self) -> dict:
        """Every message on the incoming queue, as the SQS event a Lambda would receive."""
        records = []
        while True:
            response = self.sqs.receive_message(
                QueueUrl=self.incoming_queue_url, MaxNumberOfMessages=10, AttributeNames=["All"]
            )
            messages = response.get("Messages", [])
            if not messages:
                return {"Records": records}
            for message in messages:
                self.sqs.delete_message(QueueUrl=self.incoming_queue_url, ReceiptHandle=message["ReceiptHandle"])
                records.append(
                    {
                        "messageId": message["MessageId"],
                        "receiptHandle": message["ReceiptHandle"],
                        "body": message["Body"],
                        "attributes": message["Attributes"],
                        "messageAttributes": {},
                        "md5OfBody": message["MD5OfBody"],
                        "eventSource": "aws:sqs",
                        "eventSourceARN": f"arn:aws:sqs:{REGION}:123456789012:incoming",
                        "awsRegion": REGION,
                    }
                )

    def s3_events(self) -> list[dict]:
        """Every S3 event notification for ``config/`` and ``a2i-output/`` (direct Lambda payloads)."""
        events = []
        while True:
            response = self.sqs.receive_message(QueueUrl=self.events_queue_url, MaxNumberOfMessages=10)
            messages = response.get("Messages", [])
            if not messages:
                return [event for event in events if "Records" in event]
            for message in messages:
                self.sqs.delete_message(QueueUrl=self.events_queue_url, ReceiptHandle=message["ReceiptHandle"])
                events.append(json.loads(message["Body"]))

    def executions(self) -> list[dict]:
        return self.stepfunctions.list_executions(stateMachineArn=self.state_machine_arn)["executions"]

    def read_json(self, key: str) -> dict:
        return json.loads(self.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())

    def keys(self, prefix: str = "") -> list[str]:
        listing = self.s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix)
        return sorted(item["Key"] for item in listing.get("Contents", []))

    def put_config(self, **overrides) -> None:
        """Upload ``config/labeling.json`` (what a user drops into the bucket)."""
        self.s3.put_object(Bucket=BUCKET, Key="config/labeling.json", Body=_config_body(overrides))

    def put_run_config(self, run_id: str, **overrides) -> None:
        """Write a run's configuration snapshot (what RegisterPool writes at ``runs/<run-id>/config.json``)."""
        self.s3.put_object(Bucket=BUCKET, Key=f"runs/{run_id}/config.json", Body=_config_body(overrides))

    def runs_item(self, pk: str, sk: str) -> dict | None:
        return self.dynamodb.get_item(TableName="runs", Key={"pk": {"S": pk}, "sk": {"S": sk}}).get("Item")


def _config_body(overrides: dict) -> bytes:
    return json.dumps({"classes": ["bottle", "can"], "min_images_to_start": 3, **overrides}).encode()


@pytest.fixture
def aws(monkeypatch) -> Aws:
    """A fresh mocked account: bucket with notifications, tables, a trivial state machine."""
    set_account_environment(
        monkeypatch,
        BUCKET,
        IDEMPOTENCY_TABLE="idempotency",
        FLOW_DEFINITION_ARN=f"arn:aws:sagemaker:{REGION}:123456789012:flow-definition/boxloop-review",
    )
    for client_factory in ADAPTER_CLIENTS:
        client_factory.cache_clear()
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        stepfunctions = boto3.client("stepfunctions", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        incoming_url = sqs.create_queue(QueueName="incoming")["QueueUrl"]
        events_url = sqs.create_queue(QueueName="events")["QueueUrl"]

        def queue_arn(url: str) -> str:
            return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

        def on_created(arn: str, prefix: str) -> dict:
            return {
                "QueueArn": arn,
                "Events": ["s3:ObjectCreated:*"],
                "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": prefix}]}},
            }

        s3.put_bucket_notification_configuration(
            Bucket=BUCKET,
            NotificationConfiguration={
                "QueueConfigurations": [
                    on_created(queue_arn(incoming_url), "incoming/"),
                    on_created(queue_arn(events_url), "config/labeling.json"),
                    on_created(queue_arn(events_url), "a2i-output/"),
                ]
            },
        )
        create_tables(dynamodb, idempotency=True)
        state_machine_arn = stepfunctions.create_state_machine(
            name="boxloop-loop",
            definition=json.dumps({"StartAt": "Wait", "States": {"Wait": {"Type": "Pass", "End": True}}}),
            roleArn="arn:aws:iam::123456789012:role/boxloop-loop",
        )["stateMachineArn"]
        monkeypatch.setenv("STATE_MACHINE_ARN", state_machine_arn)
        yield Aws(s3, sqs, dynamodb, stepfunctions, state_machine_arn, incoming_url, events_url)
    for client_factory in ADAPTER_CLIENTS:
        client_factory.cache_clear()


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext()


def image_bytes(image_format: str, size: tuple[int, int] = (64, 48), seed: int = 0, **save_options) -> bytes:
    """A small noisy image (different ``seed`` → different bytes)."""
    pixels = np.random.default_rng(seed).integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    image = Image.fromarray(pixels)
    buffer = io.BytesIO()
    image.save(buffer, image_format, **save_options)
    return buffer.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_claiming_size(width: int, height: int) -> bytes:
    """A tiny, complete PNG whose header claims ``width``×``height`` (a decompression bomb)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 1024))
        + _png_chunk(b"IEND", b"")
    )
