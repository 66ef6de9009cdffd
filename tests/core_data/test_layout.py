"""The data bucket's layout: every key, pinned to the exact strings the stack, the local run and users rely on."""

from __future__ import annotations

from datetime import datetime

import pytest

from boxloop.layout import (
    COCO_EXPORT,
    CONFIG_KEY,
    CONFIG_STATUS_KEY,
    INCOMING_PREFIX,
    POOL_SHARD_LINES,
    QUARANTINE_PREFIX,
    REVIEWED_ANSWER_FOLDERS,
    RunLayout,
    a2i_output_key,
    answer_image_id,
    browser_answer_key,
    is_human_answer_key,
    iteration_label,
    latest_key,
    manifest_key,
    manifests_prefix,
    quarantine_key,
    quarantine_reason_key,
    shard_name,
    version_name,
)

LAYOUT = RunLayout(bucket="data", run_id="run-1")


def test_keys_outside_runs_are_pinned():
    assert INCOMING_PREFIX == "incoming/"
    assert QUARANTINE_PREFIX == "quarantine/"
    assert (CONFIG_KEY, CONFIG_STATUS_KEY) == ("config/labeling.json", "config/labeling.status.json")
    assert quarantine_key("incoming/a b.jpg") == "quarantine/incoming/a b.jpg"
    assert quarantine_reason_key("incoming/a b.jpg") == "quarantine/incoming/a b.jpg.reason.json"
    at = datetime(2025, 1, 2, 3, 4, 5)
    assert a2i_output_key("flow", "loop-1", at) == "a2i-output/flow/2025/01/02/03/04/05/loop-1/output.json"
    assert browser_answer_key("run-1", 3, "task-9") == "answers/run-1/0003/task-9/output.json"


def test_human_answer_keys_are_recognised_by_prefix_and_file_name():
    assert is_human_answer_key("a2i-output/flow/2025/01/02/03/04/05/loop-1/output.json")
    assert is_human_answer_key("answers/run-1/0003/task-9/output.json")
    assert not is_human_answer_key("a2i-output/flow/loop-1/other.json")
    assert not is_human_answer_key("runs/run-1/answers/x/output.json")


def test_names_of_iterations_versions_and_shards():
    assert iteration_label(3) == "0003" and version_name(12) == "v0012" and shard_name(7) == "shard-00007.jsonl"
    with pytest.raises(ValueError, match="iteration must be >= 0"):
        iteration_label(-1)
    assert POOL_SHARD_LINES == 10_000


def test_manifest_keys_are_pinned():
    assert manifests_prefix("run-1") == "runs/run-1/manifests/"
    assert manifest_key("run-1", 3, "index.json") == "runs/run-1/manifests/v0003/index.json"
    assert latest_key("run-1") == "runs/run-1/manifests/LATEST"
    assert (LAYOUT.manifests, LAYOUT.latest) == ("runs/run-1/manifests/", "runs/run-1/manifests/LATEST")
    assert LAYOUT.manifest_version(3) == "runs/run-1/manifests/v0003/"
    assert LAYOUT.labelled_ids(3, "shard-00001.jsonl") == "runs/run-1/labelled/v0003/shard-00001.jsonl.ids"


def test_run_keys_are_pinned():
    iteration = "runs/run-1/iterations/0002/"
    pinned = [
        (LAYOUT.root, "runs/run-1/"),
        (LAYOUT.config, "runs/run-1/config.json"),
        (LAYOUT.pool_prefix, "runs/run-1/pool/"),
        (LAYOUT.pool_index, "runs/run-1/pool-index.json"),
        (LAYOUT.pool_shard(2, 5), "runs/run-1/pool/i0002-00005.jsonl"),
        (LAYOUT.pool_shards_of(2), "runs/run-1/pool/i0002-"),
        (LAYOUT.iterations, "runs/run-1/iterations/"),
        (LAYOUT.iteration(2), iteration),
        (LAYOUT.human(2), f"{iteration}human/"),
        (LAYOUT.tasks(2), f"{iteration}human/tasks.jsonl"),
        (LAYOUT.labels(2), f"{iteration}human/labels/"),
        (LAYOUT.label(2, "abc"), f"{iteration}human/labels/abc.json"),
        (LAYOUT.rejected(2), f"{iteration}human/rejected/"),
        (LAYOUT.gold(2), f"{iteration}human/gold/"),
        (LAYOUT.unlabellable(2), f"{iteration}human/unlabellable/"),
        (LAYOUT.training_channel(2, "train"), f"{iteration}training/train/"),
        (LAYOUT.model_output(2), f"{iteration}model/"),
        (LAYOUT.model_record(2), f"{iteration}model.json"),
        (LAYOUT.model_artifact(2, "job-1"), f"{iteration}model/job-1/output/model.tar.gz"),
        (LAYOUT.inference_input(2), f"{iteration}inference-input/"),
        (LAYOUT.inference(2), f"{iteration}inference/"),
        (LAYOUT.threshold(2), f"{iteration}threshold.json"),
        (LAYOUT.routed_auto(2, "i0000-00000.jsonl.out"), f"{iteration}routing/auto/i0000-00000.jsonl.out.jsonl"),
        (LAYOUT.routed_candidates(2, "s.out"), f"{iteration}routing/candidates/s.out.json"),
        (LAYOUT.routing_prefix(2, "auto"), f"{iteration}routing/auto/"),
        (LAYOUT.selection(2), f"{iteration}selection.json"),
        (LAYOUT.metrics(2), f"{iteration}metrics.json"),
        (LAYOUT.exports, "runs/run-1/exports/"),
        (LAYOUT.report, "runs/run-1/report/"),
        (LAYOUT.report_json, "runs/run-1/report/report.json"),
        (LAYOUT.report_html, "runs/run-1/report/report.html"),
        (LAYOUT.failure("run-1-i0002", "TrainDetector"), "runs/run-1/failures/run-1-i0002-TrainDetector.json"),
    ]
    assert [actual for actual, _ in pinned] == [key for _, key in pinned]
    assert LAYOUT.uri(LAYOUT.config) == "s3://data/runs/run-1/config.json"
    assert COCO_EXPORT == "coco/annotations.json"


@pytest.mark.parametrize("kind", sorted(REVIEWED_ANSWER_FOLDERS))
def test_each_reviewed_answer_is_stored_per_image_and_its_id_read_back(kind):
    key = LAYOUT.reviewed_answer(1, kind, "f" * 64)
    assert key == f"runs/run-1/iterations/0001/human/{REVIEWED_ANSWER_FOLDERS[kind]}/{'f' * 64}.json"
    assert key.startswith(LAYOUT.reviewed_answers(1, kind))
    assert answer_image_id(key) == "f" * 64
