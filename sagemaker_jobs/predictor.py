"""Batched inference: the plain and horizontally flipped pass in one forward, boxes in original pixels,
the per-image confidence and the embedding. Used by training (validation), the SageMaker handler and
the local ``predict`` command alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass

import torch
from torchvision.ops import box_iou

from boxloop.models import ImageRecord, Prediction, ScoredBox
from boxloop.quality import image_miou
from sagemaker_jobs.data import ImageSource, image_loader, normalise
from sagemaker_jobs.decode import Detections, decode_batch
from sagemaker_jobs.model import OUTPUT_STRIDE, CenterNetDetector

MIN_DECODE_SCORE = 0.02
"""Peaks below this score are never decoded (mAP evaluation uses everything above it)."""

FLIP_MATCH_IOU = 0.5
"""A mirrored-pass box this close to a plain-pass box of the same class is averaged with it."""


@dataclass(frozen=True)
class RawResult:
    """One image's detections on the canvas (all peaks ≥ MIN_DECODE_SCORE), from the plain and the
    flipped pass (mapped back to unflipped canvas coordinates; None without the flip pass), and its embedding."""

    detections: Detections
    flipped: Detections | None
    embedding: torch.Tensor


class Predictor:
    """Runs a detector on uint8 canvases in batches (AMP and channels-last on CUDA)."""

    def __init__(self, model: CenterNetDetector, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.config = model.config
        if self.device.type == "cuda":
            self.model = self.model.to(memory_format=torch.channels_last)

    @torch.inference_mode()
    def run(self, canvases: torch.Tensor, with_flip: bool = True) -> list[RawResult]:
        """Detect on uint8 canvases (B, 3, S, S); ``with_flip`` adds the mirrored pass in the same batch."""
        images = normalise(canvases.to(self.device, non_blocking=True))
        if with_flip:
            images = torch.cat([images, images.flip(-1)])
        if self.device.type == "cuda":
            images = images.contiguous(memory_format=torch.channels_last)
        autocast = torch.autocast("cuda", dtype=torch.float16) if self.device.type == "cuda" else nullcontext()
        with autocast:
            heatmap_logits, distances, embeddings = self.model(images)
        detections = decode_batch(
            heatmap_logits, distances, OUTPUT_STRIDE, self.config.max_detections, self.config.nms_iou, MIN_DECODE_SCORE
        )
        batch = canvases.shape[0]
        size = float(self.config.image_size)
        results = []
        for index in range(batch):
            flipped = None
            if with_flip:
                mirrored = detections[batch + index]
                boxes = mirrored.boxes.clone()
                boxes[:, 0], boxes[:, 2] = size - mirrored.boxes[:, 2], size - mirrored.boxes[:, 0]
                flipped = Detections(boxes, mirrored.scores, mirrored.classes)
            results.append(RawResult(detections[index], flipped, embeddings[index].float().cpu()))
        return results


def fuse_with_flip(result: RawResult) -> Detections:
    """The plain pass's detections with each box averaged (score-weighted) with its same-class match
    (IoU ≥ FLIP_MATCH_IOU) from the mirrored pass; scores and unmatched boxes are kept as they are."""
    plain, mirrored = result.detections, result.flipped
    if mirrored is None or plain.boxes.numel() == 0 or mirrored.boxes.numel() == 0:
        return plain
    overlaps = box_iou(plain.boxes, mirrored.boxes)
    overlaps[plain.classes[:, None] != mirrored.classes[None, :]] = 0.0
    best_overlap, best = overlaps.max(dim=1)
    matched = best_overlap >= FLIP_MATCH_IOU
    plain_weight = plain.scores[:, None]
    mirrored_weight = mirrored.scores[best][:, None]
    averaged = (plain.boxes * plain_weight + mirrored.boxes[best] * mirrored_weight) / (plain_weight + mirrored_weight)
    return Detections(torch.where(matched[:, None], averaged, plain.boxes), plain.scores, plain.classes)


def to_scored_boxes(
    detections: Detections, scale: Sequence[float], width: int, height: int, min_score: float
) -> list[ScoredBox]:
    """Detections with score ≥ ``min_score`` as Ground Truth boxes in original-image pixels (clipped to the image)."""
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


def decision_certainty(scores: torch.Tensor, threshold: float) -> float:
    """How clear the keep/drop decisions were: min(lowest kept score, 1 − highest dropped score).

    An image whose strongest peak fell just under the threshold (a likely
    missed object) is as uncertain as one whose weakest kept box barely passed.
    """
    kept = scores[scores >= threshold]
    dropped = scores[scores < threshold]
    lowest_kept = float(kept.min()) if kept.numel() else 1.0
    highest_dropped = float(dropped.max()) if dropped.numel() else 0.0
    return min(lowest_kept, 1.0 - highest_dropped)


def flip_agreement(result: RawResult, threshold: float, canvas_size: int) -> float:
    """Image mean IoU (``boxloop.quality.image_miou``) between the plain and the mirrored prediction."""
    if result.flipped is None:
        raise ValueError("flip agreement needs the flipped pass (run with with_flip=True)")
    canvas = (1.0, 1.0)
    plain = to_scored_boxes(result.detections, canvas, canvas_size, canvas_size, threshold)
    mirrored = to_scored_boxes(result.flipped, canvas, canvas_size, canvas_size, threshold)
    return image_miou(plain, mirrored)


def image_confidence(result: RawResult, threshold: float, canvas_size: int) -> float:
    """c(image) in [0, 1]: flip agreement times the decision certainty of the plain pass's box scores."""
    agreement = flip_agreement(result, threshold, canvas_size)
    return max(0.0, min(1.0, agreement * decision_certainty(result.detections.scores, threshold)))


def predict_records(
    predictor: Predictor,
    records: Iterable[ImageRecord | Prediction],
    batch_size: int,
    num_workers: int,
) -> Iterator[Prediction]:
    """One Prediction per input, in input order. Inputs that are already error Predictions (a bad
    input line) pass through unchanged; an unreadable image yields a Prediction with ``error`` set."""
    items = list(records)
    readable = [item for item in items if isinstance(item, ImageRecord)]
    loader = image_loader(
        [ImageSource(record.source_ref) for record in readable],
        predictor.config.image_size,
        batch_size,
        num_workers,
        pin_memory=predictor.device.type == "cuda",
    )
    predicted = iter(_predict_batches(predictor, readable, loader))
    for item in items:
        yield next(predicted) if isinstance(item, ImageRecord) else item


def _predict_batches(predictor: Predictor, records: list[ImageRecord], loader: Iterable[dict]) -> Iterator[Prediction]:
    config = predictor.config
    offset = 0
    for batch in loader:
        batch_records = records[offset : offset + len(batch["error"])]
        offset += len(batch_records)
        results = predictor.run(batch["image"], with_flip=True)
        for row, (record, result) in enumerate(zip(batch_records, results, strict=True)):
            common = {"image_id": record.image_id, "source_ref": record.source_ref, "model_version": config.model_version}
            if batch["error"][row]:
                yield Prediction(**common, width=record.width, height=record.height, error=batch["error"][row])
                continue
            width, height = int(batch["width"][row]), int(batch["height"][row])
            yield Prediction(
                **common,
                width=width,
                height=height,
                boxes=to_scored_boxes(
                    fuse_with_flip(result), batch["scale"][row].tolist(), width, height, config.score_threshold
                ),
                confidence=image_confidence(result, config.score_threshold, config.image_size),
                embedding=[round(value, 5) for value in result.embedding.tolist()],
            )
