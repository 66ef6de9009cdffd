"""Exports of a manifest's labels: COCO JSON, YOLO text files, Pascal VOC XML.

Every image is named by its image id (the SHA-256 of its bytes) plus the
extension of its ``source-ref``, so names are unique and stable across runs.
Readers return ``ExportedImage`` (an image and its boxes) for checking and
re-import; they fail with a message naming the file and what was wrong.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict

from boxloop.manifest import write_bytes_atomic
from boxloop.models import Box, LabelRecord

YOLO_DECIMALS = 6


class ExportError(ValueError):
    """An export cannot be written or read back; the message names the file and the problem."""


class ExportedImage(BaseModel):
    """One image of an export with its boxes (Ground Truth form, pixels)."""

    model_config = ConfigDict(frozen=True)

    image_id: str
    file_name: str
    width: int
    height: int
    boxes: list[Box]


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


def from_coco(dataset: Mapping[str, Any], class_names: Sequence[str]) -> list[ExportedImage]:
    """Images and boxes of a COCO dataset, mapping categories to ``class_names`` by name."""
    try:
        class_of_category = {
            category["id"]: _class_id(category["name"], class_names) for category in dataset["categories"]
        }
        boxes_of_image: dict[int, list[Box]] = {image["id"]: [] for image in dataset["images"]}
        for annotation in dataset["annotations"]:
            left, top, width, height = annotation["bbox"]
            class_id = class_of_category[annotation["category_id"]]
            boxes_of_image[annotation["image_id"]].append(
                Box(class_id=class_id, left=left, top=top, width=width, height=height)
            )
        return [
            ExportedImage(
                image_id=image.get("image_id", PurePosixPath(image["file_name"]).stem),
                file_name=image["file_name"],
                width=image["width"],
                height=image["height"],
                boxes=boxes_of_image[image["id"]],
            )
            for image in dataset["images"]
        ]
    except ExportError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise ExportError(f"not a COCO detection dataset: {exc!r}") from exc


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


def read_yolo(out_dir: str | os.PathLike[str], image_sizes: Mapping[str, tuple[int, int]]) -> list[ExportedImage]:
    """Read a YOLO export back to pixel boxes; ``image_sizes`` maps image id to (width, height)."""
    root = Path(out_dir)
    data = yaml.safe_load((root / "data.yaml").read_text())
    n_classes = int(data["nc"])
    images = []
    for path in sorted((root / "labels").glob("*.txt")):
        if path.stem not in image_sizes:
            raise ExportError(f"{path}: no image size given for image {path.stem}")
        width, height = image_sizes[path.stem]
        boxes = []
        for line_number, line in enumerate(path.read_text().splitlines(), start=1):
            fields = line.split()
            try:
                class_id = int(fields[0])
                cx, cy, w, h = (float(value) for value in fields[1:])
            except ValueError as exc:
                raise ExportError(f"{path}, line {line_number}: expected 'class cx cy w h', got {line!r}") from exc
            if not 0 <= class_id < n_classes:
                raise ExportError(
                    f"{path}, line {line_number}: class {class_id} is not in data.yaml's {n_classes} classes"
                )
            left, top = (cx - w / 2) * width, (cy - h / 2) * height
            boxes.append(Box(class_id=class_id, left=left, top=top, width=w * width, height=h * height))
        images.append(ExportedImage(image_id=path.stem, file_name=path.name, width=width, height=height, boxes=boxes))
    return images


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


def read_voc(out_dir: str | os.PathLike[str], class_names: Sequence[str]) -> list[ExportedImage]:
    """Read a Pascal VOC export back; class names are mapped to ids by ``class_names``."""
    images = []
    for path in sorted((Path(out_dir) / "Annotations").glob("*.xml")):
        try:
            annotation = ElementTree.parse(path).getroot()
            boxes = []
            for obj in annotation.iter("object"):
                bndbox = obj.find("bndbox")
                xmin, ymin, xmax, ymax = (float(_text(bndbox, tag)) for tag in ("xmin", "ymin", "xmax", "ymax"))
                class_id = _class_id(_text(obj, "name"), class_names)
                boxes.append(Box(class_id=class_id, left=xmin, top=ymin, width=xmax - xmin, height=ymax - ymin))
            size = annotation.find("size")
            images.append(
                ExportedImage(
                    image_id=path.stem,
                    file_name=_text(annotation, "filename"),
                    width=int(_text(size, "width")),
                    height=int(_text(size, "height")),
                    boxes=boxes,
                )
            )
        except (ElementTree.ParseError, ValueError, AttributeError) as exc:
            raise ExportError(f"{path}: not a Pascal VOC annotation: {exc}") from exc
    return images


def _check_classes(record: LabelRecord, class_names: Sequence[str]) -> None:
    for box in record.boxes:
        if box.class_id >= len(class_names):
            raise ExportError(
                f"image {record.image_id}: class id {box.class_id} is not one of the {len(class_names)} classes"
            )


def _class_id(name: str, class_names: Sequence[str]) -> int:
    try:
        return list(class_names).index(name)
    except ValueError:
        raise ExportError(f"class {name!r} is not one of {list(class_names)}") from None


def _sub(parent: ElementTree.Element, tag: str, text: str | None = None) -> ElementTree.Element:
    element = ElementTree.SubElement(parent, tag)
    if text is not None:
        element.text = text
    return element


def _text(element: ElementTree.Element | None, tag: str) -> str:
    child = element.find(tag) if element is not None else None
    if child is None or child.text is None:
        raise ValueError(f"missing <{tag}>")
    return child.text
