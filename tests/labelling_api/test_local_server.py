"""The local labelling app over HTTP (urllib): page, config, the API's own handler, signed image URLs, the token.

The embedded AWS is a threaded moto server, as in a local run, so the presigned image URL the
handler makes is a real URL the server fetches.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
import requests
from moto.server import ThreadedMotoServer

from boxloop.local.api_gateway import handler_invoker
from boxloop.local.aws import free_loopback_port
from boxloop.local.labelling_server import LabellingServer, is_loopback
from lambdas.adapters.clients import aws_client, presigning_s3_client
from lambdas.adapters.runs import create_run_state
from lambdas.human_review.requests import HumanReviewRequest, start_review
from tests.labelling_api.conftest import BUCKET, CLASSES, RUN, TABLE, create_labelling_table, jpeg, make_task
from tests.moto_account import REGION, create_tables, set_account_environment

API_HANDLER = "lambdas.labelling_api.handler.handler"
PAGE = b"<!doctype html><title>boxloop</title><p>labelling page</p>"


@pytest.fixture
def moto_server(monkeypatch) -> Iterator[None]:
    """A threaded moto server with the bucket, the tables and one browser batch of run ``RUN``; the API's variables set."""
    port = free_loopback_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    requests.post(f"{endpoint}/moto-api/reset", timeout=10).raise_for_status()
    variables = {"LABELLING_TABLE": TABLE, "IMAGE_URL_SECONDS": "120"}
    set_account_environment(monkeypatch, BUCKET, **variables)
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    aws_client.cache_clear()
    presigning_s3_client.cache_clear()
    try:
        s3 = boto3.client("s3", region_name=REGION)
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        create_tables(dynamodb)
        create_labelling_table(dynamodb)
        s3.put_object(Bucket=BUCKET, Key=f"runs/{RUN}/config.json", Body=json.dumps({"classes": CLASSES}).encode())
        create_run_state(RUN, budget_seconds=3600.0)
        task = make_task(1)
        s3.put_object(Bucket=BUCKET, Key="incoming/img-1.jpg", Body=jpeg(80, 60, 1))
        tasks_key = f"runs/{RUN}/iterations/0000/human/tasks.jsonl"
        s3.put_object(Bucket=BUCKET, Key=tasks_key, Body=(task.model_dump_json() + "\n").encode())
        start_review(HumanReviewRequest(run_id=RUN, iteration=0, bucket=BUCKET, tasks_key=tasks_key, task_token="t"))
        yield
    finally:
        server.stop()
        aws_client.cache_clear()
        presigning_s3_client.cache_clear()


@pytest.fixture
def site(tmp_path: Path) -> Path:
    (tmp_path / "index.html").write_bytes(PAGE)
    (tmp_path / "app.js").write_text("console.log('boxloop')")
    return tmp_path


def _request(
    url: str, method: str = "GET", body: dict | None = None, headers: dict | None = None
) -> tuple[int, bytes, str]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read(), response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as error:
        return error.code, error.read(), error.headers.get("Content-Type", "")


def test_a_labeller_claims_sees_and_answers_a_task_over_http(moto_server, site):
    worker = {"X-Boxloop-Worker": "Ada"}
    with LabellingServer(handler_invoker(API_HANDLER), site, image_url_seconds=120) as app:
        base = f"http://127.0.0.1:{app.port}"
        assert app.url == f"{base}/"
        assert _request(f"{base}/")[:2] == (200, PAGE)
        assert _request(f"{base}/app.js")[2].endswith("javascript")
        assert _request(f"{base}/../pyproject.toml")[0] == 404
        assert json.loads(_request(f"{base}/config.json")[1]) == {"api_base": "/api", "auth": {"kind": "none"}}
        assert _request(f"{base}/api/batch")[0] == 401
        status, body, _ = _request(f"{base}/api/batch", headers=worker)
        assert status == 200 and json.loads(body)["counts"]["total"] == 1
        status, body, _ = _request(f"{base}/api/claims", "POST", {}, worker)
        task = json.loads(body)["task"]
        assert status == 200 and task["image_url"].startswith(f"/api/images/{task['task_id']}?exp=")
        status, body, _ = _request(f"{base}/api/tasks/{task['task_id']}", headers=worker)
        assert status == 200 and json.loads(body)["task_id"] == task["task_id"]
        status, image, content_type = _request(base + task["image_url"])
        assert (status, image, content_type) == (200, jpeg(80, 60, 1), "image/jpeg")
        assert _request(base + task["image_url"].replace("sig=", "sig=0"))[0] == 403
        assert _request(f"{base}/api/claims/{task['task_id']}", "DELETE", None, worker)[0] == 204
        assert _request(f"{base}/api/tasks/{task['task_id']}", headers=worker)[0] == 403  # released by the skip
        status, body, _ = _request(f"{base}/api/claims", "POST", {}, worker)
        assert status == 200 and json.loads(body)["task"]["task_id"] == task["task_id"]  # the only task comes back
        opened = datetime.now(UTC) - timedelta(seconds=1)
        answer = {
            "outcome": "no_objects",
            "boxes": [],
            "reason": None,
            "active_seconds": 0.5,
            "opened_at": opened.isoformat(),
            "submitted_at": datetime.now(UTC).isoformat(),
        }
        status, body, _ = _request(f"{base}/api/tasks/{task['task_id']}/answer", "POST", answer, worker)
        assert (status, json.loads(body)) == (200, {"status": "accepted"})
        keys = [
            item["Key"]
            for item in boto3.client("s3", region_name=REGION).list_objects_v2(Bucket=BUCKET, Prefix="answers/")[
                "Contents"
            ]
        ]
        assert keys == [f"answers/{RUN}/0000/{task['task_id']}/output.json"]
        assert app.errors == []


def test_off_this_machine_every_api_request_needs_the_printed_token(moto_server, site):
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost") and not is_loopback("0.0.0.0")
    with LabellingServer(handler_invoker(API_HANDLER), site, host="0.0.0.0") as app:
        base = f"http://127.0.0.1:{app.port}"
        assert app.token and app.url.endswith(f"#token={app.token}")
        assert json.loads(_request(f"{base}/config.json")[1])["auth"] == {"kind": "token"}
        worker = {"X-Boxloop-Worker": "Ada"}
        assert _request(f"{base}/api/batch", headers=worker)[0] == 401
        assert _request(f"{base}/api/batch", headers={**worker, "Authorization": "Bearer wrong"})[0] == 401
        assert _request(f"{base}/api/batch", headers={**worker, "Authorization": f"Bearer {app.token}"})[0] == 200


def test_the_app_needs_the_built_page(tmp_path):
    with pytest.raises(FileNotFoundError, match="npm run build:web"):
        LabellingServer(lambda event: {}, tmp_path)
