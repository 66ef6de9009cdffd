"""A trained detector scored on held-out images with known truth: COCO mAP and mean image IoU."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import BaseModel

from boxloop.models import ScoredBox
from boxloop.quality import coco_map, image_miou
from sagemaker_jobs.data import LabelledImage, preload
from sagemaker_jobs.evaluation import boxes_in_original_pixels, predict_preloaded
from sagemaker_jobs.model import load_model
from sagemaker_jobs.predictor import MIN_DECODE_SCORE, BatchPredictions, Predictor
from simulation.corpus_images import CorpusImage


class HeldOutScore(BaseModel):
    """Held-out figures of one model."""

    images: int
    map50: float
    map50_95: float
    miou: float
    score_threshold: float
    seconds_per_image: float


@dataclass(frozen=True)
class HeldOutPredictions:
    """Every held-out image's detections down to the decoding floor, and the model's raw results."""

    boxes: list[list[ScoredBox]]
    raw: BatchPredictions
    score_threshold: float
    image_size: int
    seconds_per_image: float


def labelled_images(images: Sequence[CorpusImage]) -> list[LabelledImage]:
    """``images`` as the training code's labelled images, with their true boxes."""
    return [
        LabelledImage(
            source_ref=str(i.path), base_dir=i.path.parent, width=i.width, height=i.height, boxes=list(i.truth)
        )
        for i in images
    ]


def predict_held_out(model_dir: Path, images: Sequence[LabelledImage], threads: int) -> HeldOutPredictions:
    """Run the model (plain + mirrored pass, as pool inference does) over ``images``."""
    model = load_model(model_dir)
    predictor = Predictor(model, "cpu")
    data = preload(images, model.config.image_size, num_workers=threads)
    started = time.monotonic()
    raw = predict_preloaded(predictor, data, 32, with_flip=True)
    seconds_per_image = (time.monotonic() - started) / max(len(images), 1)
    return HeldOutPredictions(
        boxes=boxes_in_original_pixels(raw, data, images, MIN_DECODE_SCORE),
        raw=raw,
        score_threshold=model.config.score_threshold,
        image_size=model.config.image_size,
        seconds_per_image=seconds_per_image,
    )


def score_held_out(predicted: HeldOutPredictions, images: Sequence[LabelledImage], n_classes: int) -> HeldOutScore:
    """COCO mAP over all decoded boxes and mean image IoU at the model's own score threshold."""
    keys = [str(index) for index in range(len(images))]
    mean_ap = coco_map(
        dict(zip(keys, predicted.boxes, strict=True)),
        {key: image.boxes for key, image in zip(keys, images, strict=True)},
        {key: (image.width, image.height) for key, image in zip(keys, images, strict=True)},
        range(n_classes),
    )
    kept = [[box for box in boxes if box.score >= predicted.score_threshold] for boxes in predicted.boxes]
    return HeldOutScore(
        images=len(images),
        map50=mean_ap.map50,
        map50_95=mean_ap.map50_95,
        miou=float(np.mean([image_miou(boxes, image.boxes) for boxes, image in zip(kept, images, strict=True)])),
        score_threshold=predicted.score_threshold,
        seconds_per_image=predicted.seconds_per_image,
    )
