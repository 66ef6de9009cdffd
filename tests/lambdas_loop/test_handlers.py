"""Each loop Lambda on its own: contracts, retries, failures."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from botocore.exceptions import ClientError

from boxloop.config import ConfigError, parse_config
from boxloop.human_loop import UnlabellableAnswer
from boxloop.initial_sample import random_sample
from boxloop.layout import RunLayout
from boxloop.models import HumanTask, HumanTaskPurpose
from boxloop.qc import HumanQualityError
from boxloop.threshold_step import quality_target
from boxloop.validation_split import validation_ids
from lambdas.adapters import registry, runs, storage
from lambdas.loop import (
    check_human_label_quality,
    choose_shard_images_to_infer,
    compute_threshold,
    publish_manifest_version,
    record_failure,
    register_pool,
    route_shard,
    select_images_for_humans,
    select_initial_sample,
    split_train_validation,
)
from lambdas.loop.run_data import gold_qualities, labelled_among, unlabellable_images
from tests.lambdas_loop.conftest import BUCKET, RUN_ID, image_id
from tests.moto_account import FakeLambdaContext

RUN = {"run_id": RUN_ID, "bucket": BUCKET, "config_key": "config/labeling.json"}
CONTEXT = FakeLambdaContext()
_SHARD = {"run_id": RUN_ID, "bucket": BUCKET}


def _register(iteration: int = 0, execution: str = f"{RUN_ID}-i0000") -> dict:
    return register_pool.handler({**RUN, "execution_name": execution, "iteration": iteration}, CONTEXT)


def test_register_pool_returns_the_iteration_context_and_snapshots_the_config(aws):
    aws.put_config(human_batch_size=5)
    aws.register_images(12)
    context = _register()
    assert context["number"] == 0 and context["label"] == "0000" and len(context["job_token"]) == 6
    assert context["uris"]["inference_input"] == f"s3://{BUCKET}/runs/{RUN_ID}/iterations/0000/inference-input/"
    assert context["keys"]["pool"] == f"runs/{RUN_ID}/pool/"
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


def test_register_pool_leaves_waiting_images_alone_on_a_non_finite_budget(aws):
    aws.put_config(human_budget_hours=float("inf"))  # json.dumps writes Infinity
    aws.register_images(3)
    with pytest.raises(ConfigError, match="human_budget_hours: Input should be a finite number"):
        _register()
    assert aws.registered_counter() == 3 and len(list(registry.query_pending())) == 3
    assert aws.keys(f"runs/{RUN_ID}/") == []


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


def test_check_human_label_quality_fails_the_run_when_too_many_initial_labels_fail(aws):
    aws.put_config(initial_sample_size=10, human_budget_hours=1.0)
    aws.register_images(12)
    _register()
    select_initial_sample.handler({**RUN, "iteration": 0}, CONTEXT)
    for number, task in enumerate(aws.tasks(0)):
        aws.answer(0, task, 3.0, reject=number < 3)
    with pytest.raises(HumanQualityError, match="3 of 10 initial human labels"):
        check_human_label_quality.handler({**RUN, "iteration": 0}, CONTEXT)


def test_check_human_label_quality_fails_clearly_when_nobody_answered(aws):
    aws.put_config(initial_sample_size=10, human_budget_hours=1.0)
    aws.register_images(12)
    _register()
    select_initial_sample.handler({**RUN, "iteration": 0}, CONTEXT)
    with pytest.raises(HumanQualityError, match="none of the 10 initial-sample images was answered"):
        check_human_label_quality.handler({**RUN, "iteration": 0}, CONTEXT)


def test_the_initial_sample_goes_out_in_waves_that_fit_the_budget_left_with_people_slower_than_expected(aws):
    aws.put_config(initial_sample_size=10, quality={"min_validation_images": 200})  # a 252 s budget
    aws.register_images(20)
    _register()
    charged, iteration = 0.0, 0
    while True:
        wave = select_initial_sample.handler({**RUN, "iteration": iteration}, CONTEXT)
        selection = aws.read_json(aws.layout.selection(iteration))
        assert selection["estimated_seconds"] <= selection["wave_budget_seconds"] or wave["task_count"] == 1
        for task in aws.tasks(iteration):
            aws.answer(iteration, task, 45.0)  # the time model expects 30 s
            charged += 45.0
        progress = publish_manifest_version.handler({**RUN, "iteration": iteration, "execution_name": "x"}, CONTEXT)
        if progress["budget_spent"] or progress["people_done"] or not progress["people_only"]:
            break
        iteration += 1
        _register(iteration=iteration)
    assert iteration >= 1  # the first wave, before anyone was measured, held only a share of the budget
    first = aws.read_json(aws.layout.selection(0))
    assert first["wave_budget_seconds"] == pytest.approx(0.25 * 252) and first["seconds_per_task"] == 30.0
    assert aws.read_json(aws.layout.selection(1))["seconds_per_task"] == 45.0  # then the measured seconds
    assert charged <= 252.0
    assert runs.get_run_state(RUN_ID).human_seconds_used == pytest.approx(charged)


def _label_the_initial_sample(aws, seconds: float, rejected: frozenset[str] = frozenset()) -> int:
    """Run initial waves (each answered at ``seconds`` per image) until the sample is sent; the next iteration."""
    iteration = 0
    while True:
        select_initial_sample.handler({**RUN, "iteration": iteration}, CONTEXT)
        for task in aws.tasks(iteration):
            aws.answer(iteration, task, seconds, reject=task.image_id in rejected)
        progress = publish_manifest_version.handler({**RUN, "iteration": iteration, "execution_name": "x"}, CONTEXT)
        iteration += 1
        _register(iteration=iteration)
        if not progress["people_only"]:
            return iteration


def test_a_trained_iteration_without_budget_asks_nobody_and_hands_the_rest_to_people_waves(aws):
    aws.put_config(initial_sample_size=10, human_budget_hours=0.09, quality={"min_validation_images": 200})
    aws.register_images(20)
    _register()
    trained = _label_the_initial_sample(aws, 30.0)  # 300 s of the 324 s budget, in small waves until measured
    assert trained >= 2 and runs.get_run_state(RUN_ID).human_seconds_used == pytest.approx(300.0)
    split_train_validation.handler({**RUN, "iteration": trained}, CONTEXT)
    aws.write_predictions(trained)
    decision = compute_threshold.handler({**RUN, "iteration": trained, "model_version": "job-1"}, CONTEXT)
    assert decision["threshold"] is None and decision["statement"].startswith("nothing is auto-labelled")
    for key in aws.keys(f"runs/{RUN_ID}/iterations/{trained:04d}/inference/"):
        shard = {"run_id": RUN_ID, "bucket": BUCKET, "iteration": trained, "shard_key": key}
        assert route_shard.handler({"shard": shard}, CONTEXT)["auto"] == 0
    batch = select_images_for_humans.handler({**RUN, "iteration": trained}, CONTEXT)
    assert batch["task_count"] == 0 and batch["stop_reason"] == "budget"
    progress = publish_manifest_version.handler({**RUN, "iteration": trained, "execution_name": "x"}, CONTEXT)
    assert progress["no_progress"] and progress["people_only"] and not progress["pool_labelled"]
    _register(iteration=trained + 1)
    wave = select_initial_sample.handler({**RUN, "iteration": trained + 1}, CONTEXT)
    assert wave["purpose"] == "remaining" and wave["task_count"] == 0  # 24 s left: no 30 s image fits
    progress = publish_manifest_version.handler({**RUN, "iteration": trained + 1, "execution_name": "x"}, CONTEXT)
    assert progress["people_done"]


def test_validation_is_an_exact_keyed_random_count_of_the_initial_labels_topped_up_past_rejections(aws):
    aws.put_config(
        initial_sample_size=20, human_budget_hours=1.0, validation_share=0.3, quality={"min_validation_images": 6}
    )
    sample = [record.image_id for record in random_sample([aws.register_images(30)], 20, 0)]
    rejected = set(sorted(validation_ids(sample, 6, 0))[:2])  # two that would validate
    _register()
    trained = _label_the_initial_sample(aws, 10.0, rejected)
    split = split_train_validation.handler({**RUN, "iteration": trained}, CONTEXT)
    assert split == {"train_images": 12, "validation_images": 6}
    accepted = [image_id for image_id in sample if image_id not in rejected]
    prefix = aws.layout.training_channel(trained, "validation")
    lines = [json.loads(line) for key in aws.keys(prefix) for line in aws.read_lines(key)]
    chosen = {line["bounding-box-metadata"]["image-id"] for line in lines}
    assert chosen == validation_ids(accepted, 6, 0)
    assert len(chosen - validation_ids(sample, 6, 0)) == 2  # the rejected images were replaced


def test_pool_inference_reads_only_the_unlabelled_and_the_validation_images(aws):
    aws.put_config(initial_sample_size=10, human_budget_hours=1.0, validation_share=0.4)
    pool = [record.image_id for record in aws.register_images(25)]
    _register()
    trained = _label_the_initial_sample(aws, 10.0)
    split = split_train_validation.handler({**RUN, "iteration": trained}, CONTEXT)
    validation_prefix = aws.layout.training_channel(trained, "validation")
    validation = {json.loads(line)["bounding-box-metadata"]["image-id"] for key in aws.keys(validation_prefix)
                  for line in aws.read_lines(key)}  # fmt: skip
    labelled = {task.image_id for iteration in range(trained) for task in aws.tasks(iteration)}
    counts = [
        choose_shard_images_to_infer.handler({"shard": {**_SHARD, "iteration": trained, "shard_key": key}}, CONTEXT)
        for key in aws.keys(aws.layout.pool_prefix)
    ]
    chosen = [
        json.loads(line)["image_id"]
        for key in aws.keys(aws.layout.inference_input(trained))
        for line in aws.read_lines(key)
    ]
    assert len(labelled) == 10 and len(validation) == split["validation_images"] == 5
    assert sorted(chosen) == sorted((set(pool) - labelled) | validation)  # each once, the train images left out
    assert sum(c["pool_images"] for c in counts) == 25 and sum(c["images_to_infer"] for c in counts) == 20
    keys = [key.rsplit("/", 1)[-1] for key in aws.keys(aws.layout.inference_input(trained))]
    assert keys == [key.rsplit("/", 1)[-1] for key in aws.keys(aws.layout.pool_prefix)]  # the pool shards' names


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
    aws.put_config(initial_sample_size=10, human_budget_hours=1.0)
    aws.register_images(20)
    _register()
    select_initial_sample.handler({**RUN, "iteration": 0}, CONTEXT)
    tasks = aws.tasks(0)
    for task in tasks[:9]:
        aws.answer(0, task, 3.0)
    publish_manifest_version.handler({**RUN, "iteration": 0, "execution_name": "x"}, CONTEXT)
    aws.answer(0, tasks[9], 3.0)  # after the human step timed out and v0001 was published

    progress = publish_manifest_version.handler({**RUN, "iteration": 1, "execution_name": "x"}, CONTEXT)

    lines = [
        json.loads(line) for key in aws.keys(f"runs/{RUN_ID}/manifests/v0002/shard-") for line in aws.read_lines(key)
    ]
    ids = [line["bounding-box-metadata"]["image-id"] for line in lines]
    assert sorted(ids) == sorted(task.image_id for task in tasks)
    late = next(line for line in lines if line["bounding-box-metadata"]["image-id"] == tasks[9].image_id)
    assert late["bounding-box-metadata"]["iteration"] == 0 and late["bounding-box-metadata"]["label-source"] == "human"
    assert aws.read_json(f"runs/{RUN_ID}/iterations/0001/metrics.json")["human_labelled"] == 1
    assert progress["manifest_version"] == 2 and not progress["no_progress"]


def test_with_human_parity_the_target_is_the_gold_quality_minus_the_margin(aws):
    config = parse_config({"classes": ["bottle", "can"], "quality": {"human_parity": {"min_measured_images": 2}}})
    for number in range(3):
        task = HumanTask(
            image_id=image_id(number), source_ref="s3://b/x.jpg", width=10, height=10, purpose=HumanTaskPurpose.GOLD
        )
        aws.s3.put_object(Bucket=BUCKET, Key=aws.layout.tasks(1), Body=task.model_dump_json().encode())
        aws.answer(1, task, 2.0)  # every worker scores 0.9 against the known answer
    target, decision = quality_target(config.quality, lambda: gold_qualities(aws.layout, 1))
    assert decision.source == "human-parity" and decision.n_measured == 3
    assert target == pytest.approx(0.9 - 0.02)


def test_s3_throttling_is_a_transient_storage_error_the_state_machine_retries(aws, monkeypatch):
    class Throttled:
        def put_object(self, **kwargs):
            raise ClientError(
                {"Error": {"Code": "SlowDown", "Message": "Please reduce your request rate."}}, "PutObject"
            )

    monkeypatch.setattr(storage, "_s3", lambda: Throttled())
    with pytest.raises(storage.TransientStorageError, match="SlowDown|reduce your request rate"):
        storage.write_jsonl(BUCKET, "runs/x/a.jsonl", ["{}"])


def test_a_resumed_run_failing_before_its_first_context_is_recorded_under_the_iteration_it_was_starting(aws):
    state = {
        **RUN,
        "resume_from": 3,
        "progress": {"next_iteration": 3},
        "failure": {"Error": "ConfigError", "Cause": "bad"},
    }
    result = record_failure.handler({"state": state, "execution_name": f"{RUN_ID}-i0003"}, CONTEXT)
    assert result["failure_key"] == f"runs/{RUN_ID}/failures/{RUN_ID}-i0003-i0003.json"


def test_an_image_that_cannot_be_labelled_leaves_the_pool(aws):
    layout = RunLayout(bucket=BUCKET, run_id=RUN_ID)
    storage.write_document(BUCKET, layout.reviewed_answer(1, "unlabellable", image_id(3)), "{}")
    storage.write_document(BUCKET, layout.label(0, image_id(4)), "{}")
    pool = {image_id(3), image_id(4), image_id(5)}
    assert labelled_among(layout, 1, pool) == {image_id(3), image_id(4)}


def test_the_images_that_cannot_be_labelled_are_read_with_their_reasons_for_the_report(aws):
    layout = RunLayout(bucket=BUCKET, run_id=RUN_ID)
    answer = UnlabellableAnswer(
        image_id=image_id(3), source_ref=f"s3://{BUCKET}/incoming/3.jpg", human_loop_name="loop-3",
        reasons=["too dark to tell"], worker_ids=["ada"], time_spent_seconds=4.0, submitted_at=datetime.now(UTC),
    )  # fmt: skip
    storage.write_document(BUCKET, layout.reviewed_answer(2, "unlabellable", image_id(3)), answer.model_dump_json())
    assert unlabellable_images(layout, 1) == []
    [image] = unlabellable_images(layout, 2)
    assert (image.image_id, image.iteration, image.reasons) == (image_id(3), 2, ["too dark to tell"])
