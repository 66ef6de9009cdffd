"""RouteShard: one inference shard of the RouteImages Distributed Map (DESIGN.md "The loop").

``boxloop.selection.route_for_iteration`` splits the shard's predictions at the iteration's
threshold: confident ones become auto-label candidates (``routing/auto/<shard>.jsonl``,
Prediction lines), the most uncertain others and a keyed-random audit slice of the
auto-labels become candidates for humans (``routing/candidates/<shard>.json``).
Images already labelled (in the latest manifest version: human, validation and earlier
auto-labels, read from its per-shard id lists; or answered by humans and not yet
published) are excluded. Outputs are
tagged as scratch; the Lambda returns only counts.
"""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from boxloop.models import Prediction
from boxloop.selection import RoutedCandidates, RoutingCounts, route_for_iteration
from boxloop.threshold_step import ThresholdDocument
from lambdas.adapters.storage import write_bytes, write_jsonl
from lambdas.loop.events import ShardEvent, ShardItem
from lambdas.loop.run_data import iter_jsonl, labelled_among, read_model, read_run_config
from lambdas.observability import lambda_handler, logger, metrics


def route(item: ShardItem) -> RoutingCounts:
    """Route one inference shard; write its auto-labels and candidates; return its counts."""
    layout = item.layout
    config = read_run_config(layout)
    threshold = read_model(layout, layout.threshold(item.iteration), ThresholdDocument)
    if threshold is None:
        raise FileNotFoundError(f"s3://{layout.bucket}/{layout.threshold(item.iteration)} does not exist")
    predictions = list(iter_jsonl(layout.bucket, item.shard_key, Prediction))
    excluded = labelled_among(layout, item.iteration, {p.image_id for p in predictions})
    routing = route_for_iteration(predictions, threshold.decision.threshold, excluded, config, item.iteration)
    name = item.file_name
    write_jsonl(
        layout.bucket,
        layout.routed_auto(item.iteration, name),
        (p.model_dump_json() for p in routing.auto),
        scratch=True,
    )
    routed = RoutedCandidates(
        shard_key=item.shard_key,
        candidates=routing.candidates,
        audit_candidates=routing.audit_candidates,
        failed_image_ids=routing.failed_image_ids,
        counts=routing.counts,
    )
    write_bytes(
        layout.bucket,
        layout.routed_candidates(item.iteration, name),
        routed.model_dump_json().encode(),
        "application/json",
        scratch=True,
    )
    if routing.failed_image_ids:
        logger.warning(
            "predictions failed; the images stay unlabelled",
            extra={"shard_key": item.shard_key, "failed_image_ids": routing.failed_image_ids[:20]},
        )
    for field, value in routing.counts.model_dump().items():
        metrics.add_metric(name=f"Routed{field.capitalize()}", unit=MetricUnit.Count, value=value)
    return routing.counts


@lambda_handler
@event_parser(model=ShardEvent)
def handler(event: ShardEvent, context: LambdaContext) -> dict:
    """Powertools entry point: see ``route``."""
    return route(event.shard).model_dump()
