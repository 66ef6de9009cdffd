"""Reading a run's data back: its configuration, pool, human answers, manifest and iteration documents.

Everything streams shard by shard; errors name the S3 key and line (``boxloop.manifest``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TypeVar

from pydantic import BaseModel

from boxloop.config import LabelingConfig
from boxloop.human_loop import GoldAnswer, UnlabellableAnswer
from boxloop.layout import ANSWER_SUFFIX, INDEX_NAME, RunLayout, answer_image_id, manifest_key
from boxloop.manifest import iter_jsonl_models, iter_records
from boxloop.models import Box, HumanLabel, HumanTask, HumanTaskPurpose, ImageRecord, LabelRecord
from boxloop.publish import VersionIndex, loads_index, parse_latest, shard_for
from boxloop.report import UnlabellableImage
from lambdas.adapters.labeling_config import read_run_labeling_config
from lambdas.adapters.storage import iter_document_lines, list_keys, read_document

ModelT = TypeVar("ModelT", bound=BaseModel)


class PoolIndex(BaseModel):
    """``runs/<run>/pool-index.json``: lines per pool shard (kept outside ``pool/``, the transform's input)."""

    shards: dict[str, int] = {}

    @property
    def total(self) -> int:
        return sum(self.shards.values())


def read_run_config(layout: RunLayout) -> LabelingConfig:
    """The configuration snapshot RegisterPool took when the run started."""
    return read_run_labeling_config(layout.bucket, layout.run_id)


def read_model(layout: RunLayout, key: str, model_cls: type[ModelT]) -> ModelT | None:
    """A JSON document as ``model_cls``, or None when absent; a bad document fails naming the key."""
    raw = read_document(layout.bucket, key)
    if raw is None:
        return None
    try:
        return model_cls.model_validate_json(raw)
    except ValueError as exc:
        raise ValueError(f"s3://{layout.bucket}/{key}: not a valid {model_cls.__name__}: {exc}") from exc


def iter_jsonl(bucket: str, key: str, model_cls: type[ModelT]) -> Iterator[ModelT]:
    """Stream one JSONL object as validated models (errors name the key and line)."""
    yield from iter_jsonl_models(iter_document_lines(bucket, key), model_cls, f"s3://{bucket}/{key}")


def read_pool_index(layout: RunLayout) -> PoolIndex:
    return read_model(layout, layout.pool_index, PoolIndex) or PoolIndex()


def iter_pool(layout: RunLayout) -> Iterator[tuple[str, Iterator[ImageRecord]]]:
    """Each pool shard's key and its records."""
    for key in list_keys(layout.bucket, layout.pool_prefix):
        yield key, iter_jsonl(layout.bucket, key, ImageRecord)


def initial_pool_shards(layout: RunLayout) -> Iterator[Iterator[ImageRecord]]:
    """The records of the pool registered at iteration 0, shard by shard (the initial sample is drawn from them)."""
    for key in list_keys(layout.bucket, layout.pool_shards_of(0)):
        yield iter_jsonl(layout.bucket, key, ImageRecord)


def answer_ids(layout: RunLayout, prefix: str) -> list[str]:
    """The image ids with an answer document under ``prefix`` (labels/, rejected/ or gold/)."""
    return [answer_image_id(key) for key in list_keys(layout.bucket, prefix) if key.endswith(ANSWER_SUFFIX)]


def read_label(layout: RunLayout, iteration: int, image_id: str) -> HumanLabel:
    key = layout.label(iteration, image_id)
    label = read_model(layout, key, HumanLabel)
    if label is None:
        raise FileNotFoundError(f"s3://{layout.bucket}/{key} does not exist")
    return label


def iter_tasks(layout: RunLayout, iteration: int) -> Iterator[HumanTask]:
    """The iteration's human tasks (none when it sent none)."""
    key = layout.tasks(iteration)
    if read_document(layout.bucket, key) is None:
        return
    yield from iter_jsonl(layout.bucket, key, HumanTask)


def task_ids_by_purpose(layout: RunLayout, iteration: int, purpose: HumanTaskPurpose) -> set[str]:
    return {task.image_id for task in iter_tasks(layout, iteration) if task.purpose == purpose}


def task_ids_up_to(layout: RunLayout, iteration: int, purpose: HumanTaskPurpose | None = None) -> set[str]:
    """The images sent to people (for ``purpose``, or any) in iterations 0 to ``iteration``."""
    return {
        task.image_id
        for earlier in range(iteration + 1)
        for task in iter_tasks(layout, earlier)
        if purpose is None or task.purpose == purpose
    }


def gold_qualities(layout: RunLayout, up_to_iteration: int) -> list[float]:
    """Every worker's gold score (mean IoU against the known answer) on every gold image so far."""
    qualities = []
    for iteration in range(up_to_iteration + 1):
        for key in list_keys(layout.bucket, layout.gold(iteration)):
            answer = read_model(layout, key, GoldAnswer)
            if answer is not None:
                qualities.extend(score.mean_miou for score in answer.scores.values())
    return qualities


def latest_index(layout: RunLayout) -> VersionIndex | None:
    """The index of the version ``LATEST`` names, or None before the first version."""
    raw = read_document(layout.bucket, layout.latest)
    if raw is None:
        return None
    return read_index(layout, parse_latest(raw))


def read_index(layout: RunLayout, version: int) -> VersionIndex:
    key = manifest_key(layout.run_id, version, INDEX_NAME)
    raw = read_document(layout.bucket, key)
    if raw is None:
        raise FileNotFoundError(f"s3://{layout.bucket}/{key} does not exist")
    return loads_index(raw, f"s3://{layout.bucket}/{key}")


def iter_manifest_records(layout: RunLayout, index: VersionIndex) -> Iterator[LabelRecord]:
    """The records of a published version (errors name the shard and line)."""
    for shard in index.shards:
        key = manifest_key(layout.run_id, index.version, shard.name)
        yield from iter_records(iter_document_lines(layout.bucket, key), f"s3://{layout.bucket}/{key}", index.attribute)


def labelled_image_ids(layout: RunLayout) -> set[str]:
    """The images the latest manifest version labels (none before the first version)."""
    index = latest_index(layout)
    return {record.image_id for record in iter_manifest_records(layout, index)} if index else set()


def unlabellable_images(layout: RunLayout, last_iteration: int) -> list[UnlabellableImage]:
    """The images labellers said cannot be labelled, with their reasons, in iterations up to ``last_iteration``."""
    images = []
    for iteration in range(last_iteration + 1):
        for key in list_keys(layout.bucket, layout.unlabellable(iteration)):
            answer = read_model(layout, key, UnlabellableAnswer) if key.endswith(ANSWER_SUFFIX) else None
            if answer is not None:
                images.append(UnlabellableImage.of(answer, iteration))
    return images


def labelled_among(layout: RunLayout, iteration: int, image_ids: set[str]) -> set[str]:
    """Which of ``image_ids`` are labelled: in the latest manifest version, or accepted by humans since; or out
    of the pool because a labeller said they cannot be labelled (``human/unlabellable/``, reported with reasons).

    The version's per-shard id lists (written by PublishManifestVersion) are read for the
    shards that can hold these images, so no manifest line is decoded here.
    """
    labelled: set[str] = set()
    for earlier in range(iteration + 1):
        for prefix in (layout.labels(earlier), layout.unlabellable(earlier)):
            labelled.update(image_id for image_id in answer_ids(layout, prefix) if image_id in image_ids)
    index = latest_index(layout)
    if index is not None:
        needed = sorted({shard_for(image_id, index.n_shards) for image_id in image_ids})
        for shard_index in needed:
            key = layout.labelled_ids(index.version, index.shards[shard_index].name)
            labelled.update(line for line in iter_document_lines(layout.bucket, key) if line in image_ids)
    return labelled


def validation_boxes(layout: RunLayout, iteration: int, attribute: str) -> dict[str, list[Box]]:
    """Image id → human boxes of this iteration's validation channel."""
    boxes: dict[str, list[Box]] = {}
    for key in list_keys(layout.bucket, layout.training_channel(iteration, "validation")):
        for record in iter_records(iter_document_lines(layout.bucket, key), f"s3://{layout.bucket}/{key}", attribute):
            boxes[record.image_id] = record.boxes
    return boxes
