"""SelectInitialSample: the random initial sample humans label first (DESIGN.md "The loop").

The sample is the ``initial_sample_size`` pool images with the smallest keyed hash
``sha256("<seed>:initial:<image id>")``: a uniform random sample, the same on every retry,
drawn by streaming the pool shards through a bounded heap.
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Iterable

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from boxloop.models import HumanTask, HumanTaskPurpose, ImageRecord
from lambdas.adapters.s3_store import write_jsonl
from lambdas.loop.events import IterationEvent
from lambdas.loop.run_data import iter_pool, read_run_config

logger = Logger()
metrics = Metrics()
tracer = Tracer()


def sample_rank(image_id: str, seed: int) -> str:
    """The keyed hash that orders images for the random initial sample."""
    return hashlib.sha256(f"{seed}:initial:{image_id}".encode()).hexdigest()


def random_sample(shards: Iterable[Iterable[ImageRecord]], size: int, seed: int) -> list[ImageRecord]:
    """The ``size`` records with the smallest ``sample_rank``, streamed over ``shards`` (iterables of records)."""
    kept: list[tuple[str, ImageRecord]] = []
    for records in shards:
        # stage one: each shard's best ``size``; stage two: the global best of those
        shard_best = heapq.nsmallest(size, ((sample_rank(r.image_id, seed), r) for r in records), key=lambda p: p[0])
        kept = heapq.nsmallest(size, kept + shard_best, key=lambda p: p[0])
    return [record for _, record in kept]


def select_initial_sample(event: IterationEvent) -> dict:
    """Write ``iterations/0000/human/tasks.jsonl`` (purpose ``initial``); returns ``tasks_key`` and ``task_count``."""
    layout = event.layout
    config = read_run_config(layout)
    sample = random_sample((records for _, records in iter_pool(layout)), config.initial_sample_size, config.seed)
    tasks = [
        HumanTask(
            image_id=record.image_id,
            source_ref=record.source_ref,
            width=record.width,
            height=record.height,
            purpose=HumanTaskPurpose.INITIAL,
        )
        for record in sample
    ]
    key = layout.tasks(event.iteration)
    write_jsonl(layout.bucket, key, (task.model_dump_json() for task in tasks))
    logger.info("drew the initial sample", extra={"tasks_key": key, "task_count": len(tasks)})
    metrics.add_metric(name="HumanTasks", unit=MetricUnit.Count, value=len(tasks))
    return {"tasks_key": key, "task_count": len(tasks)}


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
@event_parser(model=IterationEvent)
def handler(event: IterationEvent, context: LambdaContext) -> dict:
    """Powertools entry point: see ``select_initial_sample``."""
    return select_initial_sample(event)
