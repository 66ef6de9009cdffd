"""Exports of a manifest's labels: COCO JSON, YOLO text files, Pascal VOC XML.

Every image is named by its image id (the SHA-256 of its bytes) plus the
extension of its ``source-ref``, so names are unique and stable across runs.
A record whose class id is not among the classes fails with ``ExportError``
naming the image.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from boxloop.manifest import write_bytes_atomic
from boxloop.models import LabelRecord

YOLO_DECIMALS = 6


class ExportError(ValueError):
    """An export cannot be written; the message names the image and the problem."""


def file_name_for(record: LabelRecord) -> str:
    """The exported image file name: ``<image_id><extension of source-ref>`` (``.jpg`` if none)."""
    suffix = PurePosixPath(record.source_ref).suffix.lower() or ".jpg"
    return f"{record.image_id}{suffix}"


def to_coco(records: Iterable[LabelRecord], class_names: Sequence[str]) -> dict[str, Any]:
    """A COCO detection dataset: images sorted by image id (ids 1…N), category id = class id + 1."""
    images, annotations = [], []
    for number, record in enumerate(sorted(records, key=lambda r: r.image_id), start=1):
        _check_classes(record, class_names)
        images.append(
            {
                "id": number,
                "file_name": file_name_for(record),
                "width": record.width,
                "height": record.height,
                "image_id": record.image_id,
                "source_ref": record.source_ref,
            }
        )
        for box, confidence in zip(record.boxes, record.box_confidences, strict=True):
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": number,
                    "category_id": box.class_id + 1,
                    "bbox": [box.left, box.top, box.width, box.height],
                    "area": box.width * box.height,
                    "iscrowd": 0,
                    "score": confidence,
                    "label_source": record.label_source.value,
                }
            )
    categories = [
        {"id": class_id + 1, "name": name, "supercategory": "object"} for class_id, name in enumerate(class_names)
    ]
    return {"images": images, "annotations": annotations, "categories": categories}


def write_yolo(records: Iterable[LabelRecord], out_dir: str | os.PathLike[str], class_names: Sequence[str]) -> int:
    """Write ``labels/<image_id>.txt`` (``class cx cy w h``, normalised) and ``data.yaml``; return the image count.

    An image with no boxes gets an empty label file (YOLO's background image).
    ``data.yaml`` is written last and atomically, so its presence marks a complete export.
    """
    root = Path(out_dir)
    (root / "labels").mkdir(parents=True, exist_ok=True)
    count = 0
    for record in records:
        _check_classes(record, class_names)
        lines = [
            " ".join(
                [str(box.class_id)]
                + [
                    f"{value:.{YOLO_DECIMALS}f}"
                    for value in (
                        (box.left + box.width / 2) / record.width,
                        (box.top + box.height / 2) / record.height,
                        box.width / record.width,
                        box.height / record.height,
                    )
                ]
            )
            for box in record.boxes
        ]
        (root / "labels" / f"{record.image_id}.txt").write_text("".join(f"{line}\n" for line in lines))
        count += 1
    data = {"path": ".", "labels": "labels", "nc": len(class_names), "names": dict(enumerate(class_names))}
    write_bytes_atomic(root / "data.yaml", yaml.safe_dump(data, sort_keys=False).encode())
    return count


def write_voc(records: Iterable[LabelRecord], out_dir: str | os.PathLike[str], class_names: Sequence[str]) -> int:
    """Write one Pascal VOC ``Annotations/<image_id>.xml`` per image; return the image count.

    Coordinates are pixel edges as decimals (``xmin = left``, ``xmax = left + width``).
    """
    root = Path(out_dir) / "Annotations"
    root.mkdir(parents=True, exist_ok=True)
    count = 0
    for record in records:
        _check_classes(record, class_names)
        annotation = ElementTree.Element("annotation")
        _sub(annotation, "folder", "JPEGImages")
        _sub(annotation, "filename", file_name_for(record))
        _sub(annotation, "path", record.source_ref)
        size = _sub(annotation, "size")
        for tag, value in (("width", record.width), ("height", record.height), ("depth", record.depth)):
            _sub(size, tag, str(value))
        _sub(annotation, "segmented", "0")
        for box in record.boxes:
            obj = _sub(annotation, "object")
            _sub(obj, "name", class_names[box.class_id])
            _sub(obj, "pose", "Unspecified")
            _sub(obj, "truncated", "0")
            _sub(obj, "difficult", "0")
            bndbox = _sub(obj, "bndbox")
            for tag, value in (("xmin", box.left), ("ymin", box.top), ("xmax", box.right), ("ymax", box.bottom)):
                _sub(bndbox, tag, repr(float(value)))
        ElementTree.indent(annotation)
        xml = ElementTree.tostring(annotation, encoding="utf-8", xml_declaration=True)
        (root / f"{record.image_id}.xml").write_bytes(xml)
        count += 1
    return count


def _check_classes(record: LabelRecord, class_names: Sequence[str]) -> None:
    for box in record.boxes:
        if box.class_id >= len(class_names):
            raise ExportError(
                f"image {record.image_id}: class id {box.class_id} is not one of the {len(class_names)} classes"
            )


def _sub(parent: ElementTree.Element, tag: str, text: str | None = None) -> ElementTree.Element:
    element = ElementTree.SubElement(parent, tag)
    if text is not None:
        element.text = text
    return element
