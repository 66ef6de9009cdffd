"""One run through the loop Lambdas on a small synthetic pool: RegisterPool → … → PublishManifestVersion → Finalize."""

from __future__ import annotations

import json
from pathlib import Path

from boxloop.models import HumanTaskPurpose, IterationMetrics, LabelSource
from lambdas.adapters import runs
from lambdas.loop import (
    check_human_label_quality,
    choose_shard_images_to_infer,
    compute_threshold,
    finalize,
    publish_manifest_version,
    register_pool,
    route_shard,
    select_images_for_humans,
    select_initial_sample,
    split_train_validation,
)
from tests.lambdas_loop.conftest import BUCKET, CLASSES, RUN_ID
from tests.moto_account import FakeLambdaContext
from tests.output_readers import from_coco, read_voc, read_yolo

RUN = {"run_id": RUN_ID, "bucket": BUCKET, "config_key": "config/labeling.json"}
CONTEXT = FakeLambdaContext()
BUDGET_HOURS = 0.34
"""1224 s: the 30 initial images (10 s each by the time model, 10-14 s in fact) and the uncertain ones bind it."""
UNCERTAIN_SECONDS = 20.0
"""People are slower than estimated: the initial images take 10-14 s (estimate 10 s), the uncertain ones 20 s."""


def _initial_seconds(number: int) -> float:
    return 10.0 + number % 5


def _manifest_sources(aws, version: int) -> dict[str, str]:
    """Image id → label source of every line of a version; fails if an image appears twice."""
    sources: dict[str, str] = {}
    for key in aws.keys(f"runs/{RUN_ID}/manifests/v{version:04d}/shard-"):
        for line in aws.read_lines(key):
            metadata = json.loads(line)["bounding-box-metadata"]
            assert metadata["image-id"] not in sources, "an image appears twice in the manifest"
            sources[metadata["image-id"]] = metadata["label-source"]
    return sources


INITIAL_WAVES = 2
"""A calibration wave of 10 images (nobody measured yet), then the other 20 of the 30 at the measured seconds."""
TRAINED = INITIAL_WAVES
"""The first iteration that trains."""


def _run_initial_waves(aws) -> dict:
    aws.register_images(80)
    counted = 0
    for iteration in range(INITIAL_WAVES):
        context = register_pool.handler({**RUN, "execution_name": f"{RUN_ID}-i0000", "iteration": iteration}, CONTEXT)
        batch = select_initial_sample.handler({**RUN, "iteration": iteration}, CONTEXT)
        tasks = aws.tasks(iteration)
        assert (batch["tasks_key"], batch["purpose"]) == (context["keys"]["tasks"], "initial")
        assert batch["estimated_seconds"] <= batch["remaining_budget_seconds"]
        assert {task.purpose for task in tasks} == {HumanTaskPurpose.INITIAL}
        for task in tasks:
            aws.answer(iteration, task, _initial_seconds(counted), reject=counted == 0)
            counted += 1
        check_human_label_quality.handler({**RUN, "iteration": iteration}, CONTEXT)
        progress = publish_manifest_version.handler(
            {**RUN, "iteration": iteration, "execution_name": f"{RUN_ID}-i0000"}, CONTEXT
        )
        assert progress["people_only"] == (iteration < INITIAL_WAVES - 1)
    assert counted == 30
    return progress


def _run_trained_iteration(aws) -> tuple[dict, dict, dict]:
    context = register_pool.handler({**RUN, "execution_name": f"{RUN_ID}-i0000", "iteration": TRAINED}, CONTEXT)
    event = {**RUN, "iteration": TRAINED}
    split = split_train_validation.handler(event, CONTEXT)
    assert split["train_images"] > 0 and split["validation_images"] >= 5
    run_fields = {k: RUN[k] for k in ("run_id", "bucket")}
    chosen = [
        choose_shard_images_to_infer.handler({"shard": {**run_fields, "iteration": TRAINED, "shard_key": key}}, CONTEXT)
        for key in aws.keys(context["keys"]["pool"])
    ]
    assert sum(c["images_to_infer"] for c in chosen) == sum(c["pool_images"] for c in chosen) - split["train_images"]
    aws.write_predictions(TRAINED)
    threshold = compute_threshold.handler({**event, "model_version": "run-1-i0002-abcdef-train"}, CONTEXT)
    for key in aws.keys(context["keys"]["inference"]):
        shard = {**{k: RUN[k] for k in ("run_id", "bucket")}, "iteration": TRAINED, "shard_key": key}
        counts = route_shard.handler({"shard": shard}, CONTEXT)
        assert counts["predictions"] == counts["auto"] + counts["uncertain"] + counts["excluded"] + counts["failed"]
    state_before = runs.get_run_state(RUN_ID)
    human_batch = select_images_for_humans.handler(event, CONTEXT)
    assert human_batch["estimated_seconds"] <= state_before.human_budget_seconds - state_before.human_seconds_used
    assert human_batch["estimated_seconds"] >= 14.0 * human_batch["task_count"]  # no task below the measured q90
    for task in aws.tasks(TRAINED):
        aws.answer(TRAINED, task, UNCERTAIN_SECONDS)
    progress = publish_manifest_version.handler({**event, "execution_name": f"{RUN_ID}-i0000"}, CONTEXT)
    return threshold, human_batch, progress


def test_an_iteration_labels_every_image_once_keeps_audits_human_and_stays_in_budget(aws):
    aws.put_config(human_budget_hours=BUDGET_HOURS, expected_objects_per_image=1)
    first = _run_initial_waves(aws)
    assert first["manifest_version"] == INITIAL_WAVES and first["next_iteration"] == TRAINED
    assert set(_manifest_sources(aws, INITIAL_WAVES).values()) == {"human"}
    assert aws.registered_counter() == 0

    aws.register_images(10)  # new arrivals join the pool before the next inference
    threshold, human_batch, progress = _run_trained_iteration(aws)

    assert threshold["threshold"] is not None and "with 95% confidence" in threshold["statement"]
    tasks = aws.tasks(TRAINED)
    audit_ids = {t.image_id for t in tasks if t.purpose == HumanTaskPurpose.AUDIT}
    gold = [t for t in tasks if t.purpose == HumanTaskPurpose.GOLD]
    assert audit_ids and gold and all(t.gold_boxes for t in gold)
    assert human_batch["task_count"] == len(tasks)

    sources = _manifest_sources(aws, 3)
    listed = [line for key in aws.keys(f"runs/{RUN_ID}/labelled/v0003/") for line in aws.read_lines(key)]
    assert sorted(listed) == sorted(sources)  # RouteShard's exclusion lists match the version
    pool_ids = {
        json.loads(line)["image_id"] for key in aws.keys(f"runs/{RUN_ID}/pool/") for line in aws.read_lines(key)
    }
    assert len(pool_ids) == 90 and set(sources) <= pool_ids
    assert all(sources[image] == LabelSource.AUDIT.value for image in audit_ids)
    assert LabelSource.AUTO.value in sources.values()
    assert not {t.image_id for t in gold} - {i for i, s in sources.items() if s == "human"}

    state = runs.get_run_state(RUN_ID)
    in_flight_overrun = max(UNCERTAIN_SECONDS * human_batch["task_count"] - human_batch["estimated_seconds"], 0.0)
    assert state.human_seconds_used <= state.human_budget_seconds + in_flight_overrun
    assert state.human_seconds_used > 0.5 * state.human_budget_seconds  # the budget binds
    metrics = IterationMetrics.model_validate(aws.read_json(f"runs/{RUN_ID}/iterations/0002/metrics.json"))
    assert metrics.threshold is not None and metrics.threshold.statement == threshold["statement"]
    assert metrics.auto_labelled + metrics.human_labelled + metrics.audit_labelled == len(sources) - 29
    assert metrics.unlabelled_remaining == 90 - len(sources)
    assert progress["next_iteration"] == TRAINED + 1 and not progress["no_progress"]

    keys_before = aws.keys(f"runs/{RUN_ID}/manifests/")
    again = publish_manifest_version.handler(
        {**RUN, "iteration": TRAINED, "execution_name": f"{RUN_ID}-i0000"}, CONTEXT
    )
    assert again == progress and aws.keys(f"runs/{RUN_ID}/manifests/") == keys_before
    assert aws.read_lines(f"runs/{RUN_ID}/manifests/LATEST") == ["v0003"]

    final = finalize.handler({**RUN, "execution_name": f"{RUN_ID}-i0000"}, CONTEXT)
    assert final["manifest_version"] == 3 and final["lock_released"]
    assert runs.active_run() is None
    report = aws.read_json(f"runs/{RUN_ID}/report/report.json")
    assert report["images_total"] == 90 and report["statement"]
    assert aws.keys(f"runs/{RUN_ID}/report/report.html")
    coco = from_coco(aws.read_json(f"runs/{RUN_ID}/exports/coco/annotations.json"), CLASSES)
    assert {image.image_id for image in coco} == set(sources)


def test_finalize_exports_read_back_as_yolo_and_voc(aws, tmp_path: Path):
    aws.put_config(human_budget_hours=BUDGET_HOURS, expected_objects_per_image=1)
    _run_initial_waves(aws)
    finalize.handler({**RUN, "execution_name": f"{RUN_ID}-i0000"}, CONTEXT)
    for key in aws.keys(f"runs/{RUN_ID}/exports/"):
        target = tmp_path / key.removeprefix(f"runs/{RUN_ID}/exports/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(aws.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    sources = _manifest_sources(aws, INITIAL_WAVES)
    sizes = {image: (320, 240) for image in sources}
    assert {image.image_id for image in read_yolo(tmp_path / "yolo", sizes)} == set(sources)
    assert {image.image_id for image in read_voc(tmp_path / "voc", CLASSES)} == set(sources)
