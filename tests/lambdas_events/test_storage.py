"""The S3 adapter on moto: documents, shards, listings and heads work; transient failures of reads, writes,
lists and heads become the retried ``TransientStorageError``; other failures stay as they are."""

from __future__ import annotations

import pytest
from boto3.exceptions import S3UploadFailedError
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError
from botocore.stub import Stubber

from lambdas.adapters import storage
from lambdas.adapters.clients import aws_client
from tests.lambdas_events.conftest import BUCKET


def test_documents_shards_listings_and_heads_round_trip(aws, tmp_path):
    assert storage.read_document(BUCKET, "runs/r/a.json") is None
    storage.write_document(BUCKET, "runs/r/a.json", '{"a": 1}')
    assert storage.read_document(BUCKET, "runs/r/a.json") == b'{"a": 1}'
    assert storage.write_document_once(BUCKET, "runs/r/once.json", "{}")
    assert not storage.write_document_once(BUCKET, "runs/r/once.json", '{"again": true}')
    assert storage.write_jsonl(BUCKET, "runs/r/s.jsonl", ['{"n": 1}', '{"n": 2}'], scratch=True) == 2
    assert list(storage.iter_document_lines(BUCKET, "runs/r/s.jsonl")) == ['{"n": 1}', '{"n": 2}']
    tags = aws.s3.get_object_tagging(Bucket=BUCKET, Key="runs/r/s.jsonl")["TagSet"]
    assert tags == [{"Key": "boxloop-retention", "Value": "scratch"}]
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.txt").write_text("b")
    (tmp_path / "a.txt").write_text("a")
    assert storage.upload_directory(BUCKET, "runs/r/up/", tmp_path) == ["runs/r/up/a.txt", "runs/r/up/sub/b.txt"]
    assert list(storage.list_keys(BUCKET, "runs/r/")) == sorted(aws.keys("runs/r/"))
    assert storage.key_exists(BUCKET, "runs/r/a.json") and not storage.key_exists(BUCKET, "runs/r/none.json")


def test_heads_ranges_copy_and_delete(aws):
    body = bytes(range(256)) * 10
    aws.s3.put_object(Bucket=BUCKET, Key="incoming/x.bin", Body=body, ChecksumAlgorithm="SHA256")
    head = storage.head_object(BUCKET, "incoming/x.bin")
    assert head.size == len(body)
    assert storage.read_first_bytes(BUCKET, "incoming/x.bin", 4, head.etag) == body[:4]
    storage.copy_object(BUCKET, "incoming/x.bin", "quarantine/incoming/x.bin")
    storage.delete_object(BUCKET, "incoming/x.bin")
    assert storage.head_object(BUCKET, "incoming/x.bin") is None
    assert aws.keys() == ["quarantine/incoming/x.bin"]


CALLS = {
    "read": ("get_object", lambda: storage.read_document(BUCKET, "runs/r/a.json")),
    "stream": ("get_object", lambda: list(storage.iter_document_lines(BUCKET, "runs/r/a.jsonl"))),
    "write": ("put_object", lambda: storage.write_document(BUCKET, "runs/r/a.json", "{}")),
    "write once": ("put_object", lambda: storage.write_document_once(BUCKET, "runs/r/a.json", "{}")),
    "shard": ("put_object", lambda: storage.write_jsonl(BUCKET, "runs/r/a.jsonl", ["{}"])),
    "list": ("list_objects_v2", lambda: list(storage.list_keys(BUCKET, "runs/r/"))),
    "head": ("head_object", lambda: storage.key_exists(BUCKET, "runs/r/a.json")),
    "delete": ("delete_object", lambda: storage.delete_object(BUCKET, "runs/r/a.json")),
}


@pytest.mark.parametrize("code", ["SlowDown", "InternalError", "ServiceUnavailable", "503"])
@pytest.mark.parametrize("call", sorted(CALLS))
def test_transient_s3_errors_of_every_call_are_transient_storage_errors(aws, call, code):
    operation, run = CALLS[call]
    with Stubber(aws_client("s3")) as stub:
        stub.add_client_error(operation, service_error_code=code, service_message="Please reduce your request rate.")
        with pytest.raises(storage.TransientStorageError, match=f"s3://{BUCKET}/runs/r/.*{code}"):
            run()


@pytest.mark.parametrize("call", sorted(CALLS))
def test_other_s3_errors_are_raised_as_they_are(aws, call):
    operation, run = CALLS[call]
    with Stubber(aws_client("s3")) as stub:
        stub.add_client_error(operation, service_error_code="AccessDenied", http_status_code=403)
        with pytest.raises(ClientError, match="AccessDenied") as raised:
            run()
    assert not isinstance(raised.value, storage.TransientStorageError)


def test_dropped_connections_and_timed_out_reads_are_transient(aws, monkeypatch):
    def unreachable(**kwargs):
        raise EndpointConnectionError(endpoint_url="https://s3.example")

    def timed_out(**kwargs):
        raise ReadTimeoutError(endpoint_url="https://s3.example")

    monkeypatch.setattr(aws_client("s3"), "put_object", unreachable)
    with pytest.raises(storage.TransientStorageError, match="writing s3://"):
        storage.write_bytes(BUCKET, "runs/r/a.bin", b"x", "application/octet-stream")
    monkeypatch.setattr(aws_client("s3"), "get_object", timed_out)
    with pytest.raises(storage.TransientStorageError, match="reading s3://"):
        storage.read_document(BUCKET, "runs/r/a.json")


def test_a_failed_upload_is_transient_when_s3_throttled_it(aws, monkeypatch, tmp_path):
    def throttled_upload(*args, **kwargs):  # boto3's transfer raises S3UploadFailedError while handling the ClientError
        try:
            raise ClientError({"Error": {"Code": "SlowDown", "Message": "slow down"}}, "PutObject")
        except ClientError as exc:
            raise S3UploadFailedError(f"Failed to upload: {exc}")  # noqa: B904

    def throttled_put(**kwargs):
        raise ClientError({"Error": {"Code": "SlowDown", "Message": "slow down"}}, "PutObject")

    (tmp_path / "a.txt").write_text("a")
    monkeypatch.setattr(aws_client("s3"), "put_object", throttled_put)  # a small file: one PUT
    with pytest.raises(storage.TransientStorageError, match="uploading s3://.*a.txt"):
        storage.upload_directory(BUCKET, "runs/r/up/", tmp_path)
    monkeypatch.setattr(storage, "SINGLE_PUT_BYTES", 0)  # a large file: boto3's transfer in parts
    monkeypatch.setattr(aws_client("s3"), "upload_file", throttled_upload)
    with pytest.raises(storage.TransientStorageError, match="uploading s3://.*a.txt"):
        storage.upload_directory(BUCKET, "runs/r/up/", tmp_path)
