"""Publishing a manifest version to S3 with ``boxloop.publish``: shard by shard, ``index.json``, ``LATEST`` last.

New labels are the accepted human labels not yet in the previous version (late answers
of earlier iterations included; audit tasks' labels as ``audit``) and this iteration's
auto-labels minus the images sent to humans as audit. Auto-labels are spooled to local
per-shard files, so memory stays bounded by one shard. Publishing an iteration that is
already published returns the existing version and writes nothing.
"""

from __future__ import annotations

import tempfile
from collections import defaultdict
from contextlib import ExitStack
from pathlib import Path

from boxloop.config import LabelingConfig
from boxloop.label_sources import human_label_source, kept_auto_labels
from boxloop.layout import INDEX_NAME, RunLayout, latest_key, manifest_key, shard_name, version_name
from boxloop.models import HumanTaskPurpose, LabelRecord, LabelSource, Prediction
from boxloop.publish import (
    DEFAULT_SHARDS,
    ManifestEntry,
    MergedShard,
    PublishError,
    VersionIndex,
    auto_label_record,
    build_index,
    dumps_index,
    entry_from_line,
    entry_from_record,
    human_label_record,
    merge_shard,
    published_version_of_iteration,
    shard_for,
)
from boxloop.threshold_step import ThresholdDocument
from lambdas.adapters.storage import iter_document_lines, list_keys, write_bytes
from lambdas.loop.run_data import (
    answer_ids,
    iter_jsonl,
    read_index,
    read_label,
    read_model,
    task_ids_by_purpose,
)


def version_of_iteration(layout: RunLayout, latest: VersionIndex | None, iteration: int) -> VersionIndex | None:
    """The published version built for ``iteration``, following the chain back from LATEST."""
    return published_version_of_iteration(latest, iteration, lambda version: read_index(layout, version))


def _pending_human_labels(layout: RunLayout, iteration: int, n_shards: int) -> dict[int, list[tuple[int, str]]]:
    """Shard index → (iteration answered in, image id) of every accepted human label so far."""
    by_shard: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for answered_in in range(iteration + 1):
        for image_id in answer_ids(layout, layout.labels(answered_in)):
            by_shard[shard_for(image_id, n_shards)].append((answered_in, image_id))
    return by_shard


def _spool_auto_labels(
    layout: RunLayout, iteration: int, config: LabelingConfig, audit_ids: set[str], n_shards: int, spool_dir: Path
) -> list[Path]:
    """Write this iteration's auto-label records (audit picks left out) to per-shard spool files."""
    paths = [spool_dir / f"auto-{index:05d}.jsonl" for index in range(n_shards)]
    threshold = read_model(layout, layout.threshold(iteration), ThresholdDocument)
    with ExitStack() as stack:
        handles = [stack.enter_context(open(path, "w", encoding="utf-8")) for path in paths]
        if threshold is None or threshold.decision.threshold is None:
            return paths
        for key in list_keys(layout.bucket, layout.routing_prefix(iteration, "auto")):
            for prediction in kept_auto_labels(iter_jsonl(layout.bucket, key, Prediction), audit_ids):
                record = auto_label_record(
                    prediction,
                    class_map=config.class_map,
                    iteration=iteration,
                    threshold=threshold.decision.threshold,
                    creation_date=threshold.computed_at,
                    job_name=threshold.model_version,
                )
                handles[shard_for(record.image_id, n_shards)].write(record.model_dump_json() + "\n")
    return paths


def _human_entries(
    layout: RunLayout,
    config: LabelingConfig,
    pending: list[tuple[int, str]],
    already_human: set[str],
    audit_ids_by_iteration: dict[int, set[str]],
) -> list[ManifestEntry]:
    entries = []
    for answered_in, image_id in pending:
        if image_id in already_human:
            continue
        source = human_label_source(image_id, audit_ids_by_iteration[answered_in])
        label = read_label(layout, answered_in, image_id)
        record = human_label_record(label, class_map=config.class_map, iteration=answered_in, source=source)
        entries.append(entry_from_record(record, config.label_attribute))
    return entries


def _publish_shard(
    layout: RunLayout,
    config: LabelingConfig,
    version: int,
    latest: VersionIndex | None,
    shard_index: int,
    pending_human: list[tuple[int, str]],
    audit_ids_by_iteration: dict[int, set[str]],
    auto_spool: Path,
) -> MergedShard:
    """Merge one shard of the previous version with its new labels; write the shard and its labelled-ids list."""
    attribute = config.label_attribute
    name = shard_name(shard_index)
    previous_lines: list[str] = []
    previous_entry = None
    previous_ids: set[str] = set()
    already_human: set[str] = set()
    if latest is not None:
        previous_entry = latest.shards[shard_index]
        key = manifest_key(layout.run_id, latest.version, name)
        previous_lines = list(iter_document_lines(layout.bucket, key))
        for number, line in enumerate(previous_lines, start=1):
            entry = entry_from_line(line, attribute, f"s3://{layout.bucket}/{key}, line {number}")
            previous_ids.add(entry.image_id)
            if entry.label_source != LabelSource.AUTO.value:
                already_human.add(entry.image_id)
    entries = _human_entries(layout, config, pending_human, already_human, audit_ids_by_iteration)
    with open(auto_spool, encoding="utf-8") as spool:
        entries.extend(
            entry_from_record(LabelRecord.model_validate_json(line), attribute) for line in spool if line.strip()
        )
    merged = merge_shard(name, previous_lines, previous_entry, entries, attribute)
    labelled = sorted(previous_ids | {entry.image_id for entry in entries})
    if len(labelled) != merged.entry.records:
        raise PublishError(f"{name}: {merged.entry.records} manifest lines but {len(labelled)} distinct images")
    write_bytes(layout.bucket, manifest_key(layout.run_id, version, name), merged.data, "application/jsonlines")
    write_bytes(
        layout.bucket,
        layout.labelled_ids(version, name),
        "".join(f"{image_id}\n" for image_id in labelled).encode(),
        "text/plain",
    )
    return merged._replace(data=b"")


def publish_version(
    layout: RunLayout, config: LabelingConfig, iteration: int, latest: VersionIndex | None
) -> VersionIndex:
    """Build and write the next version from ``latest``; returns its index.

    Beside each shard, ``labelled/v<NNNN>/<shard>.ids`` lists its image ids (RouteShard's exclusions).
    """
    attribute = config.label_attribute
    if latest is not None and latest.attribute != attribute:
        raise PublishError(f"run manifests use attribute {latest.attribute!r}, not {attribute!r}")
    if latest is not None and latest.iteration > iteration:
        raise PublishError(f"iteration {iteration} comes before the latest version's iteration {latest.iteration}")
    n_shards = latest.n_shards if latest else DEFAULT_SHARDS
    version = latest.version + 1 if latest else 1
    audit_ids_by_iteration = {
        answered_in: task_ids_by_purpose(layout, answered_in, HumanTaskPurpose.AUDIT)
        for answered_in in range(iteration + 1)
    }
    pending_human = _pending_human_labels(layout, iteration, n_shards)
    with tempfile.TemporaryDirectory(prefix="boxloop-publish-") as spool_name:
        spools = _spool_auto_labels(
            layout, iteration, config, audit_ids_by_iteration[iteration], n_shards, Path(spool_name)
        )
        merged_shards = [
            _publish_shard(
                layout, config, version, latest, shard_index, pending_human[shard_index], audit_ids_by_iteration, spool
            )
            for shard_index, spool in enumerate(spools)
        ]
    index = build_index(
        version=version, iteration=iteration, attribute=attribute, previous=latest, shards=merged_shards
    )
    write_bytes(layout.bucket, manifest_key(layout.run_id, version, INDEX_NAME), dumps_index(index), "application/json")
    write_bytes(layout.bucket, latest_key(layout.run_id), f"{version_name(version)}\n".encode(), "text/plain")
    return index
