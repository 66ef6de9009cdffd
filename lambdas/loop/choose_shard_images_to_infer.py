"""ChooseShardImagesToInfer: one pool shard of the ChooseImagesToInfer Distributed Map (DESIGN.md "The loop").

Writes the shard's lines for the images this iteration's pool inference reads (``boxloop.inference_scope``: the
unlabelled ones and the validation images) to ``iterations/<n>/inference-input/<pool shard name>``, the batch
transform's input, so the inference output keeps the pool shard's name. A shard with nothing to infer writes
nothing. Labelled means what RouteShard excludes: in the latest manifest version, answered by people since, or
said by people to be unlabellable.
"""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from boxloop.inference_scope import images_to_infer
from boxloop.manifest import iter_jsonl_models
from boxloop.models import ImageRecord
from lambdas.adapters.storage import iter_document_lines, write_jsonl
from lambdas.loop.events import ShardEvent, ShardItem
from lambdas.loop.run_data import labelled_among, read_run_config, validation_boxes
from lambdas.observability import lambda_handler, logger, metrics


def choose_shard_images(item: ShardItem) -> dict[str, int]:
    """Write the pool shard's lines to infer; return the shard's image count and how many of them are inferred."""
    layout = item.layout
    config = read_run_config(layout)
    lines = [line for line in iter_document_lines(layout.bucket, item.shard_key) if line.strip()]
    source = f"s3://{layout.bucket}/{item.shard_key}"
    ids = [record.image_id for record in iter_jsonl_models(lines, ImageRecord, source)]
    labelled = labelled_among(layout, item.iteration, set(ids))
    validation = set(validation_boxes(layout, item.iteration, config.label_attribute))
    chosen = images_to_infer(zip(ids, lines, strict=True), labelled, validation)
    if chosen:
        write_jsonl(layout.bucket, f"{layout.inference_input(item.iteration)}{item.file_name}", chosen, scratch=True)
    counts = {"pool_images": len(lines), "images_to_infer": len(chosen)}
    metrics.add_metric(name="ImagesToInfer", unit=MetricUnit.Count, value=len(chosen))
    logger.info("chose the shard's images to infer", extra={"shard_key": item.shard_key, **counts})
    return counts


@lambda_handler
@event_parser(model=ShardEvent)
def handler(event: ShardEvent, context: LambdaContext) -> dict:
    """Powertools entry point: see ``choose_shard_images``."""
    return choose_shard_images(event.shard)
