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

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from boxloop.config import LabelingConfig
from boxloop.exports import to_coco, write_voc, write_yolo
from boxloop.layout import COCO_EXPORT, VOC_EXPORT, YOLO_EXPORT, RunLayout
from boxloop.models import HumanTaskPurpose, IterationMetrics
from boxloop.people_waves import PeopleFinish, people_finish
from boxloop.publish import VersionIndex
from boxloop.report import build_report
from boxloop.report_html import render_report_html
from boxloop.threshold import ThresholdCurvePoint
from boxloop.threshold_step import ThresholdDocument
from lambdas.adapters.notifications import notify
from lambdas.adapters.runs import answer_seconds, get_run_state, release_active_run, set_run_status
from lambdas.adapters.storage import upload_directory, write_bytes
from lambdas.loop.events import FinalizeEvent
from lambdas.loop.run_data import (
    answer_ids,
    iter_manifest_records,
    iter_tasks,
    latest_index,
    read_model,
    read_pool_index,
    read_run_config,
    unlabellable_images,
)
from lambdas.observability import lambda_handler, logger, metrics


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


def finish_by_people(
    layout: RunLayout, config: LabelingConfig, last_iteration: int, trained_iterations: int, unlabelled: int
) -> PeopleFinish:
    """``boxloop.people_waves.people_finish`` over the finishing waves' tasks and answers and the run's budget."""
    finished = waves = 0
    for iteration in range(last_iteration + 1):
        remaining = {t.image_id for t in iter_tasks(layout, iteration) if t.purpose == HumanTaskPurpose.REMAINING}
        if remaining:
            waves += 1
            finished += len(remaining & set(answer_ids(layout, layout.labels(iteration))))
    state = get_run_state(layout.run_id)
    return people_finish(
        config,
        finished=finished,
        finishing_waves=waves,
        trained_iterations=trained_iterations,
        unlabelled=unlabelled,
        budget_left=state.human_budget_seconds - state.human_seconds_used if state else 0.0,
        answer_seconds=answer_seconds(layout.run_id),
    )


def write_exports(layout: RunLayout, classes: list[str], index: VersionIndex) -> list[str]:
    """Write the COCO, YOLO and VOC exports of the version; returns the uploaded keys."""
    with tempfile.TemporaryDirectory(prefix="boxloop-exports-") as folder:
        root = Path(folder)
        coco = to_coco(iter_manifest_records(layout, index), classes)
        (root / COCO_EXPORT).parent.mkdir(parents=True)
        (root / COCO_EXPORT).write_text(json.dumps(coco))
        write_yolo(iter_manifest_records(layout, index), root / YOLO_EXPORT, classes)
        write_voc(iter_manifest_records(layout, index), root / VOC_EXPORT, classes)
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
    images_total = max(read_pool_index(layout).total, index.total)
    finish = finish_by_people(layout, config, index.iteration, len(curves), images_total - index.total)
    report = build_report(
        event.run_id,
        config,
        figures,
        iter_manifest_records(layout, index),
        threshold_curves=curves,
        images_total=images_total,
        unlabellable=unlabellable_images(layout, index.iteration),
        finish=finish,
    )
    report_html = render_report_html(report).encode()
    write_bytes(layout.bucket, layout.report_json, json.dumps(report.to_json(), indent=1).encode(), "application/json")
    write_bytes(layout.bucket, layout.report_html, report_html, "text/html; charset=utf-8")
    notified = notify(
        f"boxloop run {event.run_id} finished",
        f"{report.statement}\n\nManifest: {layout.uri(layout.manifest_version(index.version))}\n"
        f"Report: {layout.uri(layout.report_html)}\n",
    )
    set_run_status(event.run_id, "succeeded")
    released = release_active_run(event.run_id)
    metrics.add_metric(name="RunsSucceeded", unit=MetricUnit.Count, value=1)
    result = {
        "manifest_version": index.version,
        "exports": len(export_keys),
        "exports_prefix": layout.exports,
        "report_key": layout.report_html,
        "statement": report.statement,
        "notified": notified,
        "lock_released": released,
    }
    logger.info("run finished", extra=result)
    return result


@lambda_handler
@event_parser(model=FinalizeEvent)
def handler(event: FinalizeEvent, context: LambdaContext) -> dict:
    """Powertools entry point: see ``finalize``."""
    return finalize(event)
