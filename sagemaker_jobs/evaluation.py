"""Evaluating a trained detector: the labelling score threshold (tuned on training images), COCO mAP and
mean image IoU on validation."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel

from boxloop.models import ScoredBox
from boxloop.quality import coco_map, image_miou
from sagemaker_jobs.data import LabelledImage, PreloadedImages
from sagemaker_jobs.predictor import MIN_DECODE_SCORE, BatchPredictions, Predictor, scored_boxes

SCORE_THRESHOLD_GRID = tuple(round(value, 2) for value in np.arange(0.05, 0.75, 0.05))


class ValidationReport(BaseModel):
    """Validation metrics at the chosen labelling score threshold."""

    map50: float
    map50_95: float
    miou: float
    score_threshold: float
    images: int


def predict_preloaded(
    predictor: Predictor, data: PreloadedImages, batch_size: int, with_flip: bool
) -> BatchPredictions:
    """Predictions for every preloaded canvas, in order."""
    return BatchPredictions.concatenate(
        [
            predictor.run(data.images[start : start + batch_size], with_flip=with_flip)
            for start in range(0, data.images.shape[0], batch_size)
        ]
    )


def boxes_in_original_pixels(
    predictions: BatchPredictions, data: PreloadedImages, images: Sequence[LabelledImage], min_score: float
) -> list[list[ScoredBox]]:
    """Each image's detections (fused with the mirrored pass when present) with score ≥ ``min_score``
    in original-image pixels."""
    widths, heights = [image.width for image in images], [image.height for image in images]
    return scored_boxes(predictions.detections, data.scales, widths, heights, min_score)


def _decoded(predictor: Predictor, data: PreloadedImages, images: Sequence[LabelledImage], batch_size: int):
    results = predict_preloaded(predictor, data, batch_size, with_flip=True)
    return boxes_in_original_pixels(results, data, images, MIN_DECODE_SCORE)


def _miou_at(all_boxes: Sequence[Sequence[ScoredBox]], images: Sequence[LabelledImage], threshold: float) -> float:
    return float(
        np.mean(
            [
                image_miou([box for box in boxes if box.score >= threshold], image.boxes)
                for boxes, image in zip(all_boxes, images, strict=True)
            ]
        )
    )


def tune_score_threshold(
    predictor: Predictor, data: PreloadedImages, images: Sequence[LabelledImage], batch_size: int
) -> float:
    """The box-score threshold (from SCORE_THRESHOLD_GRID) that maximises mean image IoU on ``images``.

    Called on training images, never on the validation channel: validation images are the calibration set
    of the auto-labelling guarantee, so nothing the model uses may be fitted on them.
    """
    all_boxes = _decoded(predictor, data, images, batch_size)
    miou_by_threshold = {threshold: _miou_at(all_boxes, images, threshold) for threshold in SCORE_THRESHOLD_GRID}
    return max(miou_by_threshold, key=lambda threshold: (miou_by_threshold[threshold], -abs(threshold - 0.3)))


def evaluate(
    predictor: Predictor,
    data: PreloadedImages,
    images: Sequence[LabelledImage],
    batch_size: int,
    score_threshold: float,
) -> ValidationReport:
    """mAP over all decoded boxes and mean image IoU at ``score_threshold``. Boxes are fused with the mirrored
    pass, exactly as pool inference reports them."""
    all_boxes = _decoded(predictor, data, images, batch_size)
    keys = [str(index) for index in range(len(images))]
    mean_ap = coco_map(
        predictions=dict(zip(keys, all_boxes, strict=True)),
        references={key: image.boxes for key, image in zip(keys, images, strict=True)},
        image_sizes={key: (image.width, image.height) for key, image in zip(keys, images, strict=True)},
        class_ids=range(predictor.config.num_classes),
    )
    return ValidationReport(
        map50=mean_ap.map50,
        map50_95=mean_ap.map50_95,
        miou=_miou_at(all_boxes, images, score_threshold),
        score_threshold=score_threshold,
        images=len(images),
    )
