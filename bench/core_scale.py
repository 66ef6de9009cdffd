"""Core at scale: route, select and publish N synthetic pool predictions held in JSONL shards.

For each N (default 500,000 and 1,000,000) the script writes N prediction lines
in shards of 10,000 and a previous manifest version (iteration 0: human labels
for 1% of the images) to a temporary folder (not timed), then, in a fresh
process, times one iteration of the core data path:

    stream prediction shards -> route_shard per shard -> merge_candidates (folded
       shard by shard into the running global list)
    -> select_for_humans -> publish manifest version 1 (auto labels plus the
       selected images' human labels, merged shard by shard with version 0)

and prints wall time, CPU time and peak memory (``peak_rss_mib``: that process's own high-water mark), then the
time ratio of the largest to the smallest N; the figures, with date, machine and command, go to
``docs/benchmarks/core-scale.json`` (``--json``).

    .venv/bin/python bench/core_scale.py              # N = 500k and 1M
    .venv/bin/python bench/core_scale.py --records 20000 40000
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from boxloop.config import LabelingConfig
from boxloop.layout import INCOMING_PREFIX
from boxloop.manifest import iter_jsonl_models
from boxloop.models import HumanLabel, LabelRecord, LabelSource, Prediction, ScoredBox
from boxloop.publish import (
    auto_label_record,
    human_label_record,
    iter_version_lines,
    publish_to_directory,
    read_latest_index,
)
from boxloop.selection import Candidate, merge_audit_candidates, merge_candidates, route_shard, select_for_humans

ATTRIBUTE = "bounding-box"
CLASSES = [f"product-{i}" for i in range(10)]
LINES_PER_SHARD = 10_000
RECORDS_PER_MANIFEST_SHARD = 10_000
EMBEDDING_SIZE = 16
INITIAL_HUMAN_SHARE = 0.01
THRESHOLD = 0.8
SECONDS_PER_IMAGE = 20.0
CREATED = "2026-11-22T00:00:00+00:00"


def image_id(index: int) -> str:
    """The synthetic image's id (SHA-256, like a real one)."""
    return hashlib.sha256(index.to_bytes(8, "big")).hexdigest()


def prediction_lines(rng: np.random.Generator, start: int, count: int) -> Iterator[str]:
    """``count`` synthetic Prediction JSON lines: 1–6 boxes, a confidence, a unit embedding."""
    n_boxes = rng.integers(1, 7, size=count)
    confidences = rng.beta(5, 1.5, size=count)
    embeddings = rng.normal(size=(count, EMBEDDING_SIZE))
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    for offset in range(count):
        index = start + offset
        corners = rng.uniform(0, 500, size=(n_boxes[offset], 2))
        sizes = rng.uniform(8, 140, size=(n_boxes[offset], 2))
        boxes = [
            {
                "class_id": int(rng.integers(len(CLASSES))),
                "left": round(float(x), 2),
                "top": round(float(y), 2),
                "width": round(float(w), 2),
                "height": round(float(h), 2),
                "score": round(float(rng.uniform(0.3, 1.0)), 4),
            }
            for (x, y), (w, h) in zip(corners, sizes, strict=True)
        ]
        yield json.dumps(
            {
                "image_id": image_id(index),
                "source_ref": _source_ref(index),
                "width": 640,
                "height": 640,
                "boxes": boxes,
                "confidence": round(float(confidences[offset]), 4),
                "embedding": [round(v, 5) for v in embeddings[offset].tolist()],
                "model_version": "bench-model-1",
            }
        )


def _source_ref(index: int) -> str:
    return f"s3://boxloop-bench/{INCOMING_PREFIX}img-{index:07d}.jpg"


def human_label(image: str, source_ref: str, boxes: list[ScoredBox], job_name: str) -> HumanLabel:
    """A human answer that accepts the prefilled boxes."""
    return HumanLabel(
        image_id=image,
        source_ref=source_ref,
        width=640,
        height=640,
        boxes=[box.model_dump(exclude={"score"}) for box in boxes],
        worker_ids=["bench-worker"],
        time_spent_seconds=SECONDS_PER_IMAGE,
        submitted_at=datetime(2026, 11, 22, tzinfo=UTC),
        job_name=job_name,
    )


def prepare(folder: Path, n_records: int, seed: int) -> None:
    """Write the prediction shards and the previous manifest version (iteration 0)."""
    rng = np.random.default_rng(seed)
    predictions_dir = folder / "predictions"
    predictions_dir.mkdir(parents=True)
    for shard_index, start in enumerate(range(0, n_records, LINES_PER_SHARD)):
        count = min(LINES_PER_SHARD, n_records - start)
        text = "".join(f"{line}\n" for line in prediction_lines(rng, start, count))
        (predictions_dir / f"predictions-{shard_index:05d}.jsonl").write_text(text)
    config = LabelingConfig(classes=CLASSES)
    initial = [
        human_label_record(
            human_label(image_id(index), _source_ref(index), [], "bench-initial"),
            class_map=config.class_map,
            iteration=0,
        )
        for index in range(0, n_records, round(1 / INITIAL_HUMAN_SHARE))
    ]
    n_shards = math.ceil(n_records / RECORDS_PER_MANIFEST_SHARD)
    publish_to_directory(folder / "manifests", iteration=0, new_records=initial, attribute=ATTRIBUTE, n_shards=n_shards)


def run_iteration(folder: Path, seed: int) -> dict[str, float | int]:
    """The timed part: one iteration's routing, selection and publishing."""
    config = LabelingConfig(classes=CLASSES)
    class_map = config.class_map
    manifests = folder / "manifests"
    started = time.perf_counter()
    cpu_started = time.process_time()
    human_ids = _human_labelled_ids(manifests)
    tally = {"auto": 0, "selected": 0, "audit": 0}

    def iteration_records() -> Iterator[LabelRecord]:
        max_candidates = 4 * config.human_batch_size
        candidates: list[Candidate] = []
        audits: list[Candidate] = []
        for path in sorted((folder / "predictions").glob("*.jsonl")):
            with open(path, "rb") as handle:
                routing = route_shard(
                    iter_jsonl_models(handle, Prediction, str(path)),
                    threshold=THRESHOLD,
                    exclude_ids=human_ids,
                    max_candidates=max_candidates,
                    audit_size=config.audit_size,
                    seed=seed,
                )
            # Folding each shard's list into the running global lists keeps memory bounded.
            candidates = merge_candidates([candidates, routing.candidates], max_candidates)
            audits = merge_audit_candidates([audits, routing.audit_candidates], config.audit_size, seed)
            tally["auto"] += len(routing.auto)
            for prediction in routing.auto:
                yield auto_label_record(
                    prediction,
                    class_map=class_map,
                    iteration=1,
                    threshold=THRESHOLD,
                    creation_date=CREATED,
                    job_name="bench-i0001",
                )
        selection = select_for_humans(
            candidates, config.human_batch_size, config.human_budget_seconds, lambda candidate: SECONDS_PER_IMAGE
        )
        for source, chosen in ((LabelSource.HUMAN, selection.selected), (LabelSource.AUDIT, audits)):
            tally["selected" if source is LabelSource.HUMAN else "audit"] += len(chosen)
            for candidate in chosen:
                label = human_label(candidate.image_id, candidate.source_ref, candidate.prefill, "bench-i0001")
                yield human_label_record(label, class_map=class_map, iteration=1, source=source)

    index = publish_to_directory(manifests, iteration=1, new_records=iteration_records(), attribute=ATTRIBUTE)
    return {
        "seconds": time.perf_counter() - started,
        "cpu_seconds": time.process_time() - cpu_started,
        "peak_rss_mib": peak_rss_mib(),
        "auto": tally["auto"],
        "selected": tally["selected"],
        "audit": tally["audit"],
        "manifest_total": index.total,
        "manifest_shards": index.n_shards,
    }


def peak_rss_mib(status: Path = Path("/proc/self/status")) -> float:
    """This process's peak resident memory in MiB: Linux's ``VmHWM``, the high-water mark of its own address space.

    Not ``ru_maxrss``: Linux carries the parent's peak across fork and exec into it, so a child started by a parent
    that has loaded torch (the harness) reports the parent's 600 MiB. ``ru_maxrss`` is the fallback elsewhere.
    """
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _human_labelled_ids(manifests: Path) -> set[str]:
    """Image ids with a human label in the latest version (excluded from routing)."""
    index = read_latest_index(manifests)
    if index is None:
        raise SystemExit(f"{manifests}: no previous manifest version")
    ids = set()
    for line in iter_version_lines(manifests, index):
        metadata = json.loads(line)[f"{ATTRIBUTE}-metadata"]
        if metadata["label-source"] != LabelSource.AUTO.value:
            ids.add(metadata["image-id"])
    return ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, nargs="+", default=[500_000, 1_000_000])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=Path("docs/benchmarks/core-scale.json"), help="results file")
    parser.add_argument("--timed-folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.timed_folder is not None:
        print(json.dumps(run_iteration(args.timed_folder, args.seed)))
        return
    # Imported here, not at the top: the timed child process must not load the harness's torch and matplotlib,
    # whose memory would count in its peak RSS.
    from simulation.bench_run import run_header, write_json

    header = run_header("core-scale")
    results = {}
    for n_records in args.records:
        with tempfile.TemporaryDirectory(prefix="boxloop-core-scale-") as temp:
            folder = Path(temp)
            prepare(folder, n_records, args.seed)
            child = subprocess.run(
                [sys.executable, __file__, "--timed-folder", str(folder), "--seed", str(args.seed)],
                check=True,
                capture_output=True,
                text=True,
            )
        result = json.loads(child.stdout)
        results[n_records] = result
        print(
            f"N={n_records:>9,}: {result['seconds']:6.1f} s wall ({result['cpu_seconds']:.1f} s CPU), peak RSS {result['peak_rss_mib']:6.0f} MiB "
            f"(auto-labelled {result['auto']:,}, selected {result['selected']:,}, audit {result['audit']:,}, "
            f"manifest {result['manifest_total']:,} lines in {result['manifest_shards']} shards)",
            flush=True,
        )
    if len(results) > 1:
        smallest, largest = min(results), max(results)
        ratio = results[largest]["seconds"] / results[smallest]["seconds"]
        print(f"time ratio N={largest:,} / N={smallest:,} ({largest / smallest:g}x records): {ratio:.2f}x")
    write_json(args.json, {**header, "results": {str(n): result for n, result in results.items()}})
    print(f"results: {args.json}")


if __name__ == "__main__":
    main()
