"""SplitTrainValidation: the human labels → Ground Truth manifests for the ``train`` and ``validation`` channels.

Validation images must be a random sample of the pool that is never trained on
(DESIGN.md "The guarantee"). Only the random initial sample (human labels of
iteration 0, late answers included) is such a sample, so an initial-sample image is in
validation when its keyed hash ``sha256("<seed>:validation:<image id>")`` falls below
``validation_share``; the rule depends on nothing that changes, so once validation, always
validation. Every other human or audit label (chosen for uncertainty, not at random) is
trained on. Auto-labels are never trained on.
"""

from __future__ import annotations

import hashlib

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from boxloop.manifest import iter_json_objects
from boxloop.models import LabelSource
from boxloop.publish import manifest_key
from lambdas.adapters.documents import iter_document_lines
from lambdas.adapters.s3_store import write_jsonl
from lambdas.loop.events import IterationEvent
from lambdas.loop.run_data import latest_index, read_run_config
from lambdas.loop.run_layout import POOL_SHARD_LINES, RunLayout

logger = Logger()
metrics = Metrics()
tracer = Tracer()

CHANNELS = ("train", "validation")
RANDOM_SAMPLE_ITERATION = 0


def is_validation(image_id: str, seed: int, share: float) -> bool:
    """Whether an initial-sample image belongs to validation (keyed hash below ``share``)."""
    digest = hashlib.sha256(f"{seed}:validation:{image_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


def channel_of(metadata: dict, seed: int, share: float) -> str | None:
    """``train``, ``validation``, or None (auto-labels are not trained on)."""
    source = metadata["label-source"]
    if source == LabelSource.AUTO.value:
        return None
    if (
        source == LabelSource.HUMAN.value
        and metadata["iteration"] == RANDOM_SAMPLE_ITERATION
        and is_validation(metadata["image-id"], seed, share)
    ):
        return "validation"
    return "train"


class _ShardWriter:
    """Writes one channel's lines as bounded JSONL shards."""

    def __init__(self, layout: RunLayout, prefix: str) -> None:
        self._layout, self._prefix = layout, prefix
        self._lines: list[str] = []
        self.keys: list[str] = []
        self.count = 0

    def add(self, line: str) -> None:
        self._lines.append(line)
        self.count += 1
        if len(self._lines) == POOL_SHARD_LINES:
            self.flush()

    def flush(self) -> None:
        if self._lines:
            key = f"{self._prefix}shard-{len(self.keys):05d}.jsonl"
            write_jsonl(self._layout.bucket, key, self._lines, scratch=True)
            self.keys.append(key)
            self._lines = []


def split_train_validation(event: IterationEvent) -> dict:
    """Write ``training/train/`` and ``training/validation/`` shards; both must be non-empty."""
    layout = event.layout
    config = read_run_config(layout)
    index = latest_index(layout)
    if index is None:
        raise ValueError(f"run {layout.run_id} has no published manifest: nothing to train on")
    writers = {channel: _ShardWriter(layout, layout.training_channel(event.iteration, channel)) for channel in CHANNELS}
    for shard in index.shards:
        key = manifest_key(layout.run_id, index.version, shard.name)
        lines = list(iter_document_lines(layout.bucket, key))
        for (_, decoded), line in zip(iter_json_objects(lines, f"s3://{layout.bucket}/{key}"), lines, strict=True):
            channel = channel_of(decoded[f"{index.attribute}-metadata"], config.seed, config.validation_share)
            if channel is not None:
                writers[channel].add(line)
    for channel, writer in writers.items():
        writer.flush()
        if writer.count == 0:
            raise ValueError(
                f"run {layout.run_id}, iteration {event.iteration}: no human labels for the {channel} channel "
                f"(initial sample too small for validation_share {config.validation_share})"
            )
    result = {f"{channel}_images": writers[channel].count for channel in CHANNELS}
    for channel in CHANNELS:
        metrics.add_metric(name=f"{channel.capitalize()}Images", unit=MetricUnit.Count, value=writers[channel].count)
    logger.info("split the human labels", extra=result)
    return result


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
@event_parser(model=IterationEvent)
def handler(event: IterationEvent, context: LambdaContext) -> dict:
    """Powertools entry point: see ``split_train_validation``."""
    return split_train_validation(event)
