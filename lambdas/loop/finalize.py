"""Finalize: exports, report, notification, and the active-run lock released (DESIGN.md "The user's journey" 5).

From the run's latest manifest version: COCO (``exports/coco/annotations.json``), YOLO
(``exports/yolo/``) and Pascal VOC (``exports/voc/``) under ``runs/<run>/exports/``; the
report (``boxloop.report``, no ground truth on AWS) as ``report/report.json`` and
``report/report.html``. The manifest is streamed once per export; COCO needs its whole
record list in memory (it numbers images globally).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from boxloop.exports import to_coco, write_voc, write_yolo
from boxloop.models import IterationMetrics
from boxloop.publish import VersionIndex, version_name
from boxloop.report import build_report
from boxloop.threshold import ThresholdCurvePoint
from lambdas.adapters.notifications import notify
from lambdas.adapters.runs import release_active_run, set_run_status
from lambdas.adapters.s3_store import upload_directory, write_bytes
from lambdas.loop.events import FinalizeEvent
from lambdas.loop.run_data import (
    ThresholdDocument,
    iter_manifest_records,
    latest_index,
    read_model,
    read_pool_index,
    read_run_config,
)
from lambdas.loop.run_layout import RunLayout

logger = Logger()
metrics = Metrics()
tracer = Tracer()


def iteration_documents(
    layout: RunLayout, last_iteration: int
) -> tuple[list[IterationMetrics], dict[int, list[ThresholdCurvePoint]]]:
    """Every published iteration's metrics and threshold curve, up to ``last_iteration``."""
    figures, curves = [], {}
    for iteration in range(last_iteration + 1):
        metrics_doc = read_model(layout, layout.metrics(iteration), IterationMetrics)
        if metrics_doc is None:
            continue
        figures.append(metrics_doc)
        threshold = read_model(layout, layout.threshold(iteration), ThresholdDocument)
        if threshold is not None:
            curves[iteration] = threshold.decision.curve
    return figures, curves


def write_exports(layout: RunLayout, classes: list[str], index: VersionIndex) -> list[str]:
    """Write the COCO, YOLO and VOC exports of the version; returns the uploaded keys."""
    with tempfile.TemporaryDirectory(prefix="boxloop-exports-") as folder:
        root = Path(folder)
        coco = to_coco(iter_manifest_records(layout, index), classes)
        (root / "coco").mkdir()
        (root / "coco" / "annotations.json").write_text(json.dumps(coco))
        write_yolo(iter_manifest_records(layout, index), root / "yolo", classes)
        write_voc(iter_manifest_records(layout, index), root / "voc", classes)
        return upload_directory(layout.bucket, layout.exports, root)


def finalize(event: FinalizeEvent) -> dict:
    """Exports and report of the latest version; notify; mark the run succeeded; release the lock."""
    layout = event.layout
    config = read_run_config(layout)
    index = latest_index(layout)
    if index is None:
        raise ValueError(f"run {event.run_id} has no published manifest version to finalize")
    export_keys = write_exports(layout, config.classes, index)
    figures, curves = iteration_documents(layout, index.iteration)
    report = build_report(
        event.run_id,
        config,
        figures,
        iter_manifest_records(layout, index),
        threshold_curves=curves,
        images_total=max(read_pool_index(layout).total, index.total),
    )
    report_json = f"{layout.report}report.json"
    report_html = f"{layout.report}report.html"
    write_bytes(layout.bucket, report_json, json.dumps(report.to_json(), indent=1).encode(), "application/json")
    write_bytes(layout.bucket, report_html, report.to_html().encode(), "text/html; charset=utf-8")
    notified = notify(
        f"boxloop run {event.run_id} finished",
        f"{report.statement}\n\nManifest: s3://{layout.bucket}/{layout.manifests}{version_name(index.version)}/\n"
        f"Report: s3://{layout.bucket}/{report_html}\n",
    )
    set_run_status(event.run_id, "succeeded")
    released = release_active_run(event.run_id)
    metrics.add_metric(name="RunsSucceeded", unit=MetricUnit.Count, value=1)
    result = {
        "manifest_version": index.version,
        "exports": len(export_keys),
        "exports_prefix": layout.exports,
        "report_key": report_html,
        "statement": report.statement,
        "notified": notified,
        "lock_released": released,
    }
    logger.info("run finished", extra=result)
    return result


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
@event_parser(model=FinalizeEvent)
def handler(event: FinalizeEvent, context: LambdaContext) -> dict:
    """Powertools entry point: see ``finalize``."""
    return finalize(event)
