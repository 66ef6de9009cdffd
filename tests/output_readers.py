"""Readers of boxloop's outputs for tests: a local manifest file, and the COCO / YOLO / VOC exports read back.

They check what the writers (``boxloop.manifest``, ``boxloop.exports``) produced; boxloop itself never reads an
export back. Malformed input surfaces as the parser's own exception, which fails the test that fed it.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict

from boxloop.manifest import iter_records
from boxloop.models import Box, LabelRecord


class ExportedImage(BaseModel):
    """One image of an export with its boxes (Ground Truth form, pixels)."""

    model_config = ConfigDict(frozen=True)

    image_id: str
    file_name: str
    width: int
    height: int
    boxes: list[Box]


def read_manifest_file(path: Path, attribute: str) -> Iterator[LabelRecord]:
    """Stream the LabelRecords of a local manifest file."""
    with open(path, "rb") as handle:
        yield from iter_records(handle, str(path), attribute)


def from_coco(dataset: Mapping[str, Any], class_names: Sequence[str]) -> list[ExportedImage]:
    """Images and boxes of a COCO dataset, mapping categories to ``class_names`` by name."""
    class_of_category = {
        category["id"]: list(class_names).index(category["name"]) for category in dataset["categories"]
    }
    boxes_of_image: dict[int, list[Box]] = {image["id"]: [] for image in dataset["images"]}
    for annotation in dataset["annotations"]:
        left, top, width, height = annotation["bbox"]
        boxes_of_image[annotation["image_id"]].append(
            Box(class_id=class_of_category[annotation["category_id"]], left=left, top=top, width=width, height=height)
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


def read_yolo(out_dir: Path, image_sizes: Mapping[str, tuple[int, int]]) -> list[ExportedImage]:
    """Read a YOLO export back to pixel boxes; ``image_sizes`` maps image id to (width, height)."""
    n_classes = int(yaml.safe_load((out_dir / "data.yaml").read_text())["nc"])
    images = []
    for path in sorted((out_dir / "labels").glob("*.txt")):
        width, height = image_sizes[path.stem]
        boxes = []
        for line in path.read_text().splitlines():
            class_field, *coordinates = line.split()
            class_id = int(class_field)
            assert 0 <= class_id < n_classes, f"{path}: class {class_id} is not in data.yaml's {n_classes} classes"
            cx, cy, w, h = (float(value) for value in coordinates)
            left, top = (cx - w / 2) * width, (cy - h / 2) * height
            boxes.append(Box(class_id=class_id, left=left, top=top, width=w * width, height=h * height))
        images.append(ExportedImage(image_id=path.stem, file_name=path.name, width=width, height=height, boxes=boxes))
    return images


def read_voc(out_dir: Path, class_names: Sequence[str]) -> list[ExportedImage]:
    """Read a Pascal VOC export back; class names are mapped to ids by ``class_names``."""
    images = []
    for path in sorted((out_dir / "Annotations").glob("*.xml")):
        annotation = ElementTree.parse(path).getroot()
        boxes = []
        for obj in annotation.iter("object"):
            xmin, ymin, xmax, ymax = (float(obj.findtext(f"bndbox/{tag}")) for tag in ("xmin", "ymin", "xmax", "ymax"))
            class_id = list(class_names).index(obj.findtext("name"))
            boxes.append(Box(class_id=class_id, left=xmin, top=ymin, width=xmax - xmin, height=ymax - ymin))
        images.append(
            ExportedImage(
                image_id=path.stem,
                file_name=annotation.findtext("filename"),
                width=int(annotation.findtext("size/width")),
                height=int(annotation.findtext("size/height")),
                boxes=boxes,
            )
        )
    return images
