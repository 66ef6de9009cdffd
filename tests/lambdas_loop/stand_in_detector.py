"""A stand-in detector for the loop tests: SageMaker's inference functions, predicting from known boxes.

``predict`` is what "the model" says about an image: for about ``CONFIDENT_SHARE`` of the
images (fixed by the image id) the true boxes with confidence 0.95, for the others shifted
boxes with confidence 0.3. The training script beside it (``stand_in_detector_train.py``)
only checks its channels and writes a model directory.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from boxloop.models import Box, ImageRecord, Prediction, ScoredBox

CONFIDENT_SHARE = 0.6


def truth_boxes(identifier: str) -> list[Box]:
    """One or two boxes per image, fixed by the image id (what careful humans draw)."""
    rng = random.Random(identifier)
    return [
        Box(class_id=rng.randrange(2), left=rng.uniform(0, 200), top=rng.uniform(0, 150), width=60, height=50)
        for _ in range(rng.randint(1, 2))
    ]


def predict(record: ImageRecord, model_version: str) -> Prediction:
    """The stand-in model's prediction for one pool image."""
    rng = random.Random(f"prediction:{record.image_id}")
    confident = rng.random() < CONFIDENT_SHARE
    shift = 0.0 if confident else 30.0
    score = 0.95 if confident else 0.3
    boxes = [
        ScoredBox(class_id=b.class_id, left=b.left + shift, top=b.top, width=b.width, height=b.height, score=score)
        for b in truth_boxes(record.image_id)
    ]
    return Prediction(
        image_id=record.image_id,
        source_ref=record.source_ref,
        width=record.width,
        height=record.height,
        boxes=boxes,
        confidence=score,
        embedding=[rng.random(), rng.random()],
        model_version=model_version,
    )


def model_fn(model_dir: str) -> dict:
    return json.loads(Path(model_dir, "model.json").read_text())


def input_fn(body: bytes, content_type: str) -> list[ImageRecord]:
    assert content_type == "application/jsonlines"
    return [ImageRecord.model_validate_json(line) for line in body.decode().splitlines() if line.strip()]


def predict_fn(records: list[ImageRecord], model: dict) -> list[Prediction]:
    return [predict(record, model["model_version"]) for record in records]


def output_fn(predictions: list[Prediction], accept: str) -> str:
    return "\n".join(prediction.model_dump_json() for prediction in predictions)
