"""RegisterPool / AddNewArrivalsToPool: pending images → new pool shards; the iteration context.

The run must hold the active-run lock (a resumed run takes it back). Iteration 0
snapshots the validated configuration (``config/labeling.json`` over the environment's
``LABELING_DEFAULTS``) at ``runs/<run>/config.json`` and creates the run's state item
(human budget). Every iteration moves the images registered since into new
pool shards ``pool/i<NNNN>-<nnnnn>.jsonl`` (at most ``POOL_SHARD_LINES`` lines) and takes
them out of the pending index, subtracting them from ``COUNTER/REGISTERED`` (which
therefore counts images registered and not yet in a pool). A retried call finds the
shards it already wrote and only finishes clearing their images.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from boxloop.config import LabelingConfig
from boxloop.models import ImageRecord
from lambdas.adapters.documents import read_document, read_labeling_config, write_document
from lambdas.adapters.registry import clear_pending, query_pending
from lambdas.adapters.runs import claim_active_run, create_run_state, set_run_status
from lambdas.adapters.s3_store import key_exists, list_keys, write_jsonl
from lambdas.loop.events import RegisterPoolEvent
from lambdas.loop.run_data import (
    PoolIndex,
    iter_jsonl,
    pool_index_key,
    read_pool_index,
    read_run_config,
)
from lambdas.loop.run_layout import POOL_SHARD_LINES, RunLayout, iteration_label

TRAINING_MODEL_ENV = "TRAINING_MODEL"
TRAINING_MAX_SECONDS_ENV = "TRAINING_MAX_SECONDS"
DEFAULT_TRAINING_MODEL = "centernet-effnet-lite0"
DEFAULT_TRAINING_MAX_SECONDS = 3600
JOB_TOKEN_LENGTH = 6
"""Hex digits of the per-execution token in job names (run ids ≤ 44 characters keep names ≤ 63)."""

logger = Logger()
metrics = Metrics()
tracer = Tracer()


class PoolUpdate(BaseModel):
    """What one call added to the pool."""

    new_shards: list[str]
    new_images: int
    cleared: int
    pool_images: int


def job_token(execution_name: str) -> str:
    """A short token that differs per execution, so a resumed run's job names never collide with old ones."""
    return hashlib.sha256(execution_name.encode()).hexdigest()[:JOB_TOKEN_LENGTH]


def run_config(event: RegisterPoolEvent) -> LabelingConfig:
    """Iteration 0: validate the uploaded configuration and snapshot it; later: the snapshot."""
    layout = event.layout
    if event.iteration > 0 and read_document(layout.bucket, layout.config) is not None:
        return read_run_config(layout)
    config = read_labeling_config(event.bucket, event.config_key)
    write_document(layout.bucket, layout.config, config.model_dump_json(indent=2))
    return config


def _chunks(records: Iterable[ImageRecord], size: int) -> Iterable[list[ImageRecord]]:
    chunk: list[ImageRecord] = []
    for record in records:
        chunk.append(record)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def add_pending_to_pool(layout: RunLayout, iteration: int) -> PoolUpdate:
    """Write the pending images into new pool shards of ``iteration`` and clear them from the pending index."""
    existing_keys = list(list_keys(layout.bucket, layout.pool_shards_of(iteration)))
    shards = dict(read_pool_index(layout).shards)
    already_written: set[str] = set()
    for key in existing_keys:
        ids = [record.image_id for record in iter_jsonl(layout.bucket, key, ImageRecord)]
        already_written.update(ids)
        shards[key] = len(ids)

    retried_ids: list[str] = []

    def new_arrivals() -> Iterable[ImageRecord]:
        for record in query_pending():
            if record.image_id in already_written:
                retried_ids.append(record.image_id)
            else:
                already_written.add(record.image_id)
                yield record

    new_shards: list[str] = []
    new_images = 0
    cleared = 0
    for number, chunk in enumerate(_chunks(new_arrivals(), POOL_SHARD_LINES), start=len(existing_keys)):
        key = layout.pool_shard(iteration, number)
        write_jsonl(layout.bucket, key, (record.model_dump_json() for record in chunk))
        shards[key] = len(chunk)
        write_document(layout.bucket, pool_index_key(layout), PoolIndex(shards=shards).model_dump_json(indent=1))
        cleared += clear_pending(record.image_id for record in chunk)
        new_shards.append(key)
        new_images += len(chunk)
    cleared += clear_pending(retried_ids)
    write_document(layout.bucket, pool_index_key(layout), PoolIndex(shards=shards).model_dump_json(indent=1))
    return PoolUpdate(new_shards=new_shards, new_images=new_images, cleared=cleared, pool_images=sum(shards.values()))


def previous_model_uri(layout: RunLayout, iteration: int) -> str | None:
    """The newest earlier iteration's trained ``model.tar.gz`` (recorded by ComputeThreshold), if any."""
    for earlier in range(iteration - 1, 0, -1):
        raw = read_document(layout.bucket, layout.model_record(earlier))
        if raw is None:
            continue
        artifact_key = json.loads(raw)["model_artifact_key"]
        if key_exists(layout.bucket, artifact_key):
            return layout.uri(artifact_key)
    return None


def iteration_context(
    layout: RunLayout, iteration: int, execution_name: str, config: LabelingConfig, warm_start_uri: str | None
) -> dict:
    """``$.iteration``: what the later states of this iteration read (docs/stack.md)."""
    label = iteration_label(iteration)
    token = job_token(execution_name)
    uris = {
        "pool": layout.uri(layout.pool_prefix),
        "train": layout.uri(layout.training_channel(iteration, "train")),
        "validation": layout.uri(layout.training_channel(iteration, "validation")),
        "model_output": layout.uri(layout.model_output(iteration)),
        "inference": layout.uri(layout.inference(iteration)),
    }
    if warm_start_uri is not None:
        uris["warm_start"] = warm_start_uri
    return {
        "number": iteration,
        "label": label,
        "job_token": token,
        "uris": uris,
        "keys": {
            "pool": layout.pool_prefix,
            "inference": layout.inference(iteration),
            "tasks": layout.tasks(iteration),
            "threshold": layout.threshold(iteration),
            "metrics": layout.metrics(iteration),
        },
        "hyperparameters": {
            "classes": json.dumps(config.classes),
            "label_attribute": config.label_attribute,
            "max_seconds": str(int(os.environ.get(TRAINING_MAX_SECONDS_ENV, DEFAULT_TRAINING_MAX_SECONDS))),
            "model": os.environ.get(TRAINING_MODEL_ENV, DEFAULT_TRAINING_MODEL),
            "model_version": f"{layout.run_id}-i{label}-{token}-train",
        },
        "human_timeout_seconds": config.workforce.batch_timeout_seconds,
    }


class ActiveRunConflict(RuntimeError):
    """Another run holds the active-run lock; this one may not go on (resume it after that run ends)."""


def hold_active_run(run_id: str) -> None:
    """Make sure ``run_id`` holds the active-run lock (a resumed run takes it back after RecordFailure released it)."""
    holder = claim_active_run(run_id)
    if holder.run_id != run_id:
        raise ActiveRunConflict(f"run {holder.run_id} is active; run {run_id} can resume once it has finished")


def register_pool(event: RegisterPoolEvent) -> dict:
    """Load the run's configuration, add the pending images to the pool, return the iteration context."""
    layout = event.layout
    hold_active_run(event.run_id)
    config = run_config(event)
    if event.iteration == 0:
        create_run_state(event.run_id, config.human_budget_seconds)
    else:
        set_run_status(event.run_id, "running")
    update = add_pending_to_pool(layout, event.iteration)
    logger.info("added pending images to the pool", extra=update.model_dump())
    metrics.add_metric(name="ImagesAddedToPool", unit=MetricUnit.Count, value=update.new_images)
    metrics.add_metric(name="PoolImages", unit=MetricUnit.Count, value=update.pool_images)
    if update.pool_images == 0:
        raise ValueError(f"run {event.run_id}: the pool is empty; no registered image is waiting")
    warm_start = previous_model_uri(layout, event.iteration) if event.iteration > 1 else None
    return iteration_context(layout, event.iteration, event.execution_name, config, warm_start)


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
@event_parser(model=RegisterPoolEvent)
def handler(event: RegisterPoolEvent, context: LambdaContext) -> dict:
    """Powertools entry point: see ``register_pool``."""
    return register_pool(event)
