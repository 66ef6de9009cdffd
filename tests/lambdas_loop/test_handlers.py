"""Each loop Lambda on its own: contracts, retries, failures."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from botocore.exceptions import ClientError

from boxloop.config import ConfigError, parse_config
from boxloop.models import HumanTask, HumanTaskPurpose, ImageRecord
from boxloop.qc import HumanQualityError
from lambdas.adapters import registry, runs, s3_store
from lambdas.loop import (
    check_human_label_quality,
    compute_threshold,
    publish_manifest_version,
    record_failure,
    register_pool,
    route_shard,
    select_images_for_humans,
    select_initial_sample,
    split_train_validation,
)
from lambdas.loop.compute_threshold import quality_target
from lambdas.loop.select_initial_sample import random_sample
from tests.lambdas_loop.conftest import BUCKET, RUN_ID, image_id
from tests.moto_account import FakeLambdaContext

RUN = {"run_id": RUN_ID, "bucket": BUCKET, "config_key": "config/labeling.json"}
CONTEXT = FakeLambdaContext()


def _register(iteration: int = 0, execution: str = f"{RUN_ID}-i0000") -> dict:
    return register_pool.handler({**RUN, "execution_name": execution, "iteration": iteration}, CONTEXT)


def test_register_pool_returns_the_iteration_context_and_snapshots_the_config(aws):
    aws.put_config(human_batch_size=5)
    aws.register_images(12)
    context = _register()
    assert context["number"] == 0 and context["label"] == "0000" and len(context["job_token"]) == 6
    assert context["uris"]["pool"] == f"s3://{BUCKET}/runs/{RUN_ID}/pool/"
    assert context["keys"]["inference"] == f"runs/{RUN_ID}/iterations/0000/inference/"
    assert "warm_start" not in context["uris"]
    assert json.loads(context["hyperparameters"]["classes"]) == ["bottle", "can"]
    assert context["hyperparameters"]["model_version"] == f"{RUN_ID}-i0000-{context['job_token']}-train"
    assert context["human_timeout_seconds"] == 7200  # from LABELING_DEFAULTS, under the uploaded config
    snapshot = aws.read_json(f"runs/{RUN_ID}/config.json")
    assert snapshot["human_batch_size"] == 5 and snapshot["workforce"]["batch_timeout_seconds"] == 7200
    assert runs.get_run_state(RUN_ID).human_budget_seconds == pytest.approx(0.07 * 3600)


def test_register_pool_takes_pending_images_once_and_counts_them_down(aws, monkeypatch):
    aws.put_config()
    aws.register_images(25)
    monkeypatch.setattr(register_pool, "POOL_SHARD_LINES", 10)
    _register()
    assert aws.keys(f"runs/{RUN_ID}/pool/") == [f"runs/{RUN_ID}/pool/i0000-0000{n}.jsonl" for n in range(3)]
    assert aws.registered_counter() == 0 and list(registry.query_pending()) == []

    aws.register_images(4)
    assert aws.registered_counter() == 4
    _register(iteration=1)
    _register(iteration=1)  # a retried call changes nothing
    ids = [json.loads(line)["image_id"] for key in aws.keys(f"runs/{RUN_ID}/pool/") for line in aws.read_lines(key)]
    assert len(ids) == len(set(ids)) == 29
    assert aws.registered_counter() == 0
    assert aws.read_json(f"runs/{RUN_ID}/pool-index.json")["shards"][f"runs/{RUN_ID}/pool/i0001-00000.jsonl"] == 4


def test_register_pool_finishes_a_call_that_died_after_writing_its_shard(aws, monkeypatch):
    aws.put_config()
    aws.register_images(6)
    with monkeypatch.context() as patched, pytest.raises(RuntimeError):
        patched.setattr(register_pool, "clear_pending", lambda ids: (_ for _ in ()).throw(RuntimeError("died")))
        _register()
    _register()
    assert len(aws.read_lines(f"runs/{RUN_ID}/pool/i0000-00000.jsonl")) == 6
    assert aws.keys(f"runs/{RUN_ID}/pool/") == [f"runs/{RUN_ID}/pool/i0000-00000.jsonl"]
    assert aws.registered_counter() == 0


def test_register_pool_fails_clearly_without_a_configuration(aws):
    aws.register_images(3)
    with pytest.raises(ConfigError, match="config/labeling.json does not exist"):
        _register()


def test_a_later_iteration_warm_starts_from_the_previous_model(aws):
    aws.put_config()
    aws.register_images(12)
    _register()
    layout = aws.layout
    artifact = layout.model_artifact(1, "job-1")
    aws.s3.put_object(Bucket=BUCKET, Key=layout.model_record(1), Body=json.dumps({"model_artifact_key": artifact}))
    aws.s3.put_object(Bucket=BUCKET, Key=artifact, Body=b"model")
    context = _register(iteration=2, execution=f"{RUN_ID}-i0002")
    assert context["uris"]["warm_start"] == f"s3://{BUCKET}/{artifact}"


def test_initial_sample_is_the_same_over_any_sharding_and_changes_with_the_seed():
    records = [
        ImageRecord(image_id=image_id(n), source_ref=f"s3://b/{n}.jpg", width=10, height=10, registered_at=datetime.now(UTC))
        for n in range(50)
    ]
    shards = [records[:20], records[20:35], records[35:]]
    whole = random_sample([records], 7, seed=3)
    assert random_sample(shards, 7, seed=3) == whole and len(whole) == 7
    assert random_sample(shards, 7, seed=4) != whole
    assert sorted(r.image_id for r in random_sample(shards, 100, seed=3)) == sorted(r.image_id for r in records)


def test_check_human_label_quality_fails_the_run_when_too_many_initial_labels_fail(aws):
    aws.put_config(initial_sample_size=10)
    aws.register_images(12)
    _register()
    select_initial_sample.handler({**RUN, "iteration": 0}, CONTEXT)
    for number, task in enumerate(aws.tasks(0)):
        aws.answer(0, task, 3.0, reject=number < 3)
    with pytest.raises(HumanQualityError, match="3 of 10 initial human labels"):
        check_human_label_quality.handler({**RUN, "iteration": 0}, CONTEXT)


def test_check_human_label_quality_fails_clearly_when_nobody_answered(aws):
    aws.put_config(initial_sample_size=10)
    aws.register_images(12)
    _register()
    select_initial_sample.handler({**RUN, "iteration": 0}, CONTEXT)
    with pytest.raises(HumanQualityError, match="none of the 10 initial-sample images was answered"):
        check_human_label_quality.handler({**RUN, "iteration": 0}, CONTEXT)


def test_without_budget_left_nobody_is_asked_and_nothing_is_auto_labelled_without_a_threshold(aws):
    aws.put_config(initial_sample_size=10, quality={"min_validation_images": 200})
    aws.register_images(20)
    _register()
    select_initial_sample.handler({**RUN, "iteration": 0}, CONTEXT)
    for task in aws.tasks(0):
        aws.answer(0, task, 30.0)  # 300 s: more than the 252 s budget
    publish_manifest_version.handler({**RUN, "iteration": 0, "execution_name": "x"}, CONTEXT)
    _register(iteration=1)
    split_train_validation.handler({**RUN, "iteration": 1}, CONTEXT)
    aws.write_predictions(1)
    decision = compute_threshold.handler({**RUN, "iteration": 1, "model_version": "job-1"}, CONTEXT)
    assert decision["threshold"] is None and decision["statement"].startswith("nothing is auto-labelled")
    for key in aws.keys(f"runs/{RUN_ID}/iterations/0001/inference/"):
        counts = route_shard.handler({"shard": {"run_id": RUN_ID, "bucket": BUCKET, "iteration": 1, "shard_key": key}}, CONTEXT)
        assert counts["auto"] == 0
    batch = select_images_for_humans.handler({**RUN, "iteration": 1}, CONTEXT)
    assert batch["task_count"] == 0 and batch["stop_reason"] == "budget"
    progress = publish_manifest_version.handler({**RUN, "iteration": 1, "execution_name": "x"}, CONTEXT)
    assert progress["budget_spent"] and progress["no_progress"] and not progress["pool_labelled"]


def test_record_failure_writes_the_error_and_releases_the_lock(aws):
    state = {
        **RUN,
        "resume_from": None,
        "iteration": {"number": 2, "label": "0002"},
        "failure": {"Error": "HumanQualityError", "Cause": "3 of 10 initial human labels failed QC"},
    }
    result = record_failure.handler({"state": state, "execution_name": f"{RUN_ID}-i0000"}, CONTEXT)
    assert result["failure_key"] == f"runs/{RUN_ID}/failures/{RUN_ID}-i0000-i0002.json"
    document = aws.read_json(result["failure_key"])
    assert document["error"] == "HumanQualityError" and "3 of 10" in document["cause"]
    assert document["resume_from"] is None and result["lock_released"]
    assert runs.active_run() is None and runs.get_run_state(RUN_ID).status == "failed"


def test_a_resumed_run_takes_the_lock_back_unless_another_run_holds_it(aws):
    aws.put_config()
    aws.register_images(12)
    _register()
    runs.release_active_run(RUN_ID)
    _register(iteration=1, execution=f"{RUN_ID}-i0001")
    assert runs.active_run().run_id == RUN_ID and runs.get_run_state(RUN_ID).status == "running"

    runs.release_active_run(RUN_ID)
    runs.claim_active_run("run-2")
    with pytest.raises(register_pool.ActiveRunConflict, match="run run-2 is active"):
        _register(iteration=2, execution=f"{RUN_ID}-i0002")


def test_a_late_answer_is_published_once_in_the_next_version(aws):
    aws.put_config(initial_sample_size=10)
    aws.register_images(20)
    _register()
    select_initial_sample.handler({**RUN, "iteration": 0}, CONTEXT)
    tasks = aws.tasks(0)
    for task in tasks[:9]:
        aws.answer(0, task, 3.0)
    publish_manifest_version.handler({**RUN, "iteration": 0, "execution_name": "x"}, CONTEXT)
    aws.answer(0, tasks[9], 3.0)  # after the human step timed out and v0001 was published

    progress = publish_manifest_version.handler({**RUN, "iteration": 1, "execution_name": "x"}, CONTEXT)

    lines = [json.loads(line) for key in aws.keys(f"runs/{RUN_ID}/manifests/v0002/shard-") for line in aws.read_lines(key)]
    ids = [line["bounding-box-metadata"]["image-id"] for line in lines]
    assert sorted(ids) == sorted(task.image_id for task in tasks)
    late = next(line for line in lines if line["bounding-box-metadata"]["image-id"] == tasks[9].image_id)
    assert late["bounding-box-metadata"]["iteration"] == 0 and late["bounding-box-metadata"]["label-source"] == "human"
    assert aws.read_json(f"runs/{RUN_ID}/iterations/0001/metrics.json")["human_labelled"] == 1
    assert progress["manifest_version"] == 2 and not progress["no_progress"]


def test_with_human_parity_the_target_is_the_gold_quality_minus_the_margin(aws):
    config = parse_config({"classes": ["bottle", "can"], "quality": {"human_parity": {"min_measured_images": 2}}})
    for number in range(3):
        task = HumanTask(image_id=image_id(number), source_ref="s3://b/x.jpg", width=10, height=10, purpose=HumanTaskPurpose.GOLD)
        aws.s3.put_object(Bucket=BUCKET, Key=aws.layout.tasks(1), Body=task.model_dump_json().encode())
        aws.answer(1, task, 2.0)  # every worker scores 0.9 against the known answer
    target, decision = quality_target(aws.layout, 1, config)
    assert decision.source == "human-parity" and decision.n_measured == 3
    assert target == pytest.approx(0.9 - 0.02)


def test_s3_throttling_is_a_transient_storage_error_the_state_machine_retries(aws, monkeypatch):
    class Throttled:
        def put_object(self, **kwargs):
            raise ClientError({"Error": {"Code": "SlowDown", "Message": "Please reduce your request rate."}}, "PutObject")

    monkeypatch.setattr(s3_store, "_s3", lambda: Throttled())
    with pytest.raises(s3_store.TransientStorageError, match="SlowDown|reduce your request rate"):
        s3_store.write_jsonl(BUCKET, "runs/x/a.jsonl", ["{}"])


def test_a_resumed_run_failing_before_its_first_context_is_recorded_under_the_iteration_it_was_starting(aws):
    state = {**RUN, "resume_from": 3, "progress": {"next_iteration": 3}, "failure": {"Error": "ConfigError", "Cause": "bad"}}
    result = record_failure.handler({"state": state, "execution_name": f"{RUN_ID}-i0003"}, CONTEXT)
    assert result["failure_key"] == f"runs/{RUN_ID}/failures/{RUN_ID}-i0003-i0003.json"
