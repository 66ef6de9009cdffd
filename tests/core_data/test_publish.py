"""Manifest versions: precedence, determinism, idempotency, integrity, atomic local publishing."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from boxloop.layout import INDEX_NAME, version_name
from boxloop.manifest import iter_records
from boxloop.models import Box, HumanLabel, LabelRecord, LabelSource, Prediction, ScoredBox
from boxloop.publish import (
    PublishError,
    VersionIndex,
    auto_label_record,
    build_index,
    dumps_index,
    entry_from_record,
    human_label_record,
    iter_version_lines,
    merge_shard,
    parse_latest,
    publish_to_directory,
    read_latest_index,
    shard_for,
    verify_version,
)

ATTR = "bounding-box"
CLASS_MAP = {"0": "bottle", "1": "can"}


def image_id(n: int) -> str:
    return hashlib.sha256(str(n).encode()).hexdigest()


def auto(n: int, iteration: int = 1, left: float = 1.0) -> LabelRecord:
    prediction = Prediction(
        image_id=image_id(n),
        source_ref=f"s3://b/img/{n}.jpg",
        width=100,
        height=80,
        boxes=[ScoredBox(class_id=1, left=left, top=2.0, width=10.0, height=12.0, score=0.9)],
        confidence=0.95,
        model_version=f"model-{iteration}",
    )
    return auto_label_record(
        prediction,
        class_map=CLASS_MAP,
        iteration=iteration,
        threshold=0.8,
        creation_date=f"2026-11-2{iteration}T00:00:00+00:00",
        job_name=f"run-i{iteration:04d}",
    )


def human(n: int, iteration: int = 1, left: float = 3.0, source: LabelSource = LabelSource.HUMAN) -> LabelRecord:
    label = HumanLabel(
        image_id=image_id(n),
        source_ref=f"s3://b/img/{n}.jpg",
        width=100,
        height=80,
        boxes=[Box(class_id=0, left=left, top=4.0, width=20.0, height=22.0)],
        worker_ids=["w1"],
        time_spent_seconds=11.0,
        submitted_at=datetime(2026, 11, 20 + iteration, 12, tzinfo=UTC),
        job_name=f"run-i{iteration:04d}",
    )
    return human_label_record(label, class_map=CLASS_MAP, iteration=iteration, source=source)


def merged_records(tmp_path: Path, index: VersionIndex) -> dict[str, LabelRecord]:
    records = list(iter_records(iter_version_lines(tmp_path, index), "version", ATTR))
    assert len(records) == index.total
    return {record.image_id: record for record in records}


def read_shard(tmp_path: Path, index: VersionIndex):
    return lambda name: (tmp_path / version_name(index.version) / name).read_bytes()


def test_shard_for_is_stable_and_spreads_ids():
    assert shard_for(image_id(1), 16) == shard_for(image_id(1), 16)
    assert len({shard_for(image_id(n), 8) for n in range(200)}) == 8
    with pytest.raises(ValueError, match="n_shards"):
        shard_for("x", 0)


def test_latest_pointer_names_a_version():
    assert parse_latest(b"v0012\n") == 12
    with pytest.raises(PublishError, match="LATEST must name a version"):
        parse_latest("latest")


def test_auto_record_carries_provenance_and_rejects_failed_predictions():
    record = auto(1)
    assert (record.label_source, record.model_version, record.threshold, record.image_confidence) == (
        LabelSource.AUTO,
        "model-1",
        0.8,
        0.95,
    )
    assert record.box_confidences == [0.9]
    with pytest.raises(PublishError, match="cannot auto-label a failed prediction"):
        auto_label_record(
            Prediction(image_id="x", error="corrupt JPEG"),
            class_map=CLASS_MAP,
            iteration=1,
            threshold=0.8,
            creation_date="d",
            job_name="j",
        )
    with pytest.raises(PublishError, match="lacks source_ref"):
        auto_label_record(
            Prediction(image_id="x"), class_map=CLASS_MAP, iteration=1, threshold=0.8, creation_date="d", job_name="j"
        )


def test_human_record_carries_workers_and_time():
    record = human(1)
    assert (record.worker_ids, record.time_spent_seconds, record.box_confidences) == (["w1"], 11.0, [1.0])


def test_first_version_counts_checksums_and_latest(tmp_path: Path):
    records = [auto(n) for n in range(30)] + [human(n) for n in range(30, 40)]
    index = publish_to_directory(tmp_path, iteration=1, new_records=records, attribute=ATTR, n_shards=4)
    assert (index.version, index.previous_version, index.n_shards, index.total) == (1, None, 4, 40)
    assert index.counts == {"audit": 0, "auto": 30, "human": 10}
    assert index.created_from.new_labels == 40 and index.created_from.previous_index_sha256 is None
    assert (tmp_path / "LATEST").read_text() == "v0001\n"
    assert read_latest_index(tmp_path) == index
    verify_version(index, read_shard(tmp_path, index))
    assert merged_records(tmp_path, index) == {record.image_id: record for record in records}
    for shard_index, shard in enumerate(index.shards):
        ids = [
            json.loads(line)[f"{ATTR}-metadata"]["image-id"]
            for line in (tmp_path / "v0001" / shard.name).read_text().splitlines()
        ]
        assert ids == sorted(ids)
        assert all(shard_for(i, 4) == shard_index for i in ids)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["LATEST", "v0001"]


def test_precedence_across_versions(tmp_path: Path):
    publish_to_directory(
        tmp_path, iteration=1, attribute=ATTR, n_shards=3, new_records=[auto(1), auto(2), human(3), human(4), auto(5)]
    )
    second = publish_to_directory(
        tmp_path,
        iteration=2,
        attribute=ATTR,
        new_records=[
            human(1, iteration=2),  # human overrides an older auto label
            auto(3, iteration=2),  # auto never overrides a human label
            human(4, iteration=2, left=7.0),  # newer human overrides older human
            human(5, iteration=2, source=LabelSource.AUDIT),  # audit overrides auto
            auto(6, iteration=2),  # new image
        ],
    )
    records = merged_records(tmp_path, second)
    assert records[image_id(1)] == human(1, iteration=2)
    assert records[image_id(2)] == auto(2)
    assert records[image_id(3)] == human(3)
    assert records[image_id(4)].boxes[0].left == 7.0
    assert records[image_id(5)].label_source is LabelSource.AUDIT
    assert records[image_id(6)] == auto(6, iteration=2)
    assert second.counts == {"audit": 1, "auto": 2, "human": 3}
    assert (second.version, second.previous_version, second.n_shards) == (2, 1, 3)
    previous_bytes = (tmp_path / "v0001" / INDEX_NAME).read_bytes()
    assert second.created_from.previous_index_sha256 == hashlib.sha256(previous_bytes).hexdigest()


def test_older_human_label_does_not_override_newer(tmp_path: Path):
    publish_to_directory(
        tmp_path, iteration=3, attribute=ATTR, n_shards=2, new_records=[human(1, iteration=3, left=9.0)]
    )
    index = publish_to_directory(tmp_path, iteration=4, attribute=ATTR, new_records=[human(1, iteration=2)])
    assert merged_records(tmp_path, index)[image_id(1)].boxes[0].left == 9.0


def test_within_one_input_precedence_applies_and_identical_repeats_count_once():
    entries = [entry_from_record(r, ATTR) for r in [auto(1), human(1), human(2), human(2), auto(3, 1), auto(3, 2)]]
    merged = merge_shard("shard-00000.jsonl", [], None, entries, ATTR)
    records = {r.image_id: r for r in iter_records(merged.data.splitlines(), "merged", ATTR)}
    assert merged.entry.records == 3 and merged.new_labels == 3
    assert merged.counts == {"human": 2, "auto": 1}
    assert records == {image_id(1): human(1), image_id(2): human(2), image_id(3): auto(3, 2)}


def test_conflicting_labels_of_equal_precedence_are_an_error():
    entries = [entry_from_record(human(1, left=1.0), ATTR), entry_from_record(human(1, left=2.0), ATTR)]
    with pytest.raises(PublishError, match=f"image {image_id(1)} has two different human labels from iteration 1"):
        merge_shard("shard-00000.jsonl", [], None, entries, ATTR)


def test_deterministic_regardless_of_input_order(tmp_path: Path):
    records = [auto(n) for n in range(50)] + [human(n) for n in range(50, 60)]
    first = publish_to_directory(tmp_path / "a", iteration=1, new_records=records, attribute=ATTR, n_shards=5)
    second = publish_to_directory(tmp_path / "b", iteration=1, new_records=records[::-1], attribute=ATTR, n_shards=5)
    assert dumps_index(first) == dumps_index(second)
    for shard in first.shards:
        assert (tmp_path / "a/v0001" / shard.name).read_bytes() == (tmp_path / "b/v0001" / shard.name).read_bytes()


def test_republishing_an_iteration_is_a_no_op(tmp_path: Path):
    publish_to_directory(tmp_path, iteration=1, new_records=[auto(n) for n in range(10)], attribute=ATTR, n_shards=2)
    labels = [human(n, iteration=2) for n in range(5)]
    second = publish_to_directory(tmp_path, iteration=2, new_records=labels, attribute=ATTR)
    again = publish_to_directory(tmp_path, iteration=2, new_records=labels[::-1], attribute=ATTR)
    assert again == second
    assert sorted(p.name for p in tmp_path.iterdir()) == ["LATEST", "v0001", "v0002"]
    with pytest.raises(PublishError, match="iteration 2 is already published as v0002 from different labels"):
        publish_to_directory(tmp_path, iteration=2, new_records=labels[:3], attribute=ATTR)


def test_same_iteration_onto_same_previous_gives_same_content(tmp_path: Path):
    for folder in ("a", "b"):
        publish_to_directory(
            tmp_path / folder, iteration=1, new_records=[auto(n) for n in range(20)], attribute=ATTR, n_shards=3
        )
        publish_to_directory(
            tmp_path / folder, iteration=2, new_records=[human(n, 2) for n in range(10)], attribute=ATTR
        )
    assert (tmp_path / "a/v0002/index.json").read_bytes() == (tmp_path / "b/v0002/index.json").read_bytes()


def test_verify_version_detects_tampered_shard(tmp_path: Path):
    index = publish_to_directory(
        tmp_path, iteration=1, new_records=[auto(n) for n in range(10)], attribute=ATTR, n_shards=2
    )
    shard = tmp_path / "v0001" / index.shards[1].name
    shard.write_bytes(shard.read_bytes().replace(b'"left":1.0', b'"left":1.5', 1))
    with pytest.raises(PublishError, match="version 1, shard-00001.jsonl: .* do not match the index"):
        verify_version(index, read_shard(tmp_path, index))
    with pytest.raises(PublishError, match="previous shard-00001.jsonl: .* do not match its index"):
        publish_to_directory(tmp_path, iteration=2, new_records=[human(1, 2)], attribute=ATTR)


def test_previous_shard_out_of_order_is_rejected():
    lines = [entry_from_record(auto(n), ATTR).line for n in range(3)]
    lines.sort(reverse=True)
    with pytest.raises(PublishError, match="previous shard-00000.jsonl, line 2: image ids are not strictly increasing"):
        merge_shard("shard-00000.jsonl", lines, None, [], ATTR)


def test_build_index_from_pure_merges_matches_directory_publish(tmp_path: Path):
    records = [auto(n) for n in range(12)]
    directory_index = publish_to_directory(tmp_path, iteration=1, new_records=records, attribute=ATTR, n_shards=3)
    shards = [
        merge_shard(
            f"shard-{i:05d}.jsonl",
            [],
            None,
            [entry_from_record(r, ATTR) for r in records if shard_for(r.image_id, 3) == i],
            ATTR,
        )
        for i in range(3)
    ]
    assert build_index(version=1, iteration=1, attribute=ATTR, previous=None, shards=shards) == directory_index


def test_crash_before_latest_leaves_previous_version_visible(tmp_path: Path):
    first = publish_to_directory(tmp_path, iteration=1, new_records=[auto(1)], attribute=ATTR, n_shards=1)
    orphan = tmp_path / "v0002"
    orphan.mkdir()
    (orphan / "shard-00000.jsonl").write_text("half written")
    assert read_latest_index(tmp_path) == first
    second = publish_to_directory(tmp_path, iteration=2, new_records=[auto(2, 2)], attribute=ATTR)
    verify_version(second, read_shard(tmp_path, second))
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_attribute_must_match_the_run(tmp_path: Path):
    publish_to_directory(tmp_path, iteration=1, new_records=[auto(1)], attribute=ATTR, n_shards=1)
    with pytest.raises(PublishError, match="use attribute 'bounding-box', not 'boxes'"):
        publish_to_directory(tmp_path, iteration=2, new_records=[], attribute="boxes")
