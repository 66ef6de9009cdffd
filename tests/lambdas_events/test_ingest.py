"""Ingest Lambda on moto: quarantine reasons, URL-encoded keys, content-addressed images, duplicates, run start."""

from __future__ import annotations

import hashlib
import json

import pytest
from PIL import Image

from boxloop.image_header import ImageLimits
from lambdas.adapters.runs import claim_active_run
from lambdas.config.run_start import start_run_if_ready
from lambdas.ingest.handler import handler
from lambdas.ingest.intake import take_in_upload
from tests.lambdas_events.conftest import BUCKET, image_bytes, png_claiming_size
from tests.lambdas_events.test_image_header import broken_middle


def _ingest(aws, lambda_context) -> dict:
    return handler(aws.sqs_batch(), lambda_context)


def _image_items(aws) -> list[dict]:
    return aws.dynamodb.scan(TableName="images")["Items"]


def _source_bytes(aws, item: dict) -> bytes:
    key = item["source_ref"]["S"].removeprefix(f"s3://{BUCKET}/")
    return aws.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()


def _registered_count(aws) -> int:
    item = aws.runs_item("COUNTER", "REGISTERED")
    return int(item["count"]["N"]) if item else 0


TOO_LARGE = b"\xff\xd8\xff" + b"\x00" * ImageLimits().max_bytes


@pytest.mark.parametrize(
    ("key", "body", "reason_code"),
    [
        ("incoming/empty.jpg", b"", "empty"),
        ("incoming/notes.jpg", b"this is a text file, not a photo\n" * 10, "not_an_image"),
        ("incoming/cut.jpg", image_bytes("JPEG")[:-300], "truncated"),
        ("incoming/cut.png", image_bytes("PNG")[:-20], "truncated"),
        ("incoming/broken.jpg", broken_middle(image_bytes("JPEG", size=(400, 300))), "undecodable"),
        ("incoming/huge.jpg", TOO_LARGE, "too_large"),
        ("incoming/bomb.png", png_claiming_size(10_000, 8_000), "decompression_bomb"),
        ("incoming/photo.webp", image_bytes("WEBP"), "unsupported_format"),
        ("incoming/photo.gif", image_bytes("GIF"), "unsupported_format"),
    ],
    ids=["empty", "text", "cut-jpeg", "cut-png", "broken-middle", "too-large", "bomb", "webp", "gif"],
)
def test_bad_uploads_are_quarantined_with_a_reason(aws, lambda_context, key, body, reason_code):
    aws.s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    response = _ingest(aws, lambda_context)
    assert response == {"batchItemFailures": []}
    assert aws.keys("incoming/") == []
    assert aws.s3.get_object(Bucket=BUCKET, Key=f"quarantine/{key}")["Body"].read() == body
    reason = aws.read_json(f"quarantine/{key}.reason.json")
    assert reason["key"] == key
    assert reason["reason_code"] == reason_code
    assert reason["size"] == len(body)
    assert reason["message"] and reason["detected_at"]
    assert _image_items(aws) == []
    assert aws.keys("images/") == []


@pytest.mark.parametrize(
    "key",
    ["incoming/my photo.jpg", "incoming/bouteille été/ça+1.jpg", "incoming/a+b (2).jpg", "incoming/日本/瓶.jpg"],
)
def test_url_encoded_keys_register_under_their_real_name(aws, lambda_context, key):
    body = image_bytes("JPEG")
    aws.s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    assert _ingest(aws, lambda_context) == {"batchItemFailures": []}
    (item,) = _image_items(aws)
    assert item["source_ref"]["S"] == f"s3://{BUCKET}/images/{hashlib.sha256(body).hexdigest()}.jpg"
    assert item["upload_ref"]["S"] == f"s3://{BUCKET}/{key}"
    assert _source_bytes(aws, item) == body
    assert item["image_id"]["S"] == hashlib.sha256(body).hexdigest()
    assert (item["width"]["N"], item["height"]["N"]) == ("64", "48")
    assert item["pending_partition"]["S"] == "pending" and item["pending_since"]["S"]


def test_s3_checksum_and_streamed_hash_agree(aws, lambda_context):
    body = image_bytes("PNG", seed=3)
    aws.s3.put_object(Bucket=BUCKET, Key="incoming/with-checksum.png", Body=body, ChecksumAlgorithm="SHA256")
    aws.s3.put_object(Bucket=BUCKET, Key="incoming/a/b.jpg", Body=image_bytes("JPEG", seed=4))
    _ingest(aws, lambda_context)
    ids = {item["upload_ref"]["S"]: item["image_id"]["S"] for item in _image_items(aws)}
    assert ids[f"s3://{BUCKET}/incoming/with-checksum.png"] == hashlib.sha256(body).hexdigest()


def test_large_metadata_header_is_read_in_growing_ranges(aws, lambda_context):
    body = image_bytes("JPEG", icc_profile=b"\x00" * 150_000)
    aws.s3.put_object(Bucket=BUCKET, Key="incoming/icc.jpg", Body=body)
    _ingest(aws, lambda_context)
    (item,) = _image_items(aws)
    assert item["image_id"]["S"] == hashlib.sha256(body).hexdigest()


def test_duplicate_events_and_uploads_register_and_count_once(aws, lambda_context):
    body = image_bytes("JPEG", seed=7)
    aws.s3.put_object(Bucket=BUCKET, Key="incoming/first.jpg", Body=body)
    batch = aws.sqs_batch()
    handler(batch, lambda_context)
    handler(batch, lambda_context)  # the same event delivered again
    aws.s3.put_object(Bucket=BUCKET, Key="incoming/copy/second.jpg", Body=body)
    _ingest(aws, lambda_context)
    assert take_in_upload(BUCKET, "incoming/copy/second.jpg").result == "duplicate_event"
    (item,) = _image_items(aws)
    assert item["upload_ref"]["S"] == f"s3://{BUCKET}/incoming/first.jpg"
    assert item["duplicate_keys"]["SS"] == [f"s3://{BUCKET}/incoming/copy/second.jpg"]
    assert _registered_count(aws) == 1
    assert aws.keys("images/") == [f"images/{hashlib.sha256(body).hexdigest()}.jpg"]


def test_reuploading_a_key_with_new_bytes_is_a_new_image_and_the_old_keeps_its_bytes(aws, lambda_context):
    first, second = image_bytes("JPEG", seed=1), image_bytes("JPEG", seed=2)
    aws.s3.put_object(Bucket=BUCKET, Key="incoming/shelf.jpg", Body=first)
    _ingest(aws, lambda_context)
    aws.s3.put_object(Bucket=BUCKET, Key="incoming/shelf.jpg", Body=second)
    _ingest(aws, lambda_context)
    items = {item["image_id"]["S"]: item for item in _image_items(aws)}
    assert set(items) == {hashlib.sha256(first).hexdigest(), hashlib.sha256(second).hexdigest()}
    assert _source_bytes(aws, items[hashlib.sha256(first).hexdigest()]) == first
    assert _source_bytes(aws, items[hashlib.sha256(second).hexdigest()]) == second
    assert _registered_count(aws) == 2


def test_a_folder_marker_is_ignored_and_reported(aws, lambda_context):
    aws.s3.put_object(Bucket=BUCKET, Key="incoming/shelves/", Body=b"")
    assert take_in_upload(BUCKET, "incoming/shelves/").result == "folder_marker"
    assert _ingest(aws, lambda_context) == {"batchItemFailures": []}
    assert aws.keys("quarantine/") == [] and _image_items(aws) == []
    assert aws.keys("incoming/") == ["incoming/shelves/"]


@pytest.mark.parametrize(("orientation", "registered"), [(1, (80, 60)), (6, (60, 80)), (8, (60, 80))])
def test_registered_size_is_the_exif_oriented_size(aws, lambda_context, orientation, registered):
    exif = Image.Exif()
    exif[0x0112] = orientation
    aws.s3.put_object(Bucket=BUCKET, Key="incoming/phone.jpg", Body=image_bytes("JPEG", size=(80, 60), exif=exif))
    _ingest(aws, lambda_context)
    (item,) = _image_items(aws)
    assert (int(item["width"]["N"]), int(item["height"]["N"])) == registered


def test_test_event_is_skipped_and_a_broken_message_fails_alone(aws, lambda_context):
    aws.s3.put_object(Bucket=BUCKET, Key="incoming/ok.jpg", Body=image_bytes("JPEG"))
    batch = aws.sqs_batch()
    bodies = [json.loads(record["body"]) for record in batch["Records"]]
    assert any(body.get("Event") == "s3:TestEvent" for body in bodies)  # moto sends one on configuration
    broken = dict(batch["Records"][-1], messageId="broken-1", body='{"Records": [{"unexpected": true}]}')
    response = handler({"Records": [*batch["Records"], broken]}, lambda_context)
    assert response == {"batchItemFailures": [{"itemIdentifier": "broken-1"}]}
    assert len(_image_items(aws)) == 1


def test_run_starts_exactly_once_when_the_threshold_is_crossed(aws, lambda_context):
    aws.put_config(min_images_to_start=3)
    for seed in range(2):
        aws.s3.put_object(Bucket=BUCKET, Key=f"incoming/{seed}.jpg", Body=image_bytes("JPEG", seed=seed))
    _ingest(aws, lambda_context)
    assert aws.executions() == []
    aws.s3.put_object(Bucket=BUCKET, Key="incoming/2.jpg", Body=image_bytes("JPEG", seed=2))
    batch = aws.sqs_batch()
    handler(batch, lambda_context)
    handler(batch, lambda_context)
    aws.s3.put_object(Bucket=BUCKET, Key="incoming/3.jpg", Body=image_bytes("JPEG", seed=3))
    _ingest(aws, lambda_context)
    (execution,) = aws.executions()
    lock = aws.runs_item("ACTIVE", "RUN")
    run_id = lock["run_id"]["S"]
    assert execution["name"] == f"{run_id}-i0000"
    assert lock["execution_arn"]["S"] == execution["executionArn"]
    started = aws.stepfunctions.describe_execution(executionArn=execution["executionArn"])
    assert json.loads(started["input"]) == {
        "run_id": run_id,
        "bucket": BUCKET,
        "config_key": "config/labeling.json",
        "resume_from": None,
    }
    assert _registered_count(aws) == 4  # the fourth image waits (pending) for the running loop's pool
    assert len([item for item in _image_items(aws) if "pending_since" in item]) == 4


def test_a_claimed_but_unstarted_run_is_started_under_its_own_name(aws):
    aws.put_config(min_images_to_start=1)
    claim_active_run("run-crashed-before-start")
    first = start_run_if_ready(BUCKET)
    second = start_run_if_ready(BUCKET)
    assert first.started and first.run_id == "run-crashed-before-start"
    assert not second.started
    assert [execution["name"] for execution in aws.executions()] == ["run-crashed-before-start-i0000"]


def test_no_run_starts_without_a_valid_config(aws, lambda_context):
    aws.put_config(min_images_to_start=1, quality={"delta": 0.9})
    aws.s3.put_object(Bucket=BUCKET, Key="incoming/x.jpg", Body=image_bytes("JPEG"))
    _ingest(aws, lambda_context)
    assert _registered_count(aws) == 1
    assert aws.executions() == []
    assert aws.runs_item("ACTIVE", "RUN") is None
