"""COCO, YOLO and Pascal VOC exports: round trips, stable names, pycocotools compatibility."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
from pathlib import Path

import pytest
import yaml
from pycocotools.coco import COCO

from boxloop.exports import ExportError, file_name_for, to_coco, write_voc, write_yolo
from boxloop.models import Box, LabelRecord, LabelSource
from tests.output_readers import ExportedImage, from_coco, read_voc, read_yolo

CLASSES = ["bottle", "can", "box"]


def record(n: int, boxes: list[Box], source_ref: str | None = None) -> LabelRecord:
    image_id = hashlib.sha256(str(n).encode()).hexdigest()
    return LabelRecord(
        image_id=image_id,
        source_ref=source_ref or f"s3://bucket/incoming/shelf/IMG_{n % 2}.png",
        width=640,
        height=480,
        boxes=boxes,
        box_confidences=[1.0] * len(boxes),
        class_map={str(i): name for i, name in enumerate(CLASSES)},
        label_source=LabelSource.HUMAN,
        creation_date="2026-11-22T00:00:00+00:00",
        job_name="job",
        iteration=0,
    )


RECORDS = [
    record(
        1,
        [
            Box(class_id=0, left=10.25, top=20.5, width=100.125, height=50.75),
            Box(class_id=2, left=0, top=0, width=640, height=480),
        ],
    ),
    record(2, [Box(class_id=1, left=333.333, top=111.111, width=12.5, height=7.25)]),
    record(3, []),
    record(4, [Box(class_id=1, left=1, top=2, width=3, height=4)] * 2, source_ref="s3://bucket/no-extension"),
]


def assert_same_boxes(images: list[ExportedImage], records: list[LabelRecord], tolerance: float) -> None:
    by_id = {image.image_id: image for image in images}
    assert set(by_id) == {r.image_id for r in records}
    for r in records:
        exported = by_id[r.image_id]
        assert (exported.width, exported.height) == (r.width, r.height)
        assert [b.class_id for b in exported.boxes] == [b.class_id for b in r.boxes]
        for got, want in zip(exported.boxes, r.boxes, strict=True):
            assert got.xyxy() == pytest.approx(want.xyxy(), abs=tolerance)


def test_file_names_are_unique_and_use_image_id():
    names = [file_name_for(r) for r in RECORDS]
    assert len(set(names)) == len(names)
    assert names[0] == f"{RECORDS[0].image_id}.png"
    assert names[3] == f"{RECORDS[3].image_id}.jpg"


def test_coco_round_trip_and_loads_in_pycocotools(tmp_path: Path):
    dataset = to_coco(RECORDS[::-1], CLASSES)
    assert [image["image_id"] for image in dataset["images"]] == sorted(r.image_id for r in RECORDS)
    assert [c["id"] for c in dataset["categories"]] == [1, 2, 3]
    path = tmp_path / "coco.json"
    path.write_text(json.dumps(dataset))
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(path))
    assert len(coco.getImgIds()) == 4 and len(coco.getAnnIds()) == 5
    assert coco.loadCats(coco.getCatIds(catNms=["can"]))[0]["id"] == 2
    first = coco.loadAnns(coco.getAnnIds(imgIds=[coco.getImgIds()[0]]))
    assert all(ann["area"] == ann["bbox"][2] * ann["bbox"][3] for ann in first)
    assert_same_boxes(from_coco(json.loads(path.read_text()), CLASSES), RECORDS, 1e-9)


def test_coco_export_is_stable():
    assert json.dumps(to_coco(RECORDS, CLASSES)) == json.dumps(to_coco(list(reversed(RECORDS)), CLASSES))


def test_unknown_class_id_is_rejected(tmp_path: Path):
    bad = record(9, [Box(class_id=5, left=0, top=0, width=1, height=1)])
    for write in (
        lambda: to_coco([bad], CLASSES),
        lambda: write_yolo([bad], tmp_path, CLASSES),
        lambda: write_voc([bad], tmp_path, CLASSES),
    ):
        with pytest.raises(ExportError, match="class id 5 is not one of the 3 classes"):
            write()


def test_yolo_round_trip(tmp_path: Path):
    assert write_yolo(RECORDS, tmp_path, CLASSES) == 4
    data = yaml.safe_load((tmp_path / "data.yaml").read_text())
    assert data["nc"] == 3 and data["names"] == {0: "bottle", 1: "can", 2: "box"}
    assert (tmp_path / "labels" / f"{RECORDS[2].image_id}.txt").read_text() == ""
    first = (tmp_path / "labels" / f"{RECORDS[0].image_id}.txt").read_text().splitlines()
    assert first[1] == "2 0.500000 0.500000 1.000000 1.000000"
    sizes = {r.image_id: (r.width, r.height) for r in RECORDS}
    assert_same_boxes(read_yolo(tmp_path, sizes), RECORDS, 1e-3)


def test_voc_round_trip(tmp_path: Path):
    assert write_voc(RECORDS, tmp_path, CLASSES) == 4
    xml = (tmp_path / "Annotations" / f"{RECORDS[1].image_id}.xml").read_text()
    assert "<name>can</name>" in xml and f"<filename>{RECORDS[1].image_id}.png</filename>" in xml
    assert_same_boxes(read_voc(tmp_path, CLASSES), RECORDS, 1e-9)
