"""Ground Truth manifest lines: mapping, determinism, streaming errors, atomic writes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from boxloop.manifest import (
    ManifestError,
    dumps_line,
    iter_jsonl_models,
    iter_records,
    line_to_record,
    record_to_line,
    write_jsonl_atomic,
)
from boxloop.models import Box, LabelRecord, LabelSource, Prediction

ATTR = "bounding-box"


def make_record(image_id: str = "a" * 64, source: LabelSource = LabelSource.HUMAN, **changes) -> LabelRecord:
    fields = dict(
        image_id=image_id,
        source_ref=f"s3://bucket/images/{image_id[:8]}.jpg",
        width=640,
        height=480,
        boxes=[
            Box(class_id=0, left=10.5, top=20.0, width=30.0, height=40.25),
            Box(class_id=1, left=0, top=0, width=5, height=5),
        ],
        box_confidences=[1.0, 1.0],
        class_map={"0": "bottle", "1": "can"},
        label_source=source,
        creation_date="2026-11-22T10:00:00+00:00",
        job_name="run-1-i0001",
        iteration=1,
    )
    if source is LabelSource.HUMAN:
        fields.update(worker_ids=["w1", "w2"], time_spent_seconds=12.5)
    else:
        fields.update(model_version="model-3", threshold=0.81, image_confidence=0.93, box_confidences=[0.9, 0.7])
    fields.update(changes)
    return LabelRecord(**fields)


def test_human_record_maps_to_ground_truth_line():
    line = record_to_line(make_record(), ATTR)
    assert line["source-ref"] == "s3://bucket/images/aaaaaaaa.jpg"
    assert line[ATTR]["image_size"] == [{"width": 640, "height": 480, "depth": 3}]
    assert line[ATTR]["annotations"][0] == {"class_id": 0, "left": 10.5, "top": 20.0, "width": 30.0, "height": 40.25}
    metadata = line[f"{ATTR}-metadata"]
    assert metadata["type"] == "groundtruth/object-detection"
    assert metadata["human-annotated"] == "yes"
    assert metadata["objects"] == [{"confidence": 1.0}, {"confidence": 1.0}]
    assert metadata["class-map"] == {"0": "bottle", "1": "can"}
    assert metadata["label-source"] == "human"
    assert metadata["worker-ids"] == ["w1", "w2"]
    assert metadata["time-spent-seconds"] == 12.5
    assert metadata["image-id"] == "a" * 64
    assert "model-version" not in metadata and "threshold" not in metadata


def test_auto_record_is_not_human_annotated_and_carries_model_provenance():
    metadata = record_to_line(make_record(source=LabelSource.AUTO), ATTR)[f"{ATTR}-metadata"]
    assert metadata["human-annotated"] == "no"
    assert metadata["label-source"] == "auto"
    assert (metadata["model-version"], metadata["threshold"], metadata["image-confidence"]) == ("model-3", 0.81, 0.93)
    assert metadata["objects"] == [{"confidence": 0.9}, {"confidence": 0.7}]


def test_audit_label_is_human_annotated():
    line = record_to_line(make_record(source=LabelSource.AUDIT), ATTR)
    assert line[f"{ATTR}-metadata"]["human-annotated"] == "yes"


@pytest.mark.parametrize("source", list(LabelSource))
def test_line_round_trips_through_json(source):
    record = make_record(source=source)
    text = dumps_line(record_to_line(record, "my-boxes"))
    assert line_to_record(json.loads(text), "my-boxes") == record


@given(
    left=st.floats(-1e4, 1e4, allow_nan=False),
    width=st.floats(0, 1e4, allow_nan=False),
    confidence=st.floats(0, 1),
)
def test_serialisation_is_deterministic_and_lossless(left, width, confidence):
    record = make_record(
        boxes=[Box(class_id=2, left=left, top=1.0, width=width, height=2.0)], box_confidences=[confidence]
    )
    text = dumps_line(record_to_line(record, ATTR))
    assert text == dumps_line(json.loads(text))
    assert line_to_record(json.loads(text), ATTR) == record
    assert ", " not in text and ": " not in text


def test_dumps_line_sorts_keys():
    assert dumps_line({"b": 1, "a": {"d": 2, "c": 3}}) == '{"a":{"c":3,"d":2},"b":1}'


@pytest.mark.parametrize("attribute", ["", "boxes-metadata", "image-ref", "source", "source-ref"])
def test_invalid_attribute_names_are_rejected(attribute):
    with pytest.raises(ManifestError, match="invalid label attribute name"):
        record_to_line(make_record(), attribute)


def _lines(*records: LabelRecord) -> list[str]:
    return [dumps_line(record_to_line(record, ATTR)) + "\n" for record in records]


def test_iter_records_streams_and_skips_blank_lines():
    first, second = make_record("a" * 64), make_record("b" * 64, LabelSource.AUTO)
    lines = _lines(first) + ["\n"] + [line.encode() for line in _lines(second)]
    assert list(iter_records(lines, "s3://b/m.jsonl", ATTR)) == [first, second]


def test_malformed_json_names_source_and_line():
    lines = [*_lines(make_record()), '{"source-ref": \n']
    with pytest.raises(ManifestError, match=r"^s3://b/runs/r/manifests/v0001/shard-00003\.jsonl, line 2: invalid JSON"):
        list(iter_records(lines, "s3://b/runs/r/manifests/v0001/shard-00003.jsonl", ATTR))


def test_invalid_field_names_manifest_key_and_line():
    line = record_to_line(make_record(), ATTR)
    line[ATTR]["image_size"][0]["width"] = -3
    with pytest.raises(
        ManifestError, match=r"m\.jsonl, line 3: bounding-box\.image_size\.width: Input should be greater than 0"
    ):
        list(iter_records([*_lines(make_record(), make_record()), json.dumps(line)], "m.jsonl", ATTR))


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda line: line.pop("source-ref"), "missing key 'source-ref'"),
        (lambda line: line[f"{ATTR}-metadata"].update(type="groundtruth/image-classification"), "type must be"),
        (lambda line: line[f"{ATTR}-metadata"]["objects"].pop(), "annotations has 2 boxes but"),
        (lambda line: line[f"{ATTR}-metadata"].update({"human-annotated": "no"}), "human-annotated is 'no'"),
        (lambda line: line[f"{ATTR}-metadata"].update({"label-source": "robot"}), "label-source: Input should be"),
        (lambda line: line[f"{ATTR}-metadata"].pop("image-id"), "image-id"),
    ],
)
def test_invalid_lines_are_rejected_with_reason(mutate, message):
    line = record_to_line(make_record(), ATTR)
    mutate(line)
    with pytest.raises(ManifestError, match=message):
        line_to_record(line, ATTR)


def test_non_object_line_is_rejected():
    with pytest.raises(ManifestError, match="f.jsonl, line 1: expected a JSON object, got list"):
        list(iter_records(["[1, 2]"], "f.jsonl", ATTR))


def test_iter_records_streams_a_file_and_names_it(tmp_path: Path):
    path = tmp_path / "output.manifest"
    path.write_text("".join(_lines(make_record())) + "not json\n")
    with open(path, "rb") as handle:
        records = iter_records(handle, str(path), ATTR)
        assert next(records) == make_record()
        with pytest.raises(ManifestError, match=f"{path}, line 2: invalid JSON"):
            next(records)


def test_iter_jsonl_models_validates_each_line():
    good = Prediction(image_id="x", confidence=0.5).model_dump_json()
    bad = json.dumps({"image_id": "y", "confidence": 1.5})
    models = iter_jsonl_models([good, "", bad], Prediction, "preds/shard-1.jsonl")
    assert next(models).image_id == "x"
    with pytest.raises(
        ManifestError, match=r"preds/shard-1\.jsonl, line 3: confidence: Input should be less than or equal to 1"
    ):
        next(models)


def test_iter_jsonl_models_reports_invalid_json():
    with pytest.raises(ManifestError, match=r"p\.jsonl, line 1: .*Invalid JSON"):
        list(iter_jsonl_models(["{oops"], Prediction, "p.jsonl"))


def test_write_jsonl_atomic_replaces_whole_file(tmp_path: Path):
    path = tmp_path / "pool.jsonl"
    write_jsonl_atomic(path, ['{"a":1}', '{"a":2}'])
    assert path.read_text() == '{"a":1}\n{"a":2}\n'
    write_jsonl_atomic(path, ['{"b":1}'])
    assert path.read_text() == '{"b":1}\n'
    assert os.listdir(tmp_path) == ["pool.jsonl"]


def test_write_jsonl_atomic_leaves_old_file_when_writing_fails(tmp_path: Path):
    path = tmp_path / "pool.jsonl"
    write_jsonl_atomic(path, ['{"a":1}'])

    def failing_lines():
        yield '{"a":2}'
        raise RuntimeError("producer failed")

    with pytest.raises(RuntimeError, match="producer failed"):
        write_jsonl_atomic(path, failing_lines())
    assert path.read_text() == '{"a":1}\n'
    assert os.listdir(tmp_path) == ["pool.jsonl"]
