"""Ground Truth augmented-manifest lines for bounding boxes, and JSONL shards.

One manifest line per image (DESIGN.md, "Manifest format")::

    {"source-ref": "s3://…",
     "<attr>": {"image_size": [{"width": W, "height": H, "depth": 3}],
                "annotations": [{"class_id": 0, "left": x, "top": y, "width": w, "height": h}]},
     "<attr>-metadata": {"objects": [{"confidence": 0.93}], "class-map": {"0": "bottle"},
                         "type": "groundtruth/object-detection", "human-annotated": "yes",
                         "creation-date": "…", "job-name": "…", "label-source": "human", …}}

Every reader reports bad input as a ``ManifestError`` naming the source (file
or S3 key) and the 1-based line number.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from boxloop.models import LabelRecord, LabelSource

OBJECT_DETECTION_TYPE = "groundtruth/object-detection"

ModelT = TypeVar("ModelT", bound=BaseModel)


class ManifestError(ValueError):
    """A manifest or JSONL shard is malformed; the message says where and why."""


def check_attribute_name(attribute: str) -> None:
    """Raise ManifestError unless ``attribute`` is a valid Ground Truth label attribute name."""
    if not attribute or "-metadata" in attribute or attribute.endswith("-ref") or attribute in {"source", "source-ref"}:
        raise ManifestError(
            f"invalid label attribute name {attribute!r}: may not be empty, contain '-metadata', "
            "end in '-ref', or be 'source'/'source-ref'"
        )


def record_to_line(record: LabelRecord, attribute: str) -> dict[str, Any]:
    """The Ground Truth manifest line (a JSON-ready dict) for one label record.

    Optional provenance (model version, threshold, image confidence, worker ids,
    time spent) is written only when set.
    """
    check_attribute_name(attribute)
    metadata: dict[str, Any] = {
        "objects": [{"confidence": confidence} for confidence in record.box_confidences],
        "class-map": record.class_map,
        "type": OBJECT_DETECTION_TYPE,
        "human-annotated": "no" if record.label_source is LabelSource.AUTO else "yes",
        "creation-date": record.creation_date,
        "job-name": record.job_name,
        "label-source": record.label_source.value,
        "iteration": record.iteration,
        "image-id": record.image_id,
    }
    optional = {
        "model-version": record.model_version,
        "threshold": record.threshold,
        "image-confidence": record.image_confidence,
        "worker-ids": record.worker_ids,
        "time-spent-seconds": record.time_spent_seconds,
    }
    metadata.update({key: value for key, value in optional.items() if value is not None})
    return {
        "source-ref": record.source_ref,
        attribute: {
            "image_size": [{"width": record.width, "height": record.height, "depth": record.depth}],
            "annotations": [
                {"class_id": box.class_id, "left": box.left, "top": box.top, "width": box.width, "height": box.height}
                for box in record.boxes
            ],
        },
        f"{attribute}-metadata": metadata,
    }


def line_to_record(line: dict[str, Any], attribute: str) -> LabelRecord:
    """Parse and validate one manifest line (a decoded JSON object) into a LabelRecord.

    Raises ManifestError naming the missing or invalid field.
    """
    check_attribute_name(attribute)
    if not isinstance(line, dict):
        raise ManifestError(f"a manifest line must be a JSON object, got {type(line).__name__}")
    metadata_key = f"{attribute}-metadata"
    for key in ("source-ref", attribute, metadata_key):
        if key not in line:
            raise ManifestError(f"missing key {key!r}")
    label, metadata = line[attribute], line[metadata_key]
    if not isinstance(label, dict) or not isinstance(metadata, dict):
        raise ManifestError(f"{attribute!r} and {metadata_key!r} must be JSON objects")
    if metadata.get("type") != OBJECT_DETECTION_TYPE:
        raise ManifestError(f"{metadata_key}.type must be {OBJECT_DETECTION_TYPE!r}, got {metadata.get('type')!r}")
    image_sizes = label.get("image_size")
    if not isinstance(image_sizes, list) or len(image_sizes) != 1 or not isinstance(image_sizes[0], dict):
        raise ManifestError(f"{attribute}.image_size must be a list with one {{width, height, depth}} object")
    annotations = label.get("annotations")
    objects = metadata.get("objects")
    if not isinstance(annotations, list) or not isinstance(objects, list):
        raise ManifestError(f"{attribute}.annotations and {metadata_key}.objects must be lists")
    if not all(isinstance(obj, dict) for obj in objects):
        raise ManifestError(f'{metadata_key}.objects must hold {{"confidence": c}} objects')
    if len(annotations) != len(objects):
        raise ManifestError(
            f"{attribute}.annotations has {len(annotations)} boxes but {metadata_key}.objects has {len(objects)}"
        )
    try:
        record = LabelRecord.model_validate(
            {
                "image_id": metadata.get("image-id"),
                "source_ref": line["source-ref"],
                "width": image_sizes[0].get("width"),
                "height": image_sizes[0].get("height"),
                "depth": image_sizes[0].get("depth", 3),
                "boxes": annotations,
                "box_confidences": [obj.get("confidence") for obj in objects],
                "class_map": metadata.get("class-map"),
                "label_source": metadata.get("label-source"),
                "creation_date": metadata.get("creation-date"),
                "job_name": metadata.get("job-name"),
                "iteration": metadata.get("iteration"),
                "model_version": metadata.get("model-version"),
                "threshold": metadata.get("threshold"),
                "image_confidence": metadata.get("image-confidence"),
                "worker_ids": metadata.get("worker-ids"),
                "time_spent_seconds": metadata.get("time-spent-seconds"),
            }
        )
    except ValidationError as exc:
        line_keys = {field: key.replace("<attr>", attribute) for field, key in _RECORD_FIELD_TO_LINE_KEY.items()}
        raise ManifestError(_describe_validation_error(exc, line_keys)) from exc
    expected_human = "no" if record.label_source is LabelSource.AUTO else "yes"
    if metadata.get("human-annotated") != expected_human:
        raise ManifestError(
            f"{metadata_key}.human-annotated is {metadata.get('human-annotated')!r} "
            f"but label-source {record.label_source.value!r} requires {expected_human!r}"
        )
    return record


def dumps_line(line: dict[str, Any]) -> str:
    """Deterministic JSON for one line (sorted keys, compact): equal inputs give identical text."""
    return json.dumps(line, sort_keys=True, separators=(",", ":"))


def dumps_record(record: LabelRecord, attribute: str) -> str:
    """The deterministic manifest line text (without newline) for one record."""
    return dumps_line(record_to_line(record, attribute))


def iter_json_objects(lines: Iterable[str | bytes], source_name: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (1-based line number, decoded object) for each non-blank JSONL line.

    Raises ManifestError naming ``source_name`` and the line for invalid JSON or a non-object.
    """
    for line_number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            decoded = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ManifestError(f"{source_name}, line {line_number}: invalid JSON: {exc}") from exc
        if not isinstance(decoded, dict):
            raise ManifestError(
                f"{source_name}, line {line_number}: expected a JSON object, got {type(decoded).__name__}"
            )
        yield line_number, decoded


def iter_records(lines: Iterable[str | bytes], source_name: str, attribute: str) -> Iterator[LabelRecord]:
    """Stream LabelRecords from manifest lines; errors name ``source_name`` and the 1-based line."""
    check_attribute_name(attribute)
    for line_number, decoded in iter_json_objects(lines, source_name):
        try:
            yield line_to_record(decoded, attribute)
        except ManifestError as exc:
            raise ManifestError(f"{source_name}, line {line_number}: {exc}") from exc


def iter_jsonl_models(lines: Iterable[str | bytes], model_cls: type[ModelT], source_name: str) -> Iterator[ModelT]:
    """Stream validated ``model_cls`` instances (Prediction, HumanLabel, ImageRecord, …) from JSONL lines.

    Raises ManifestError naming ``source_name``, the 1-based line and the invalid field.
    """
    for line_number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            yield model_cls.model_validate_json(raw)
        except ValidationError as exc:
            raise ManifestError(f"{source_name}, line {line_number}: {_describe_validation_error(exc)}") from exc


def write_jsonl_atomic(path: str | os.PathLike[str], lines: Iterable[str]) -> None:
    """Write ``lines`` (one JSON text each, no newline) to ``path`` atomically.

    The text goes to a temporary file in the same directory, is fsynced, then
    renamed over ``path``: readers see the old file or the complete new one.
    """
    write_bytes_atomic(path, "".join(f"{line}\n" for line in lines).encode())


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` via a fsynced temporary file in the same directory and a rename."""
    target = Path(path)
    descriptor, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_name, target)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


_RECORD_FIELD_TO_LINE_KEY = {
    "image_id": "<attr>-metadata.image-id",
    "source_ref": "source-ref",
    "width": "<attr>.image_size.width",
    "height": "<attr>.image_size.height",
    "depth": "<attr>.image_size.depth",
    "boxes": "<attr>.annotations",
    "box_confidences": "<attr>-metadata.objects",
    "class_map": "<attr>-metadata.class-map",
    "label_source": "<attr>-metadata.label-source",
    "creation_date": "<attr>-metadata.creation-date",
    "job_name": "<attr>-metadata.job-name",
    "iteration": "<attr>-metadata.iteration",
    "model_version": "<attr>-metadata.model-version",
    "threshold": "<attr>-metadata.threshold",
    "image_confidence": "<attr>-metadata.image-confidence",
    "worker_ids": "<attr>-metadata.worker-ids",
    "time_spent_seconds": "<attr>-metadata.time-spent-seconds",
}


def _describe_validation_error(exc: ValidationError, field_names: dict[str, str] | None = None) -> str:
    """One part per problem: ``field.path: message`` (top-level fields renamed via ``field_names``)."""
    names = field_names or {}
    problems = []
    for error in exc.errors():
        location = [str(part) for part in error["loc"]]
        if location:
            location[0] = names.get(location[0], location[0])
        problems.append(f"{'.'.join(location) or '<root>'}: {error['msg']}")
    return "; ".join(problems)
