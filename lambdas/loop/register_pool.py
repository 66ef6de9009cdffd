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

import json
from collections.abc import Iterable

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from boxloop.config import LabelingConfig
from boxloop.iteration_context import iteration_context
from boxloop.layout import POOL_SHARD_LINES, RunLayout
from boxloop.models import ImageRecord
from lambdas.adapters.labeling_config import read_labeling_config
from lambdas.adapters.registry import clear_pending, query_pending
from lambdas.adapters.runs import claim_active_run, create_run_state, set_run_status
from lambdas.adapters.storage import key_exists, list_keys, read_document, write_document, write_jsonl
from lambdas.environment import lambda_environment
from lambdas.loop.events import RegisterPoolEvent
from lambdas.loop.run_data import PoolIndex, iter_jsonl, read_pool_index, read_run_config
from lambdas.observability import lambda_handler, logger, metrics


class PoolUpdate(BaseModel):
    """What one call added to the pool."""

    new_shards: list[str]
    new_images: int
    cleared: int
    pool_images: int


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
        write_document(layout.bucket, layout.pool_index, PoolIndex(shards=shards).model_dump_json(indent=1))
        cleared += clear_pending(record.image_id for record in chunk)
        new_shards.append(key)
        new_images += len(chunk)
    cleared += clear_pending(retried_ids)
    write_document(layout.bucket, layout.pool_index, PoolIndex(shards=shards).model_dump_json(indent=1))
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
    environment = lambda_environment()
    return iteration_context(
        layout,
        event.iteration,
        event.execution_name,
        config,
        warm_start,
        training_model=environment.training_model,
        training_max_seconds=environment.training_max_seconds,
        training_epochs=environment.training_epochs,
        training_min_steps=environment.training_min_steps,
    )


@lambda_handler
@event_parser(model=RegisterPoolEvent)
def handler(event: RegisterPoolEvent, context: LambdaContext) -> dict:
    """Powertools entry point: see ``register_pool``."""
    return register_pool(event)
