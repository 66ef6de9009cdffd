"""The batched post-processing gives the predictions the former per-image code gave, on fixed models.

The former code (decode with box voting over the whole map and one NMS per image, then flip fusion, decision certainty, flip agreement and box
scaling one image at a time through pydantic boxes) is copied here, minimally, as the reference; the product has
only the batched path. Both read the same forward outputs, so any difference is post-processing's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.nn import functional as F
from torchvision.ops import batched_nms, box_iou

from boxloop.models import ImageRecord, Prediction, ScoredBox
from boxloop.quality import image_miou
from sagemaker_jobs.data import letterbox
from sagemaker_jobs.model import OUTPUT_STRIDE, DetectorConfig, build_detector, load_model
from sagemaker_jobs.predictor import MIN_DECODE_SCORE, Predictor, serialise_batch
from sagemaker_jobs.small_objects import RELIABLE_CANVAS_SIDE
from sagemaker_jobs.targets import decode_distances

from .helpers import CLASSES, draw_scene


@dataclass(frozen=True)
class _OldDetections:
    boxes: torch.Tensor
    scores: torch.Tensor
    classes: torch.Tensor


def _old_voted_boxes(heat, distances, stride, classes, cells):
    batch, _, height, width = heat.shape
    boxes = decode_distances(distances.float(), stride).transpose(1, 2).reshape(batch, 4, height, width)
    peak_heat = torch.gather(heat.flatten(2), 1, classes[..., None].expand(-1, -1, height * width))
    peak_heat = peak_heat.view(batch, -1, 1, height, width)
    weighted = F.avg_pool2d((peak_heat * boxes[:, None]).flatten(1, 2), 3, stride=1, padding=1)
    total = F.avg_pool2d(peak_heat.flatten(1, 2), 3, stride=1, padding=1).clamp(min=1e-6)
    voted = weighted.view(batch, -1, 4, height * width) / total.view(batch, -1, 1, height * width)
    return torch.gather(voted, 3, cells[..., None, None].expand(-1, -1, 4, 1)).squeeze(-1)


def _old_decode(heatmap_logits, distances, max_detections, nms_iou) -> list[_OldDetections]:
    batch, num_classes, height, width = heatmap_logits.shape
    heat = torch.sigmoid(heatmap_logits)
    peaks = heat * (F.max_pool2d(heat, 3, stride=1, padding=1) == heat)
    scores, flat_index = peaks.flatten(1).topk(min(max_detections, num_classes * height * width), dim=1)
    classes, cells = flat_index // (height * width), flat_index % (height * width)
    boxes = _old_voted_boxes(heat, distances, OUTPUT_STRIDE, classes, cells).float()
    results = []
    for image in range(batch):
        keep = scores[image] >= MIN_DECODE_SCORE
        image_boxes, image_scores, image_classes = boxes[image][keep], scores[image][keep], classes[image][keep]
        kept = batched_nms(image_boxes, image_scores, image_classes, nms_iou)
        results.append(_OldDetections(image_boxes[kept], image_scores[kept], image_classes[kept]))
    return results


def _old_fuse(plain: _OldDetections, mirrored: _OldDetections) -> _OldDetections:
    if plain.boxes.numel() == 0 or mirrored.boxes.numel() == 0:
        return plain
    overlaps = box_iou(plain.boxes, mirrored.boxes)
    overlaps[plain.classes[:, None] != mirrored.classes[None, :]] = 0.0
    best_overlap, best = overlaps.max(dim=1)
    matched = best_overlap >= 0.5
    plain_weight, mirrored_weight = plain.scores[:, None], mirrored.scores[best][:, None]
    averaged = (plain.boxes * plain_weight + mirrored.boxes[best] * mirrored_weight) / (plain_weight + mirrored_weight)
    return _OldDetections(torch.where(matched[:, None], averaged, plain.boxes), plain.scores, plain.classes)


def _old_scored_boxes(detections: _OldDetections, scale, width, height, min_score) -> list[ScoredBox]:
    keep = detections.scores >= min_score
    boxes = detections.boxes[keep].clone()
    boxes[:, 0::2] = (boxes[:, 0::2] / scale[0]).clamp(0, width)
    boxes[:, 1::2] = (boxes[:, 1::2] / scale[1]).clamp(0, height)
    return [
        ScoredBox(
            class_id=int(class_id),
            left=round(float(x1), 2),
            top=round(float(y1), 2),
            width=round(float(x2 - x1), 2),
            height=round(float(y2 - y1), 2),
            score=round(min(max(float(score), 0.0), 1.0), 4),
        )
        for (x1, y1, x2, y2), score, class_id in zip(
            boxes.tolist(), detections.scores[keep].tolist(), detections.classes[keep].tolist(), strict=True
        )
    ]


def _old_confidence(plain: _OldDetections, mirrored: _OldDetections, threshold: float, size: int) -> float:
    kept, dropped = plain.scores[plain.scores >= threshold], plain.scores[plain.scores < threshold]
    certainty = min(
        float(kept.min()) if kept.numel() else 1.0, 1.0 - (float(dropped.max()) if dropped.numel() else 0.0)
    )
    agreement = image_miou(
        _old_scored_boxes(plain, (1.0, 1.0), size, size, threshold),
        _old_scored_boxes(mirrored, (1.0, 1.0), size, size, threshold),
    )
    kept_boxes = plain.boxes[plain.scores >= threshold]
    shorter = torch.minimum(kept_boxes[:, 2] - kept_boxes[:, 0], kept_boxes[:, 3] - kept_boxes[:, 1]).clamp(min=0.0)
    small = float((shorter / RELIABLE_CANVAS_SIDE).clamp(max=1.0).min()) if kept_boxes.numel() else 1.0
    return max(0.0, min(1.0, agreement * certainty * small))


def _old_predictions(outputs, config: DetectorConfig, batch: dict, records: list[ImageRecord]) -> list[Prediction]:
    heatmap_logits, distances, embeddings = outputs
    detections = _old_decode(heatmap_logits, distances, config.max_detections, config.nms_iou)
    size, count = float(config.image_size), len(records)
    predictions = []
    for index, record in enumerate(records):
        mirrored = detections[count + index]
        boxes = mirrored.boxes.clone()
        boxes[:, 0], boxes[:, 2] = size - mirrored.boxes[:, 2], size - mirrored.boxes[:, 0]
        plain, flipped = detections[index], _OldDetections(boxes, mirrored.scores, mirrored.classes)
        width, height = int(batch["width"][index]), int(batch["height"][index])
        predictions.append(
            Prediction(
                image_id=record.image_id,
                source_ref=record.source_ref,
                model_version=config.model_version,
                width=width,
                height=height,
                boxes=_old_scored_boxes(
                    _old_fuse(plain, flipped), batch["scale"][index].tolist(), width, height, config.score_threshold
                ),
                confidence=_old_confidence(plain, flipped, config.score_threshold, config.image_size),
                embedding=[round(value, 5) for value in embeddings[index].float().tolist()],
            )
        )
    return predictions


def _scenes(count: int, size: int, seed: int) -> tuple[torch.Tensor, dict, list[ImageRecord]]:
    """Letterboxed scenes drawn at odd original sizes (so the box scaling is exercised) and their records."""
    rng = np.random.default_rng(seed)
    canvases, scales, widths, heights, records = [], [], [], [], []
    for index in range(count):
        image, _ = draw_scene(rng, size=size)
        width, height = int(rng.integers(size, 4 * size)), int(rng.integers(size, 4 * size))
        image = image.resize((width, height))
        canvas, scale = letterbox(image, width, height, size)
        canvases.append(canvas)
        scales.append(scale)
        widths.append(width)
        heights.append(height)
        records.append(
            ImageRecord(
                image_id=f"{index:064x}",
                source_ref=f"s3://bucket/{index}.png",
                width=width,
                height=height,
                registered_at="2024-01-01T00:00:00Z",
            )
        )
    batch = {
        "scale": torch.stack(scales),
        "width": torch.tensor(widths),
        "height": torch.tensor(heights),
        "error": [""] * count,
    }
    return torch.stack(canvases), batch, records


def _random_model() -> Predictor:
    """A random-init detector whose threshold sits among its scores: dozens of boxes per image, many of them
    overlapping, so competing matches (the Hungarian fallback) and unmatched boxes both occur."""
    torch.manual_seed(11)
    config = DetectorConfig(architecture="tiny", class_names=CLASSES, image_size=64, neck_channels=16, embedding_dim=16)
    model = build_detector(config, pretrained_backbone=False)
    torch.nn.init.zeros_(model.heatmap_head[-1].bias)
    return Predictor(model.eval(), "cpu")


def _trained_model(trained_job: tuple[Path, str]) -> Predictor:
    return Predictor(load_model(trained_job[0] / "model"), "cpu")


def _assert_equivalent(new: Prediction, old: Prediction) -> None:
    assert (new.image_id, new.source_ref, new.width, new.height) == (
        old.image_id,
        old.source_ref,
        old.width,
        old.height,
    )
    assert new.model_version == old.model_version and new.error is None
    assert len(new.boxes) == len(old.boxes)
    order = lambda boxes: sorted(boxes, key=lambda box: (-box.score, box.class_id, box.left, box.top))  # noqa: E731
    for new_box, old_box in zip(order(new.boxes), order(old.boxes), strict=True):
        assert new_box.class_id == old_box.class_id
        for field in ("left", "top", "width", "height"):
            assert getattr(new_box, field) == pytest.approx(getattr(old_box, field), abs=0.0100001)
        assert new_box.score == pytest.approx(old_box.score, abs=1e-4)
    assert new.confidence == pytest.approx(old.confidence, abs=1e-4)
    assert new.embedding == pytest.approx(old.embedding, abs=1.1e-5)


@pytest.mark.parametrize("model_kind", ["trained", "random"])
def test_batched_predictions_match_the_former_per_image_code(model_kind: str, trained_job: tuple[Path, str]) -> None:
    predictor = _trained_model(trained_job) if model_kind == "trained" else _random_model()
    canvases, batch, records = _scenes(24, predictor.config.image_size, seed=5)
    outputs = predictor.forward(canvases, with_flip=True)
    if model_kind == "random":
        scores = torch.sigmoid(outputs[0]).flatten()
        threshold = round(float(scores.quantile(0.97)), 4)
        predictor.config = predictor.config.model_copy(update={"score_threshold": threshold})
    config = predictor.config
    lines = list(
        serialise_batch(
            predictor.postprocess(outputs, len(records)), batch, records, config.score_threshold, config.model_version
        )
    )
    new = [Prediction.model_validate_json(line) for line in lines]
    old = _old_predictions(outputs, config, batch, records)
    assert sum(len(prediction.boxes) for prediction in old) >= len(records)  # the comparison has boxes to compare
    for new_prediction, old_prediction in zip(new, old, strict=True):
        _assert_equivalent(new_prediction, old_prediction)
    assert len({round(prediction.confidence, 3) for prediction in old}) > 3  # confidences differ between images


@pytest.mark.parametrize("with_flip", [True, False], ids=["mirrored", "plain"])
def test_forward_passes_in_parts_give_the_predictions_of_one_pass(with_flip: bool) -> None:
    predictor = _random_model()
    canvases, batch, records = _scenes(11, predictor.config.image_size, seed=7)
    whole = predictor.forward(canvases, with_flip=with_flip)
    in_parts = predictor.forward_in_parts(canvases, forward_batch_size=4, with_flip=with_flip)  # 4 + 4 + 3
    for joined, single in zip(in_parts, whole, strict=True):
        assert joined.shape == single.shape and torch.allclose(joined, single, atol=1e-5)
    if with_flip:
        config = predictor.config
        lines = lambda size: serialise_batch(  # noqa: E731
            predictor.run(canvases, forward_batch_size=size), batch, records, config.score_threshold, "v"
        )
        for new, old in zip(lines(4), lines(None), strict=True):
            _assert_equivalent(Prediction.model_validate_json(new), Prediction.model_validate_json(old))
