"""Quality control of human labels: rules, per-class size statistics, gold images, consensus.

A human answer that breaks a rule is re-queued, never merged (DESIGN.md, "Human
work"); the initial sample fails the run when too large a share breaks rules,
as Ground Truth's does, or when nobody answered it (``check_initial_sample``).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy.optimize import linear_sum_assignment

from boxloop.config import QcConfig
from boxloop.models import Box
from boxloop.quality import boxes_to_xyxy, image_miou, iou_matrix

# Scales the median absolute deviation to a standard deviation under normality.
_MAD_TO_SIGMA = 0.6745
# Smallest spread of log area used for z-scores (about ±10% in area), so a class
# whose sample boxes all have one size does not flag every other size.
_MIN_LOG_AREA_MAD = 0.1


class HumanQualityError(RuntimeError):
    """Too many human labels failed QC; the run must stop and the message says why."""


class LogAreaStats(BaseModel):
    """Median and median absolute deviation of log box area for one class."""

    model_config = ConfigDict(frozen=True)

    count: int = Field(ge=1)
    median: float
    mad: float = Field(ge=0.0)


class ClassSizeStats(BaseModel):
    """Per-class box-size statistics for the size-outlier rule (classes with too few boxes are absent)."""

    model_config = ConfigDict(frozen=True)

    per_class: dict[int, LogAreaStats]

    @classmethod
    def from_labels(cls, box_lists: Iterable[Sequence[Box]], min_count: int = 20) -> ClassSizeStats:
        """Log-area statistics per class over accepted labels; classes with under ``min_count`` boxes are left out."""
        log_areas: dict[int, list[float]] = defaultdict(list)
        for boxes in box_lists:
            for box in boxes:
                if box.width > 0 and box.height > 0:
                    log_areas[box.class_id].append(math.log(box.width * box.height))
        per_class = {}
        for class_id, values in sorted(log_areas.items()):
            if len(values) >= min_count:
                array = np.asarray(values)
                median = float(np.median(array))
                mad = float(np.median(np.abs(array - median)))
                per_class[class_id] = LogAreaStats(count=len(values), median=median, mad=mad)
        return cls(per_class=per_class)

    def robust_z(self, box: Box) -> float | None:
        """Robust z-score of the box's log area within its class, or None without statistics for it."""
        stats = self.per_class.get(box.class_id)
        if stats is None or box.width <= 0 or box.height <= 0:
            return None
        return _MAD_TO_SIGMA * (math.log(box.width * box.height) - stats.median) / max(stats.mad, _MIN_LOG_AREA_MAD)


class WorkerGoldScore(BaseModel):
    """A worker's mean image mean-IoU on gold images (images with known answers)."""

    model_config = ConfigDict(frozen=True)

    worker_id: str
    gold_images: int = Field(ge=1)
    mean_miou: float = Field(ge=0.0, le=1.0)


def check_rules(
    boxes: Sequence[Box],
    width: int,
    height: int,
    n_classes: int,
    qc: QcConfig,
    size_stats: ClassSizeStats | None = None,
) -> list[str]:
    """Every QC rule a human answer breaks, as readable reasons (empty when it passes)."""
    reasons = []
    for number, box in enumerate(boxes, start=1):
        overshoot = max(-box.left, -box.top, box.right - width, box.bottom - height)
        if overshoot > qc.boundary_tolerance_px:
            reasons.append(
                f"box {number} (class {box.class_id}) extends {overshoot:.1f} px outside the {width}x{height} image "
                f"(tolerance {qc.boundary_tolerance_px:g} px)"
            )
        if min(box.width, box.height) < qc.min_box_side_px:
            reasons.append(
                f"box {number} (class {box.class_id}) is {box.width:.1f}x{box.height:.1f} px, "
                f"below the minimum side of {qc.min_box_side_px:g} px"
            )
        if box.class_id >= n_classes:
            reasons.append(
                f"box {number} has unknown class id {box.class_id} (the configuration has {n_classes} classes)"
            )
        z_score = size_stats.robust_z(box) if size_stats is not None else None
        if z_score is not None and abs(z_score) > qc.size_outlier_z:
            reasons.append(
                f"box {number} (class {box.class_id}) is a size outlier: robust z-score {z_score:+.1f} of log area "
                f"(limit {qc.size_outlier_z:g})"
            )
    reasons.extend(_duplicate_reasons(boxes, qc.duplicate_iou))
    return reasons


def score_workers_on_gold(answers: Iterable[tuple[str, Sequence[Box], Sequence[Box]]]) -> dict[str, WorkerGoldScore]:
    """Each worker's mean image mean-IoU over their (worker id, boxes, gold boxes) answers."""
    qualities: dict[str, list[float]] = defaultdict(list)
    for worker_id, boxes, gold_boxes in answers:
        qualities[worker_id].append(image_miou(boxes, gold_boxes))
    return {
        worker_id: WorkerGoldScore(worker_id=worker_id, gold_images=len(values), mean_miou=float(np.mean(values)))
        for worker_id, values in sorted(qualities.items())
    }


def workers_below_gold_minimum(scores: dict[str, WorkerGoldScore], qc: QcConfig) -> list[str]:
    """The workers whose gold quality is below ``qc.min_gold_quality``, sorted."""
    return sorted(worker_id for worker_id, score in scores.items() if score.mean_miou < qc.min_gold_quality)


def consolidate_answers(answers: Sequence[Sequence[Box]], match_iou: float = 0.5) -> list[Box]:
    """One consensus answer from several workers' boxes for the same image.

    Within each class, each worker's boxes are matched one-to-one (Hungarian,
    maximum total IoU) to the running consensus boxes; a pair matches when its
    IoU is at least ``match_iou``, and unmatched boxes start new consensus
    boxes. A consensus box is kept when more than half of the workers drew it;
    its coordinates are the mean of the matched boxes' edges.
    """
    if not answers:
        raise ValueError("no answers to consolidate")
    clusters_by_class: dict[int, list[list[Box]]] = defaultdict(list)
    for worker_boxes in answers:
        by_class: dict[int, list[Box]] = defaultdict(list)
        for box in worker_boxes:
            by_class[box.class_id].append(box)
        for class_id, class_boxes in by_class.items():
            _add_to_clusters(clusters_by_class[class_id], class_boxes, match_iou)
    consensus = [
        _mean_box(class_id, members)
        for class_id, clusters in clusters_by_class.items()
        for members in clusters
        if 2 * len(members) > len(answers)
    ]
    return sorted(consensus, key=lambda box: (box.class_id, box.left, box.top, box.width, box.height))


class InitialSampleQuality(BaseModel):
    """CheckHumanLabelQuality's figures for the initial sample."""

    accepted: int = Field(ge=0)
    rejected: int = Field(ge=0)
    unanswered: int = Field(ge=0)
    failed_share: float = Field(ge=0.0, le=1.0)


def check_initial_sample(accepted: int, rejected: int, sent: int, max_share: float) -> InitialSampleQuality:
    """The initial sample's QC figures; HumanQualityError when nobody answered or more than ``max_share`` failed."""
    answered = accepted + rejected
    if answered == 0:
        raise HumanQualityError(
            f"none of the {sent} initial-sample images was answered before the human step ended: "
            "check the workforce (worker portal, work team) before restarting"
        )
    initial_sample_gate(rejected, answered, max_share)
    return InitialSampleQuality(
        accepted=accepted, rejected=rejected, unanswered=max(sent - answered, 0), failed_share=rejected / answered
    )


def initial_sample_gate(n_failed: int, n_total: int, max_share: float) -> None:
    """Raise HumanQualityError when more than ``max_share`` of the initial human labels failed QC."""
    if n_total <= 0 or not 0 <= n_failed <= n_total:
        raise ValueError(f"need 0 <= n_failed <= n_total and n_total > 0, got {n_failed} of {n_total}")
    share = n_failed / n_total
    if share > max_share:
        raise HumanQualityError(
            f"{n_failed} of {n_total} initial human labels ({_percent(share)}) failed QC; "
            f"the allowed share is {_percent(max_share)}: check the workforce and instructions before restarting"
        )


def _duplicate_reasons(boxes: Sequence[Box], duplicate_iou: float) -> list[str]:
    """Reasons for pairs of same-class boxes with IoU at or above ``duplicate_iou``."""
    if len(boxes) < 2:
        return []
    ious = iou_matrix(boxes_to_xyxy(boxes), boxes_to_xyxy(boxes))
    classes = np.array([box.class_id for box in boxes])
    same_class_pairs = np.triu(classes[:, None] == classes[None, :], k=1)
    first, second = np.nonzero(same_class_pairs & (ious >= duplicate_iou))
    return [
        f"boxes {i + 1} and {j + 1} (class {boxes[i].class_id}) are near-duplicates "
        f"(IoU {ious[i, j]:.2f} >= {duplicate_iou:g})"
        for i, j in zip(first.tolist(), second.tolist(), strict=True)
    ]


def _add_to_clusters(clusters: list[list[Box]], boxes: list[Box], match_iou: float) -> None:
    """Match one worker's boxes of one class to the running consensus; unmatched boxes start clusters."""
    matched: set[int] = set()
    if clusters:
        consensus = np.array([_mean_xyxy(members) for members in clusters])
        ious = iou_matrix(boxes_to_xyxy(boxes), consensus)
        for box_index, cluster_index in zip(*linear_sum_assignment(ious, maximize=True), strict=True):
            if ious[box_index, cluster_index] >= match_iou:
                clusters[cluster_index].append(boxes[box_index])
                matched.add(int(box_index))
    clusters.extend([box] for index, box in enumerate(boxes) if index not in matched)


def _mean_xyxy(members: Sequence[Box]) -> np.ndarray:
    """The mean (x1, y1, x2, y2) of the members' edges."""
    return np.mean(boxes_to_xyxy(members), axis=0)


def _mean_box(class_id: int, members: Sequence[Box]) -> Box:
    """The box whose edges are the mean of the members' edges."""
    left, top, right, bottom = _mean_xyxy(members).tolist()
    return Box(class_id=class_id, left=left, top=top, width=right - left, height=bottom - top)


def _percent(share: float) -> str:
    return f"{share * 100:.3g}%"
