"""SplitTrainValidation: the human labels → Ground Truth manifests for the ``train`` and ``validation`` channels.

Streams the latest manifest version twice: first to find the initial sample's human labels and choose the
validation images among them (``boxloop.validation_split.validation_ids``: an exact, keyed-random count),
then to write each line to the channel ``channel_of`` names (auto-labels: neither) as bounded JSONL shards.
"""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from boxloop.layout import POOL_SHARD_LINES, RunLayout, manifest_key, shard_name
from boxloop.manifest import iter_json_objects
from boxloop.models import HumanTaskPurpose
from boxloop.publish import VersionIndex
from boxloop.validation_split import (
    CHANNELS,
    channel_of,
    check_channel,
    is_initial_human_label,
    validation_count,
    validation_ids,
)
from lambdas.adapters.storage import iter_document_lines, write_jsonl
from lambdas.loop.events import IterationEvent
from lambdas.loop.run_data import latest_index, read_run_config, task_ids_up_to
from lambdas.observability import lambda_handler, logger, metrics


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
            key = f"{self._prefix}{shard_name(len(self.keys))}"
            write_jsonl(self._layout.bucket, key, self._lines, scratch=True)
            self.keys.append(key)
            self._lines = []


def _manifest_lines(layout: RunLayout, index: VersionIndex):
    """Each line of the version with its metadata."""
    for shard in index.shards:
        key = manifest_key(layout.run_id, index.version, shard.name)
        lines = list(iter_document_lines(layout.bucket, key))
        for (_, decoded), line in zip(iter_json_objects(lines, f"s3://{layout.bucket}/{key}"), lines, strict=True):
            yield decoded[f"{index.attribute}-metadata"], line


def split_train_validation(event: IterationEvent) -> dict:
    """Write ``training/train/`` and ``training/validation/`` shards; both must be non-empty."""
    layout = event.layout
    config = read_run_config(layout)
    index = latest_index(layout)
    if index is None:
        raise ValueError(f"run {layout.run_id} has no published manifest: nothing to train on")
    initial_ids = task_ids_up_to(layout, event.iteration, HumanTaskPurpose.INITIAL)
    labelled_initial = (
        metadata["image-id"]
        for metadata, _ in _manifest_lines(layout, index)
        if is_initial_human_label(metadata, initial_ids)
    )
    wanted = validation_count(config)
    validation = validation_ids(labelled_initial, wanted, config.seed)
    writers = {channel: _ShardWriter(layout, layout.training_channel(event.iteration, channel)) for channel in CHANNELS}
    for metadata, line in _manifest_lines(layout, index):
        channel = channel_of(metadata, validation)
        if channel is not None:
            writers[channel].add(line)
    for channel, writer in writers.items():
        writer.flush()
        check_channel(channel, writer.count, wanted, f"run {layout.run_id}, iteration {event.iteration}")
    result = {f"{channel}_images": writers[channel].count for channel in CHANNELS}
    for channel in CHANNELS:
        metrics.add_metric(name=f"{channel.capitalize()}Images", unit=MetricUnit.Count, value=writers[channel].count)
    logger.info("split the human labels", extra=result)
    return result


@lambda_handler
@event_parser(model=IterationEvent)
def handler(event: IterationEvent, context: LambdaContext) -> dict:
    """Powertools entry point: see ``split_train_validation``."""
    return split_train_validation(event)
