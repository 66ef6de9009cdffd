"""The one quality number: per-image class-wise matched mean IoU.

See DESIGN.md, "Quality metric". COCO mAP (``coco_map``) is reported beside it
but never drives a decision.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from pydantic import BaseModel, ConfigDict
from scipy.optimize import linear_sum_assignment

from boxloop.models import Box, ScoredBox

# Among assignments of equal total IoU, prefer the one with more overlapping
# pairs, so the score does not depend on the order boxes are listed in.
_OVERLAP_TIE_BREAK = 1e-9


class CocoMap(BaseModel):
    """COCO detection mAP, for reports only."""

    model_config = ConfigDict(frozen=True)

    map50: float
    map50_95: float


def boxes_to_xyxy(boxes: Sequence[Box]) -> np.ndarray:
    """Boxes as a float (N, 4) array of (x1, y1, x2, y2)."""
    if not boxes:
        return np.zeros((0, 4), dtype=float)
    return np.array([box.xyxy() for box in boxes], dtype=float)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of xyxy boxes ``a`` (N, 4) and ``b`` (M, 4) as an (N, M) array.

    A pair whose union is empty (two zero-area boxes) has IoU 0.
    """
    a = np.asarray(a, dtype=float).reshape(-1, 4)
    b = np.asarray(b, dtype=float).reshape(-1, 4)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    inter_w = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0.0, None)
    inter_h = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0.0, None)
    intersection = inter_w * inter_h
    union = area_a[:, None] + area_b[None, :] - intersection
    return np.divide(intersection, union, out=np.zeros_like(intersection), where=union > 0)


def matched_class_miou(ious: np.ndarray) -> float:
    """Matched mean IoU of one class from its IoU matrix (N, M), N + M ≥ 1: the one-to-one matching of largest
    total IoU (among equals, the one with more overlapping pairs), ``sum(IoU) / (N + M - n_matched)``."""
    rows, cols = linear_sum_assignment(ious + _OVERLAP_TIE_BREAK * (ious > 0), maximize=True)
    matched = ious[rows, cols]
    matched = matched[matched > 0]
    return float(matched.sum() / (ious.shape[0] + ious.shape[1] - len(matched)))


def _class_miou(predicted: np.ndarray, reference: np.ndarray) -> float:
    """Matched mean IoU of one class's xyxy boxes (at least one box on either side)."""
    return matched_class_miou(iou_matrix(predicted, reference))


def image_miou(predicted: Sequence[Box], reference: Sequence[Box]) -> float:
    """Ground Truth's mean IoU of one image's predicted boxes against its reference boxes.

    Within each class, boxes are matched one-to-one to maximise total IoU
    (Hungarian assignment). A matched pair contributes its IoU; a box left
    unmatched, or assigned only to a box it does not overlap, contributes 0 on
    its side, so the class score is ``sum(IoU) / (n_pred + n_ref - n_matched)``.
    Classes present in either set are averaged with equal weight. No boxes on
    both sides is a perfect 1.0.
    """
    class_ids = sorted({box.class_id for box in predicted} | {box.class_id for box in reference})
    if not class_ids:
        return 1.0
    scores = [
        _class_miou(
            boxes_to_xyxy([box for box in predicted if box.class_id == class_id]),
            boxes_to_xyxy([box for box in reference if box.class_id == class_id]),
        )
        for class_id in class_ids
    ]
    return float(np.mean(scores))


def mean_image_miou(pairs: Iterable[tuple[Sequence[Box], Sequence[Box]]]) -> float:
    """Mean of ``image_miou`` over (predicted, reference) pairs; raises ValueError on none."""
    scores = [image_miou(predicted, reference) for predicted, reference in pairs]
    if not scores:
        raise ValueError("mean_image_miou needs at least one (predicted, reference) pair")
    return float(np.mean(scores))


def _coco_annotation(box: Box, image_index: int, annotation_id: int) -> dict:
    return {
        "id": annotation_id,
        "image_id": image_index,
        "category_id": box.class_id,
        "bbox": [box.left, box.top, box.width, box.height],
        "area": box.width * box.height,
        "iscrowd": 0,
    }


def coco_map(
    predictions: Mapping[str, Sequence[ScoredBox]],
    references: Mapping[str, Sequence[Box]],
    image_sizes: Mapping[str, tuple[int, int]],
    class_ids: Sequence[int],
) -> CocoMap:
    """COCO mAP@0.5 and mAP@[0.5:0.95] with pycocotools' COCOeval.

    Every image in ``references`` is evaluated (an image missing from
    ``predictions`` has no detections). ``image_sizes`` maps image id to
    (width, height). Raises ValueError for a prediction on an image without a
    reference, an image without a size, a box of an unknown class, or no
    reference boxes at all (mAP is undefined then).
    """
    unknown_images = sorted(set(predictions) - set(references))
    if unknown_images:
        raise ValueError(f"predictions for images without references: {unknown_images[:5]}")
    missing_sizes = sorted(set(references) - set(image_sizes))
    if missing_sizes:
        raise ValueError(f"image_sizes lacks images: {missing_sizes[:5]}")
    known_classes = set(class_ids)
    image_index = {image_id: index for index, image_id in enumerate(sorted(references), start=1)}
    gt_annotations: list[dict] = []
    detections: list[dict] = []
    for source, boxes_by_image, out in (
        ("references", references, gt_annotations),
        ("predictions", predictions, detections),
    ):
        for image_id, boxes in boxes_by_image.items():
            for box in boxes:
                if box.class_id not in known_classes:
                    raise ValueError(f"{source}[{image_id!r}]: class_id {box.class_id} not in class_ids")
                annotation = _coco_annotation(box, image_index[image_id], len(out) + 1)
                if isinstance(box, ScoredBox):
                    annotation["score"] = box.score
                out.append(annotation)
    if not gt_annotations:
        raise ValueError("coco_map needs at least one reference box")
    if not detections:
        return CocoMap(map50=0.0, map50_95=0.0)

    with contextlib.redirect_stdout(io.StringIO()):
        ground_truth = COCO()
        ground_truth.dataset = {
            "images": [
                {"id": index, "width": image_sizes[image_id][0], "height": image_sizes[image_id][1]}
                for image_id, index in image_index.items()
            ],
            "categories": [{"id": class_id} for class_id in sorted(known_classes)],
            "annotations": gt_annotations,
        }
        ground_truth.createIndex()
        evaluation = COCOeval(ground_truth, ground_truth.loadRes(detections), iouType="bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return CocoMap(map50=float(evaluation.stats[1]), map50_95=float(evaluation.stats[0]))
