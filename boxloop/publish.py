"""Immutable manifest versions: per-shard merges, an index with checksums, ``LATEST`` last.

One module over 400 lines on purpose: spooling, merging, indexing and the ``LATEST`` pointer are the steps of
one crash-safe publish whose invariants (precedence, checksums, write order) must be read together.

A version lives under ``runs/<run-id>/manifests/v<NNNN>/`` as ``shard-<iiiii>.jsonl``
files plus ``index.json`` (names and keys: ``boxloop.layout``). Images are partitioned by a hash of their id
(``shard_for``) and each shard is sorted by image id, so shard *i* of a new
version is the merge of shard *i* of the previous version with the new labels
that fall in shard *i*: shards merge independently (in parallel where useful)
with memory bounded by one shard.

Precedence when one image has several labels: a human or audit label beats an
auto label; among labels of the same kind the newer (iteration, then creation
date) wins; so an auto label never overrides a human one. Two different labels
of the same kind, iteration and creation date are a conflict and an error.

Everything here is deterministic: the same inputs give byte-identical shards and
index. The core functions work on lines and records; ``publish_to_directory``
writes a version to a local folder (atomically, ``LATEST`` last). Adapters do
the same against S3 with ``merge_shard``, ``build_index`` and ``dumps_index``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from boxloop.layout import INDEX_NAME, LATEST_NAME, shard_name, version_name
from boxloop.manifest import check_attribute_name, dumps_record, write_bytes_atomic
from boxloop.models import Box, HumanLabel, LabelRecord, LabelSource, Prediction

DEFAULT_SHARDS = 16

_HUMAN_RANK = {LabelSource.AUTO.value: 0, LabelSource.HUMAN.value: 1, LabelSource.AUDIT.value: 1}


class PublishError(ValueError):
    """A manifest version cannot be built or does not match its index; the message says which part."""


class ShardEntry(BaseModel):
    """One shard of a version: its file name, line count and SHA-256 of its bytes."""

    model_config = ConfigDict(frozen=True)

    name: str
    records: int = Field(ge=0)
    sha256: str


class CreatedFrom(BaseModel):
    """Checksums of what a version was built from."""

    model_config = ConfigDict(frozen=True)

    previous_index_sha256: str | None
    new_labels: int = Field(ge=0)
    new_labels_sha256: str


class VersionIndex(BaseModel):
    """``index.json`` of one manifest version."""

    model_config = ConfigDict(frozen=True)

    version: int = Field(ge=1)
    iteration: int = Field(ge=0)
    previous_version: int | None
    attribute: str
    n_shards: int = Field(ge=1)
    counts: dict[str, int]
    total: int = Field(ge=0)
    shards: list[ShardEntry]
    created_from: CreatedFrom


class ManifestEntry(NamedTuple):
    """One manifest line with what merging needs to know about it."""

    image_id: str
    label_source: str
    precedence: tuple[int, int, str]
    line: str


class MergedShard(NamedTuple):
    """The bytes of one merged shard, its index entry, and what went into it."""

    entry: ShardEntry
    data: bytes
    counts: dict[str, int]
    new_labels: int
    new_labels_sha256: str


def parse_latest(text: str | bytes) -> int:
    """The version number a ``LATEST`` pointer (``v0003``) names."""
    name = (text.decode() if isinstance(text, bytes) else text).strip()
    if len(name) < 2 or name[0] != "v" or not name[1:].isdigit():
        raise PublishError(f"LATEST must name a version like 'v0003', got {name!r}")
    return int(name[1:])


def shard_for(image_id: str, n_shards: int) -> int:
    """The shard an image belongs to: the first 8 bytes of SHA-256(image id) modulo ``n_shards``."""
    if n_shards < 1:
        raise ValueError(f"n_shards must be at least 1, got {n_shards}")
    return int.from_bytes(hashlib.sha256(image_id.encode()).digest()[:8], "big") % n_shards


def auto_label_record(
    prediction: Prediction,
    *,
    class_map: dict[str, str],
    iteration: int,
    threshold: float,
    creation_date: str,
    job_name: str,
) -> LabelRecord:
    """The manifest record that auto-labels an image with the detector's prediction."""
    if prediction.error is not None:
        raise PublishError(f"image {prediction.image_id}: cannot auto-label a failed prediction ({prediction.error})")
    if prediction.source_ref is None or prediction.width is None or prediction.height is None:
        raise PublishError(f"image {prediction.image_id}: prediction lacks source_ref, width or height")
    return LabelRecord(
        image_id=prediction.image_id,
        source_ref=prediction.source_ref,
        width=prediction.width,
        height=prediction.height,
        boxes=[
            Box(class_id=box.class_id, left=box.left, top=box.top, width=box.width, height=box.height)
            for box in prediction.boxes
        ],
        box_confidences=[box.score for box in prediction.boxes],
        class_map=class_map,
        label_source=LabelSource.AUTO,
        creation_date=creation_date,
        job_name=job_name,
        iteration=iteration,
        model_version=prediction.model_version,
        threshold=threshold,
        image_confidence=prediction.confidence,
    )


def human_label_record(
    label: HumanLabel, *, class_map: dict[str, str], iteration: int, source: LabelSource = LabelSource.HUMAN
) -> LabelRecord:
    """The manifest record for an accepted human (or audit) label, with its workers and time spent."""
    if source is LabelSource.AUTO:
        raise ValueError("a human label's source must be 'human' or 'audit'")
    return LabelRecord(
        image_id=label.image_id,
        source_ref=label.source_ref,
        width=label.width,
        height=label.height,
        boxes=label.boxes,
        box_confidences=[1.0] * len(label.boxes),
        class_map=class_map,
        label_source=source,
        creation_date=label.submitted_at.isoformat(),
        job_name=label.job_name,
        iteration=iteration,
        worker_ids=label.worker_ids,
        time_spent_seconds=label.time_spent_seconds,
    )


def entry_from_record(record: LabelRecord, attribute: str) -> ManifestEntry:
    """The merge entry (with its canonical line) for a new label record."""
    source = record.label_source.value
    precedence = (_HUMAN_RANK[source], record.iteration, record.creation_date)
    return ManifestEntry(record.image_id, source, precedence, dumps_record(record, attribute))


def entry_from_line(line: str | bytes, attribute: str, where: str) -> ManifestEntry:
    """The merge entry for a line already in a published shard (canonical, checksummed).

    Raises PublishError naming ``where`` when the line lacks the keys merging needs.
    """
    text = (line.decode() if isinstance(line, bytes) else line).rstrip("\n")
    try:
        metadata = json.loads(text)[f"{attribute}-metadata"]
        source = metadata["label-source"]
        return ManifestEntry(
            metadata["image-id"], source, (_HUMAN_RANK[source], metadata["iteration"], metadata["creation-date"]), text
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise PublishError(f"{where}: not a boxloop manifest line for attribute {attribute!r} ({exc!r})") from exc


def merge_shard(
    name: str,
    previous_lines: Iterable[str | bytes],
    previous_entry: ShardEntry | None,
    new_entries: Iterable[ManifestEntry],
    attribute: str,
) -> MergedShard:
    """Merge one shard of the previous version (sorted lines) with the new labels of that shard.

    ``previous_entry`` (from the previous index) is checked against the previous
    lines' bytes and count. New entries may come in any order and may repeat an
    identical line; the result is sorted by image id with precedence applied.
    """
    check_attribute_name(attribute)
    new_sorted = _resolve_new_entries(name, new_entries)
    new_digest = hashlib.sha256("".join(f"{entry.line}\n" for entry in new_sorted).encode()).hexdigest()
    previous = _verified_previous_entries(name, previous_lines, previous_entry, attribute)
    merged_lines: list[str] = []
    counts: Counter[str] = Counter()
    for entry in _merge_sorted(name, previous, new_sorted):
        merged_lines.append(entry.line)
        counts[entry.label_source] += 1
    data = "".join(f"{line}\n" for line in merged_lines).encode()
    return MergedShard(
        ShardEntry(name=name, records=len(merged_lines), sha256=hashlib.sha256(data).hexdigest()),
        data,
        dict(counts),
        len(new_sorted),
        new_digest,
    )


def build_index(
    *, version: int, iteration: int, attribute: str, previous: VersionIndex | None, shards: Sequence[MergedShard]
) -> VersionIndex:
    """The index of a version from its merged shards (in shard order) and the previous index."""
    counts: Counter[str] = Counter({source.value: 0 for source in LabelSource})
    for shard in shards:
        counts.update(shard.counts)
    shard_digests = "".join(shard.new_labels_sha256 for shard in shards)
    return VersionIndex(
        version=version,
        iteration=iteration,
        previous_version=previous.version if previous else None,
        attribute=attribute,
        n_shards=len(shards),
        counts=dict(sorted(counts.items())),
        total=sum(shard.entry.records for shard in shards),
        shards=[shard.entry for shard in shards],
        created_from=CreatedFrom(
            previous_index_sha256=hashlib.sha256(dumps_index(previous)).hexdigest() if previous else None,
            new_labels=sum(shard.new_labels for shard in shards),
            new_labels_sha256=hashlib.sha256(shard_digests.encode()).hexdigest(),
        ),
    )


def dumps_index(index: VersionIndex) -> bytes:
    """Deterministic bytes of ``index.json``."""
    return (json.dumps(index.model_dump(mode="json"), sort_keys=True, indent=1) + "\n").encode()


def loads_index(data: str | bytes, where: str) -> VersionIndex:
    """Parse ``index.json``; errors name ``where``."""
    try:
        return VersionIndex.model_validate_json(data)
    except ValueError as exc:
        raise PublishError(f"{where}: invalid version index: {exc}") from exc


def verify_version(index: VersionIndex, read_shard: Callable[[str], bytes]) -> None:
    """Check every shard's bytes (``read_shard(name)``) against the index's line count and SHA-256.

    Raises PublishError naming the first shard that does not match.
    """
    if len(index.shards) != index.n_shards:
        raise PublishError(
            f"version {index.version}: index lists {len(index.shards)} shards, expected {index.n_shards}"
        )
    for shard in index.shards:
        _check_shard_bytes(f"version {index.version}, {shard.name}", read_shard(shard.name), shard)


def publish_to_directory(
    manifests_dir: str | os.PathLike[str],
    *,
    iteration: int,
    new_records: Iterable[LabelRecord],
    attribute: str,
    n_shards: int = DEFAULT_SHARDS,
) -> VersionIndex:
    """Publish the next manifest version of a run under ``manifests_dir`` (``…/runs/<run>/manifests``).

    New records are spooled to per-shard files (memory stays bounded by one
    shard), each shard is merged with the previous version's shard, the version
    folder is renamed into place complete, and ``LATEST`` is written last.
    Publishing an iteration that is already published with the same new labels
    returns the existing index and changes nothing; with different labels it is
    a PublishError. ``n_shards`` applies to a run's first version; later ones
    keep the previous version's.
    """
    check_attribute_name(attribute)
    root = Path(manifests_dir)
    root.mkdir(parents=True, exist_ok=True)
    previous = read_latest_index(root)
    if previous is not None:
        if previous.attribute != attribute:
            raise PublishError(f"{root}: run manifests use attribute {previous.attribute!r}, not {attribute!r}")
        n_shards = previous.n_shards
    with tempfile.TemporaryDirectory(prefix=".staging-", dir=root) as staging_name:
        staging = Path(staging_name)
        spools = _spool_by_shard(staging, new_records, attribute, n_shards)
        version_dir = staging / "version"
        version_dir.mkdir()
        merged_shards = []
        for shard_index, spool in enumerate(spools):
            merged = _merge_spooled_shard(root, previous, shard_index, spool, attribute)
            (version_dir / merged.entry.name).write_bytes(merged.data)
            merged_shards.append(merged._replace(data=b""))
        version = previous.version + 1 if previous else 1
        index = build_index(
            version=version, iteration=iteration, attribute=attribute, previous=previous, shards=merged_shards
        )
        existing = published_version_of_iteration(previous, iteration, lambda version: read_index(root, version))
        if existing is not None:
            if existing.created_from.new_labels_sha256 != index.created_from.new_labels_sha256:
                raise PublishError(
                    f"iteration {iteration} is already published as {version_name(existing.version)} "
                    "from different labels; publish it as a new iteration instead"
                )
            return existing
        (version_dir / INDEX_NAME).write_bytes(dumps_index(index))
        _fsync_tree(version_dir)
        target = root / version_name(version)
        if target.exists():
            shutil.rmtree(target)  # left by a publish that stopped before LATEST: never visible
        os.replace(version_dir, target)
    write_bytes_atomic(root / LATEST_NAME, f"{version_name(version)}\n".encode())
    return index


def read_latest_index(manifests_dir: str | os.PathLike[str]) -> VersionIndex | None:
    """The index of the version ``LATEST`` points at, or None for a run with no version yet."""
    root = Path(manifests_dir)
    latest = root / LATEST_NAME
    if not latest.exists():
        return None
    return read_index(root, parse_latest(latest.read_bytes()))


def read_index(manifests_dir: str | os.PathLike[str], version: int) -> VersionIndex:
    """The index of one published version in a local manifests folder."""
    path = Path(manifests_dir) / version_name(version) / INDEX_NAME
    return loads_index(path.read_bytes(), str(path))


def iter_version_lines(manifests_dir: str | os.PathLike[str], index: VersionIndex) -> Iterator[bytes]:
    """Stream the lines of a local version, shard by shard."""
    folder = Path(manifests_dir) / version_name(index.version)
    for shard in index.shards:
        with open(folder / shard.name, "rb") as handle:
            yield from handle


def _resolve_new_entries(name: str, new_entries: Iterable[ManifestEntry]) -> list[ManifestEntry]:
    """New entries sorted by image id, one per image (the highest precedence), identical repeats dropped."""
    ordered = sorted(new_entries, key=lambda entry: (entry.image_id, entry.precedence, entry.line))
    resolved: list[ManifestEntry] = []
    for entry in ordered:
        if resolved and resolved[-1].image_id == entry.image_id:
            resolved[-1] = _winner(name, resolved[-1], entry)
        else:
            resolved.append(entry)
    return resolved


def _winner(name: str, current: ManifestEntry, challenger: ManifestEntry) -> ManifestEntry:
    """The label that stays for one image, by precedence; identical lines are one label."""
    if current.line == challenger.line:
        return current
    if current.precedence == challenger.precedence:
        raise PublishError(
            f"{name}: image {current.image_id} has two different {current.label_source} labels from iteration "
            f"{current.precedence[1]} created at {current.precedence[2]!r}"
        )
    return max(current, challenger, key=lambda entry: entry.precedence)


def _verified_previous_entries(
    name: str, previous_lines: Iterable[str | bytes], previous_entry: ShardEntry | None, attribute: str
) -> Iterator[ManifestEntry]:
    """Previous entries in order, checking sort order, count and checksum (when an entry is given)."""
    digest = hashlib.sha256()
    count = 0
    last_id: str | None = None
    for count, line in enumerate(previous_lines, start=1):
        raw = line if isinstance(line, bytes) else line.encode()
        digest.update(raw if raw.endswith(b"\n") else raw + b"\n")
        entry = entry_from_line(raw, attribute, f"previous {name}, line {count}")
        if last_id is not None and entry.image_id <= last_id:
            raise PublishError(f"previous {name}, line {count}: image ids are not strictly increasing")
        last_id = entry.image_id
        yield entry
    if previous_entry is not None and (count != previous_entry.records or digest.hexdigest() != previous_entry.sha256):
        raise PublishError(
            f"previous {name}: {count} lines with SHA-256 {digest.hexdigest()} do not match its index "
            f"({previous_entry.records} lines, {previous_entry.sha256})"
        )


def _merge_sorted(
    name: str, previous: Iterator[ManifestEntry], new_sorted: list[ManifestEntry]
) -> Iterator[ManifestEntry]:
    """Merge two id-sorted entry streams, applying precedence where an image is in both."""
    new_iter = iter(new_sorted)
    pending_new = next(new_iter, None)
    for old in previous:
        while pending_new is not None and pending_new.image_id < old.image_id:
            yield pending_new
            pending_new = next(new_iter, None)
        if pending_new is not None and pending_new.image_id == old.image_id:
            yield _winner(name, old, pending_new)
            pending_new = next(new_iter, None)
        else:
            yield old
    while pending_new is not None:
        yield pending_new
        pending_new = next(new_iter, None)


def _spool_by_shard(staging: Path, records: Iterable[LabelRecord], attribute: str, n_shards: int) -> list[Path]:
    """Write each record's merge entry to its shard's spool file; return the spool paths.

    A spool line is ``[image_id, label_source, rank, iteration, creation_date]``
    as JSON, a tab (JSON text never holds a raw tab), then the canonical
    manifest line, so merging does not decode whole manifest lines again.
    """
    paths = [staging / f"new-{shard_index:05d}.jsonl" for shard_index in range(n_shards)]
    with ExitStack() as stack:
        handles = [stack.enter_context(open(path, "w", encoding="utf-8")) for path in paths]
        for record in records:
            entry = entry_from_record(record, attribute)
            header = json.dumps([entry.image_id, entry.label_source, *entry.precedence])
            handles[shard_for(record.image_id, n_shards)].write(f"{header}\t{entry.line}\n")
    return paths


def _read_spool(spool: Path) -> list[ManifestEntry]:
    """The merge entries of one spool file written by ``_spool_by_shard``."""
    entries = []
    with open(spool, encoding="utf-8") as handle:
        for spool_line in handle:
            header, line = spool_line.rstrip("\n").split("\t", 1)
            image_id, label_source, rank, iteration, creation_date = json.loads(header)
            entries.append(ManifestEntry(image_id, label_source, (rank, iteration, creation_date), line))
    return entries


def _merge_spooled_shard(
    root: Path, previous: VersionIndex | None, shard_index: int, spool: Path, attribute: str
) -> MergedShard:
    """Merge one spooled shard of new labels with the same shard of the previous version."""
    name = shard_name(shard_index)
    new_entries = _read_spool(spool)
    if previous is None:
        return merge_shard(name, [], None, new_entries, attribute)
    previous_entry = previous.shards[shard_index]
    with open(root / version_name(previous.version) / previous_entry.name, "rb") as previous_handle:
        return merge_shard(name, previous_handle, previous_entry, new_entries, attribute)


def published_version_of_iteration(
    latest: VersionIndex | None, iteration: int, read_version: Callable[[int], VersionIndex]
) -> VersionIndex | None:
    """The published version built for ``iteration``, following the chain back from ``latest`` with ``read_version``."""
    index = latest
    while index is not None:
        if index.iteration == iteration:
            return index
        index = read_version(index.previous_version) if index.previous_version is not None else None
    return None


def _check_shard_bytes(where: str, data: bytes, entry: ShardEntry) -> None:
    lines = data.count(b"\n")
    digest = hashlib.sha256(data).hexdigest()
    if lines != entry.records or digest != entry.sha256:
        raise PublishError(
            f"{where}: {lines} lines with SHA-256 {digest} do not match the index "
            f"({entry.records} lines, {entry.sha256})"
        )


def _fsync_tree(folder: Path) -> None:
    """Flush every file in ``folder`` and the folder itself to disk."""
    for path in sorted(folder.iterdir()):
        with open(path, "rb") as handle:
            os.fsync(handle.fileno())
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
