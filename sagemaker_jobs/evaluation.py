"""Validation of a trained detector: COCO mAP, mean image IoU and the labelling score threshold."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel

from boxloop.models import ScoredBox
from boxloop.quality import coco_map, image_miou
from sagemaker_jobs.data import LabelledImage, PreloadedImages
from sagemaker_jobs.predictor import MIN_DECODE_SCORE, Predictor, RawResult, fuse_with_flip, to_scored_boxes

SCORE_THRESHOLD_GRID = tuple(round(value, 2) for value in np.arange(0.05, 0.75, 0.05))


class ValidationReport(BaseModel):
    """Validation metrics at the chosen labelling score threshold."""

    map50: float
    map50_95: float
    miou: float
    score_threshold: float
    images: int


def predict_preloaded(predictor: Predictor, data: PreloadedImages, batch_size: int, with_flip: bool) -> list[RawResult]:
    """Raw results for every preloaded canvas, in order."""
    results: list[RawResult] = []
    for start in range(0, data.images.shape[0], batch_size):
        results.extend(predictor.run(data.images[start : start + batch_size], with_flip=with_flip))
    return results


def boxes_in_original_pixels(
    results: Sequence[RawResult], data: PreloadedImages, images: Sequence[LabelledImage], min_score: float
) -> list[list[ScoredBox]]:
    """Each image's detections (fused with the mirrored pass when present) with score ≥ ``min_score``
    in original-image pixels."""
    return [
        to_scored_boxes(fuse_with_flip(result), data.scales[index].tolist(), image.width, image.height, min_score)
        for index, (result, image) in enumerate(zip(results, images, strict=True))
    ]


def evaluate(predictor: Predictor, data: PreloadedImages, images: Sequence[LabelledImage], batch_size: int) -> ValidationReport:
    """mAP over all decoded boxes; mean image IoU at the score threshold (from SCORE_THRESHOLD_GRID) that
    maximises it. Boxes are fused with the mirrored pass, exactly as pool inference reports them."""
    results = predict_preloaded(predictor, data, batch_size, with_flip=True)
    all_boxes = boxes_in_original_pixels(results, data, images, MIN_DECODE_SCORE)
    keys = [str(index) for index in range(len(images))]
    references = {key: image.boxes for key, image in zip(keys, images, strict=True)}
    mean_ap = coco_map(
        predictions=dict(zip(keys, all_boxes, strict=True)),
        references=references,
        image_sizes={key: (image.width, image.height) for key, image in zip(keys, images, strict=True)},
        class_ids=range(predictor.config.num_classes),
    )
    miou_by_threshold = {
        threshold: float(
            np.mean(
                [
                    image_miou([box for box in boxes if box.score >= threshold], image.boxes)
                    for boxes, image in zip(all_boxes, images, strict=True)
                ]
            )
        )
        for threshold in SCORE_THRESHOLD_GRID
    }
    best = max(miou_by_threshold, key=lambda threshold: (miou_by_threshold[threshold], -abs(threshold - 0.3)))
    return ValidationReport(
        map50=mean_ap.map50,
        map50_95=mean_ap.map50_95,
        miou=miou_by_threshold[best],
        score_threshold=best,
        images=len(images),
    )

