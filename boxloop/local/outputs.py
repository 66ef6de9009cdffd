"""A local run's output folder, ``<out>/<run-id>/`` (and ``<out>/latest`` pointing at it).

- ``manifests/v<NNNN>/`` (shards + ``index.json``) and ``manifests/LATEST``: every published version;
- ``output.manifest``: the latest version as one Ground Truth augmented manifest;
- ``coco.json``, ``yolo/``, ``voc/``: the Finalize Lambda's exports of the latest version
  (``runs/<run>/exports/…``);
- ``config.json``: the configuration the run used (``runs/<run>/config.json``, defaults merged);
- ``iterations/<NNNN>/metrics.json`` and ``threshold.json``: each iteration's figures;
- ``quarantine/``: the reason (``*.reason.json``) of every rejected upload;
- ``failures/``: when the run failed, RecordFailure's record of why (``runs/<run>/failures/…json``) with the
  state that failed (``failed_state``, from the execution's history);
- ``report.json`` and ``report.html``: built here like Finalize builds them (``boxloop.report``), plus
  the realised quality against the known truth, which Finalize on AWS does not have;
- ``usage.json``: what the run used of the billed services (``boxloop.local.usage``), written when each
  process of the run ends (a resumed run's adds the earlier processes').
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from boxloop.config import LabelingConfig, parse_config
from boxloop.human_loop import UnlabellableAnswer
from boxloop.layout import (
    ANSWER_SUFFIX,
    COCO_EXPORT,
    LATEST_NAME,
    METRICS_NAME,
    QUARANTINE_PREFIX,
    QUARANTINE_REASON_SUFFIX,
    THRESHOLD_NAME,
    RunLayout,
    iteration_label,
    version_name,
)
from boxloop.local.usage import RunUsage
from boxloop.manifest import iter_records, write_bytes_atomic
from boxloop.models import Box, IterationMetrics, LabelRecord
from boxloop.people_waves import PeopleFinish
from boxloop.publish import iter_version_lines, read_latest_index, verify_version
from boxloop.report import RunReport, UnlabellableImage, build_report, gallery_candidates
from boxloop.report_html import render_report_html
from boxloop.run_failure import FailureRecord
from boxloop.threshold import ThresholdCurvePoint
from boxloop.threshold_step import ThresholdDocument

LATEST_LINK = "latest"
MANIFESTS_DIR = "manifests"
OUTPUT_MANIFEST = "output.manifest"
ITERATIONS_DIR = "iterations"
QUARANTINE_DIR = "quarantine"
FAILURES_DIR = "failures"
ITERATION_DOCUMENTS = (METRICS_NAME, THRESHOLD_NAME)
USAGE_FILE = "usage.json"


class OutputError(RuntimeError):
    """The run's published data in the bucket is incomplete or inconsistent; the message names the object."""


def _objects(s3: Any, bucket: str, prefix: str) -> Iterator[str]:
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            yield item["Key"]


def _download(s3: Any, bucket: str, key: str, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(target, s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def download_manifests(s3: Any, bucket: str, run_id: str, run_dir: Path) -> None:
    """Copy every published version not yet copied, then ``LATEST``."""
    prefix = RunLayout(bucket=bucket, run_id=run_id).manifests
    target = run_dir / MANIFESTS_DIR
    for key in _objects(s3, bucket, prefix):
        relative = key[len(prefix) :]
        if relative != LATEST_NAME and not (target / relative).exists():
            _download(s3, bucket, key, target / relative)
    _download(s3, bucket, RunLayout(bucket=bucket, run_id=run_id).latest, target / LATEST_NAME)


def download_run_config(s3: Any, bucket: str, run_id: str, run_dir: Path) -> LabelingConfig:
    """Copy the configuration the run used (RegisterPool's snapshot, defaults merged) as ``config.json``."""
    target = run_dir / "config.json"
    _download(s3, bucket, RunLayout(bucket=bucket, run_id=run_id).config, target)
    return parse_config(target.read_bytes())


def finalize_report_figures(s3: Any, bucket: str, run_id: str) -> dict[str, Any]:
    """The ``report.json`` Finalize wrote (without truth): its figures are the run's own."""
    key = RunLayout(bucket=bucket, run_id=run_id).report_json
    try:
        return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except s3.exceptions.NoSuchKey as exc:
        raise OutputError(f"s3://{bucket}/{key} does not exist: did the Finalize state run?") from exc


def download_iteration_documents(s3: Any, bucket: str, run_id: str, run_dir: Path) -> list[IterationMetrics]:
    """Copy each iteration's ``metrics.json`` and ``threshold.json``; returns the metrics in iteration order."""
    prefix = RunLayout(bucket=bucket, run_id=run_id).iterations
    metrics = []
    for key in _objects(s3, bucket, prefix):
        parts = key[len(prefix) :].split("/")
        if len(parts) == 2 and parts[1] in ITERATION_DOCUMENTS:
            target = run_dir / ITERATIONS_DIR / parts[0] / parts[1]
            _download(s3, bucket, key, target)
            if parts[1] == METRICS_NAME:
                metrics.append(IterationMetrics.model_validate_json(target.read_bytes()))
    return sorted(metrics, key=lambda m: m.iteration)


def read_unlabellable_images(
    s3: Any, bucket: str, run_id: str, iterations: Sequence[IterationMetrics]
) -> list[UnlabellableImage]:
    """The images labellers said cannot be labelled in ``iterations``, with their reasons."""
    layout = RunLayout(bucket=bucket, run_id=run_id)
    images = []
    for metrics in iterations:
        for key in _objects(s3, bucket, layout.unlabellable(metrics.iteration)):
            if key.endswith(ANSWER_SUFFIX):
                answer = UnlabellableAnswer.model_validate_json(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
                images.append(UnlabellableImage.of(answer, metrics.iteration))
    return images


def download_quarantine_reasons(s3: Any, bucket: str, run_dir: Path) -> list[Path]:
    """Copy the reason of every quarantined upload; returns the local paths."""
    paths = []
    for key in _objects(s3, bucket, QUARANTINE_PREFIX):
        if key.endswith(QUARANTINE_REASON_SUFFIX):
            path = run_dir / QUARANTINE_DIR / key[len(QUARANTINE_PREFIX) :]
            _download(s3, bucket, key, path)
            paths.append(path)
    return paths


def download_failure_records(
    s3: Any, bucket: str, run_id: str, run_dir: Path, failed_state: str | None
) -> list[tuple[Path, FailureRecord]]:
    """Copy RecordFailure's records into ``failures/``, each with ``failed_state`` added; oldest first."""
    copied = []
    prefix = RunLayout(bucket=bucket, run_id=run_id).failures
    for key in _objects(s3, bucket, prefix):
        document = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        target = run_dir / FAILURES_DIR / key[len(prefix) :]
        target.parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(target, json.dumps(document | {"failed_state": failed_state}, indent=1).encode())
        copied.append((target, FailureRecord.model_validate(document)))
    return sorted(copied, key=lambda item: item[1].recorded_at)


def failure_summary(
    execution: Mapping[str, Any], failed_state: str | None, records: Sequence[tuple[Path, FailureRecord]]
) -> str:
    """What to tell the user about a failed execution: the state that failed and RecordFailure's cause (the
    execution's own error is shown only when no record exists, since Step Functions' final error hides it)."""
    where = f" in state {failed_state}" if failed_state else ""
    mine = [item for item in records if item[1].execution_name == execution["name"]]
    if not mine:
        error = f"{execution.get('error', '')} {execution.get('cause', '')}".strip()
        return (
            f"execution {execution['name']} ended {execution['status']}{where}: {error}\n"
            "RecordFailure wrote no failure record; continue with --resume"
        )
    path, record = mine[-1]
    iteration = f" (iteration {record.iteration})" if record.iteration is not None else ""
    lines = [f"execution {execution['name']} failed{where}{iteration}: {record.error}", f"cause: {record.cause}"]
    advice = json.loads(path.read_text()).get("advice")
    if advice:
        lines.append(f"advice: {advice}")
    resume = f"iteration {record.resume_from}" if record.resume_from is not None else "the start"
    lines.append(f"the failure record is {path}; continue with --resume (from {resume})")
    return "\n".join(lines)


def latest_records(run_dir: Path, attribute: str) -> Iterator[LabelRecord]:
    """The records of the latest local version (shards checked against its index)."""
    manifests = run_dir / MANIFESTS_DIR
    index = read_latest_index(manifests)
    if index is None:
        raise OutputError(f"{manifests}: no published manifest version")
    folder = manifests / version_name(index.version)
    verify_version(index, lambda name: (folder / name).read_bytes())
    return iter_records(iter_version_lines(manifests, index), f"{folder}", attribute)


def write_output_manifest(run_dir: Path) -> int:
    """``output.manifest``: the latest version's lines, shard by shard; returns the line count."""
    manifests = run_dir / MANIFESTS_DIR
    index = read_latest_index(manifests)
    if index is None:
        raise OutputError(f"{manifests}: no published manifest version")
    lines = [line if line.endswith(b"\n") else line + b"\n" for line in iter_version_lines(manifests, index)]
    write_bytes_atomic(run_dir / OUTPUT_MANIFEST, b"".join(lines))
    return len(lines)


def download_exports(s3: Any, bucket: str, run_id: str, run_dir: Path) -> list[Path]:
    """Copy Finalize's exports: ``coco/annotations.json`` as ``coco.json``, ``yolo/`` and ``voc/`` as they are."""
    prefix = RunLayout(bucket=bucket, run_id=run_id).exports
    paths = []
    for key in _objects(s3, bucket, prefix):
        relative = key[len(prefix) :]
        path = run_dir / ("coco.json" if relative == COCO_EXPORT else relative)
        _download(s3, bucket, key, path)
        paths.append(path)
    if run_dir / "coco.json" not in paths:
        raise OutputError(f"s3://{bucket}/{prefix}{COCO_EXPORT} does not exist: did the Finalize state run?")
    return paths


def _threshold_curves(run_dir: Path, iterations: Sequence[IterationMetrics]) -> dict[int, list[ThresholdCurvePoint]]:
    curves = {}
    for metrics in iterations:
        path = run_dir / ITERATIONS_DIR / iteration_label(metrics.iteration) / THRESHOLD_NAME
        if path.is_file():
            curves[metrics.iteration] = ThresholdDocument.model_validate_json(path.read_bytes()).decision.curve
    return curves


def _object_bytes(s3: Any, source_ref: str) -> bytes:
    parsed = urlparse(source_ref)
    return s3.get_object(Bucket=parsed.netloc, Key=parsed.path.lstrip("/"))["Body"].read()


def write_report(
    s3: Any,
    run_dir: Path,
    run_id: str,
    config: LabelingConfig,
    iterations: Sequence[IterationMetrics],
    truth: Mapping[str, Sequence[Box]],
    images_total: int,
    unlabellable: Sequence[UnlabellableImage] = (),
    finish: PeopleFinish | None = None,
) -> RunReport:
    """``report.json`` and ``report.html`` from the metrics, the latest version and the known truth.

    ``images_total`` is the one Finalize reported (the run's pool). The realised quality is
    measured only when the truth covers every labelled image.
    """
    attribute = config.label_attribute
    labelled = {record.image_id for record in latest_records(run_dir, attribute)}
    known_truth = truth if labelled <= truth.keys() else None
    gallery = [
        (record, _object_bytes(s3, record.source_ref))
        for record in gallery_candidates(latest_records(run_dir, attribute))
    ]
    report = build_report(
        run_id,
        config,
        iterations,
        latest_records(run_dir, attribute),
        threshold_curves=_threshold_curves(run_dir, iterations),
        truth=known_truth,
        images_total=images_total,
        unlabellable=unlabellable,
        finish=finish,
    )
    write_bytes_atomic(run_dir / "report.json", json.dumps(report.to_json(), indent=1).encode())
    write_bytes_atomic(run_dir / "report.html", render_report_html(report, gallery).encode())
    return report


def write_usage(run_dir: Path, usage: RunUsage) -> RunUsage:
    """Write ``usage.json``: ``usage`` plus what earlier processes of the same run wrote there; returns the total."""
    path = run_dir / USAGE_FILE
    if path.is_file():
        usage = usage.combined_with(RunUsage.model_validate_json(path.read_bytes()))
    write_bytes_atomic(path, usage.to_json().encode())
    return usage


def point_latest_at(out_dir: Path, run_id: str) -> Path:
    """Make ``<out>/latest`` a relative symlink to ``<out>/<run-id>`` (replacing any earlier one)."""
    link = out_dir / LATEST_LINK
    staging = out_dir / f".{LATEST_LINK}.{os.getpid()}"
    staging.unlink(missing_ok=True)
    staging.symlink_to(run_id, target_is_directory=True)
    os.replace(staging, link)
    return link
