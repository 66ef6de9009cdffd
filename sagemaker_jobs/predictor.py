"""Batched inference: the plain and horizontally flipped pass in one forward, then every per-image number
(flip fusion, decision certainty, flip agreement, confidence, boxes in original pixels) as tensor operations
for the whole batch on the model's device. Used by training (validation), the SageMaker handler and the local
``predict`` command alike.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass

import torch

from boxloop.models import Box, ImageRecord, Prediction, ScoredBox
from boxloop.quality import image_miou
from sagemaker_jobs.data import ImageSource, image_loader, normalise
from sagemaker_jobs.decode import Detections, decode_batch, pairwise_iou
from sagemaker_jobs.model import OUTPUT_STRIDE, CenterNetDetector
from sagemaker_jobs.small_objects import small_object_factor

MIN_DECODE_SCORE = 0.02
"""Peaks below this score are never decoded (mAP evaluation uses everything above it)."""

FLIP_MATCH_IOU = 0.5
"""A mirrored-pass box this close to a plain-pass box of the same class is averaged with it."""

_BOX_FIELDS = ("class_id", "left", "top", "width", "height", "score")

NO_ERROR_LINE_END = '"error":null}'
"""How every Prediction JSON line without an error ends (ours and pydantic's serialisation alike)."""


@dataclass(frozen=True)
class BatchPredictions:
    """A batch's results on the model's device: the plain pass's detections fused with the mirrored pass
    (canvas pixels; scores are the plain pass's), the per-image flip agreement, decision certainty and
    confidence at the model's score threshold (None without the mirrored pass), and the embeddings (B, D)."""

    detections: Detections
    flip_agreement: torch.Tensor | None
    decision_certainty: torch.Tensor
    confidence: torch.Tensor | None
    embeddings: torch.Tensor

    def select(self, rows: Sequence[int]) -> BatchPredictions:
        """The predictions of the images at ``rows``, in that order."""
        index = torch.as_tensor(list(rows), dtype=torch.long, device=self.embeddings.device)
        d = self.detections
        pick = lambda values: None if values is None else values[index]  # noqa: E731
        return BatchPredictions(
            Detections(d.boxes[index], d.scores[index], d.classes[index], d.valid[index]),
            pick(self.flip_agreement),
            self.decision_certainty[index],
            pick(self.confidence),
            self.embeddings[index],
        )

    @staticmethod
    def concatenate(parts: Sequence[BatchPredictions]) -> BatchPredictions:
        """One BatchPredictions of ``parts`` in order (all run with or all without the mirrored pass)."""
        cat = lambda values: None if values[0] is None else torch.cat(values)  # noqa: E731
        return BatchPredictions(
            Detections(
                *(torch.cat([getattr(p.detections, f) for p in parts]) for f in Detections.__dataclass_fields__)
            ),
            cat([p.flip_agreement for p in parts]),
            torch.cat([p.decision_certainty for p in parts]),
            cat([p.confidence for p in parts]),
            torch.cat([p.embeddings for p in parts]),
        )


class Predictor:
    """Runs a detector on uint8 canvases in batches (AMP and channels-last on CUDA)."""

    def __init__(self, model: CenterNetDetector, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.config = model.config
        if self.device.type == "cuda":
            self.model = self.model.to(memory_format=torch.channels_last)

    @torch.inference_mode()
    def forward(self, canvases: torch.Tensor, with_flip: bool = True) -> tuple[torch.Tensor, ...]:
        """The model's raw outputs for uint8 canvases (B, 3, S, S), mirrored copies appended when ``with_flip``."""
        images = normalise(canvases.to(self.device, non_blocking=True))
        if with_flip:
            images = torch.cat([images, images.flip(-1)])
        if self.device.type == "cuda":
            images = images.contiguous(memory_format=torch.channels_last)
        autocast = torch.autocast("cuda", dtype=torch.float16) if self.device.type == "cuda" else nullcontext()
        with autocast:
            return self.model(images)

    @torch.inference_mode()
    def postprocess(self, outputs: tuple[torch.Tensor, ...], batch: int, with_flip: bool = True) -> BatchPredictions:
        """Decode ``forward``'s outputs for ``batch`` images and compute every per-image number on the device."""
        heatmap_logits, distances, embeddings = outputs
        config = self.config
        detections = decode_batch(
            heatmap_logits, distances, OUTPUT_STRIDE, config.max_detections, config.nms_iou, MIN_DECODE_SCORE
        )
        plain = detections.rows(0, batch)
        certainty = decision_certainty(plain, config.score_threshold)
        if not with_flip:
            return BatchPredictions(plain, None, certainty, None, embeddings[:batch].float())
        mirrored = mirror_back(detections.rows(batch, 2 * batch), float(config.image_size))
        agreement = flip_agreement(plain, mirrored, config.score_threshold, config.image_size, config.num_classes)
        small = small_object_factor(plain, config.score_threshold)  # boxes under 16 canvas px are unreliable
        confidence = (agreement * certainty.double() * small).clamp(0.0, 1.0)
        fused = fuse_with_flip(plain, mirrored)
        return BatchPredictions(fused, agreement, certainty, confidence, embeddings[:batch].float())

    def run(self, canvases: torch.Tensor, with_flip: bool = True) -> BatchPredictions:
        """Detect on uint8 canvases (B, 3, S, S); ``with_flip`` adds the mirrored pass in the same batch."""
        return self.postprocess(self.forward(canvases, with_flip), canvases.shape[0], with_flip)


def mirror_back(detections: Detections, canvas_size: float) -> Detections:
    """Detections made on mirrored canvases, mapped back to unflipped canvas coordinates."""
    boxes = detections.boxes
    unflipped = torch.stack(
        [canvas_size - boxes[..., 2], boxes[..., 1], canvas_size - boxes[..., 0], boxes[..., 3]], -1
    )
    return Detections(unflipped, detections.scores, detections.classes, detections.valid)


def _same_class_pairs(first: Detections, second: Detections, first_mask: torch.Tensor, second_mask: torch.Tensor):
    return (first.classes[:, :, None] == second.classes[:, None, :]) & first_mask[:, :, None] & second_mask[:, None, :]


def fuse_with_flip(plain: Detections, mirrored: Detections) -> Detections:
    """The plain pass's detections with each box averaged (score-weighted) with its same-class match
    (IoU ≥ FLIP_MATCH_IOU) from the mirrored pass; scores and unmatched boxes are kept as they are."""
    overlaps = pairwise_iou(plain.boxes, mirrored.boxes)
    overlaps = torch.where(_same_class_pairs(plain, mirrored, plain.valid, mirrored.valid), overlaps, 0.0)
    best_overlap, best = overlaps.max(dim=2)
    matched = (best_overlap >= FLIP_MATCH_IOU)[..., None]
    plain_weight = plain.scores[..., None]
    mirrored_weight = torch.gather(mirrored.scores, 1, best)[..., None]
    mirrored_boxes = torch.gather(mirrored.boxes, 1, best[..., None].expand(-1, -1, 4))
    averaged = (plain.boxes * plain_weight + mirrored_boxes * mirrored_weight) / (plain_weight + mirrored_weight)
    return Detections(torch.where(matched, averaged, plain.boxes), plain.scores, plain.classes, plain.valid)


def decision_certainty(detections: Detections, threshold: float) -> torch.Tensor:
    """How clear each image's keep/drop decisions were (B,): min(lowest kept score, 1 − highest dropped score).

    An image whose strongest peak fell just under the threshold (a likely
    missed object) is as uncertain as one whose weakest kept box barely passed.
    """
    scores, valid = detections.scores, detections.valid
    kept = valid & (scores >= threshold)
    dropped = valid & (scores < threshold)
    lowest_kept = torch.where(kept, scores, 1.0).amin(dim=1).clamp(max=1.0)
    highest_dropped = torch.where(dropped, scores, 0.0).amax(dim=1).clamp(min=0.0)
    return torch.minimum(lowest_kept, 1.0 - highest_dropped)


def _rounded_xywh(boxes: torch.Tensor) -> torch.Tensor:
    """xyxy boxes as Ground Truth's (left, top, width, height), rounded to 0.01 px, in float64."""
    boxes = boxes.double()
    left_top = _round(boxes[..., :2], 2)
    sides = _round(boxes[..., 2:] - boxes[..., :2], 2)
    return torch.cat([left_top, sides], dim=-1)


def _round(values: torch.Tensor, decimals: int) -> torch.Tensor:
    return torch.round(values * 10**decimals) / 10**decimals


def flip_agreement(
    plain: Detections, mirrored: Detections, threshold: float, canvas_size: int, num_classes: int
) -> torch.Tensor:
    """Image mean IoU (``boxloop.quality.image_miou``) between each image's plain and mirrored boxes (B,).

    Both sides keep the boxes with score ≥ ``threshold``, clipped to the canvas and rounded as reported boxes are.
    Where every box overlaps at most one same-class box on the other side, the optimal one-to-one matching is
    those pairs, computed here for the whole batch; the rare image with competing overlaps is matched by
    ``image_miou`` itself (Hungarian assignment on the CPU).
    """
    plain_boxes = _rounded_xywh(plain.boxes.clamp(0, canvas_size))
    mirrored_boxes = _rounded_xywh(mirrored.boxes.clamp(0, canvas_size))
    plain_kept = plain.valid & (plain.scores >= threshold)
    mirrored_kept = mirrored.valid & (mirrored.scores >= threshold)
    xyxy = lambda b: torch.cat([b[..., :2], b[..., :2] + b[..., 2:]], dim=-1)  # noqa: E731
    ious = pairwise_iou(xyxy(plain_boxes), xyxy(mirrored_boxes)).nan_to_num(0.0)
    ious = torch.where(_same_class_pairs(plain, mirrored, plain_kept, mirrored_kept), ious, 0.0)
    overlapping = ious > 0
    batch = ious.shape[0]
    per_class = lambda classes, values: torch.zeros(  # noqa: E731
        batch, num_classes, dtype=torch.float64, device=ious.device
    ).scatter_add_(1, classes, values.double())
    matched_iou = per_class(plain.classes, ious.sum(dim=2))
    matched = per_class(plain.classes, overlapping.sum(dim=2))
    boxes = per_class(plain.classes, plain_kept) + per_class(mirrored.classes, mirrored_kept)
    present = boxes > 0
    class_scores = torch.where(present, matched_iou / (boxes - matched).clamp(min=1.0), 0.0)
    classes_present = present.sum(dim=1)
    agreement = torch.where(classes_present > 0, class_scores.sum(dim=1) / classes_present.clamp(min=1), 1.0)
    competing = (overlapping.sum(dim=2) > 1).any(dim=1) | (overlapping.sum(dim=1) > 1).any(dim=1)
    if bool(competing.any()):
        rows = competing.nonzero().squeeze(1)
        exact = [
            image_miou(_boxes_of(p, c, k), _boxes_of(m, d, n))
            for p, c, k, m, d, n in zip(
                plain_boxes[rows].tolist(),
                plain.classes[rows].tolist(),
                plain_kept[rows].tolist(),
                mirrored_boxes[rows].tolist(),
                mirrored.classes[rows].tolist(),
                mirrored_kept[rows].tolist(),
                strict=True,
            )
        ]
        agreement = agreement.index_put((rows,), torch.tensor(exact, dtype=agreement.dtype, device=agreement.device))
    return agreement


def _boxes_of(boxes: list, classes: list, kept: list) -> list[Box]:
    return [
        Box(class_id=c, left=b[0], top=b[1], width=b[2], height=b[3])
        for b, c, k in zip(boxes, classes, kept, strict=True)
        if k
    ]


def box_rows(detections: Detections, scales: torch.Tensor, widths: torch.Tensor, heights: torch.Tensor) -> torch.Tensor:
    """(B, K, 5) float64 rows (left, top, width, height, score) in original-image pixels: canvas boxes divided by
    each image's (x, y) scale (B, 2), clipped to its size, rounded to 0.01 px; scores clipped to [0, 1], rounded
    to 4 decimals."""
    scales = scales.to(detections.boxes.device, torch.float32)
    limits = torch.stack([widths, heights], dim=1).to(detections.boxes.device, torch.float32)
    boxes = detections.boxes.view(*detections.boxes.shape[:2], 2, 2) / scales[:, None, None, :]
    boxes = torch.minimum(boxes.clamp(min=0), limits[:, None, None, :]).flatten(2)
    scores = _round(detections.scores.double().clamp(0.0, 1.0), 4)
    return torch.cat([_rounded_xywh(boxes), scores[..., None]], dim=-1)


def scored_boxes(
    detections: Detections, scales: torch.Tensor, widths: Sequence[int], heights: Sequence[int], min_score: float
) -> list[list[ScoredBox]]:
    """Each image's detections with score ≥ ``min_score`` as ScoredBoxes in original-image pixels (best first)."""
    rows = box_rows(detections, scales, torch.as_tensor(widths), torch.as_tensor(heights)).tolist()
    kept = (detections.valid & (detections.scores >= min_score)).tolist()
    classes = detections.classes.tolist()
    return [
        [ScoredBox(**dict(zip(_BOX_FIELDS, (c, *r), strict=True))) for r, c, k in zip(rs, cs, ks, strict=True) if k]
        for rs, cs, ks in zip(rows, classes, kept, strict=True)
    ]


def predict_lines(
    predictor: Predictor, records: Iterable[ImageRecord | Prediction], batch_size: int, num_workers: int
) -> Iterator[str]:
    """One ``Prediction`` JSON line per input, in input order. Inputs that are already error Predictions (a bad
    input line) pass through unchanged; an unreadable image gives a line with ``error`` set."""
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
        yield next(predicted) if isinstance(item, ImageRecord) else item.model_dump_json()


def predict_records(
    predictor: Predictor, records: Iterable[ImageRecord | Prediction], batch_size: int, num_workers: int
) -> Iterator[Prediction]:
    """``predict_lines`` as validated Prediction objects (for callers that work on them)."""
    for line in predict_lines(predictor, records, batch_size, num_workers):
        yield Prediction.model_validate_json(line)


def _predict_batches(predictor: Predictor, records: list[ImageRecord], loader: Iterable[dict]) -> Iterator[str]:
    config = predictor.config
    offset = 0
    for batch in loader:
        batch_records = records[offset : offset + len(batch["error"])]
        offset += len(batch_records)
        predictions = predictor.run(batch["image"], with_flip=True)
        yield from serialise_batch(predictions, batch, batch_records, config.score_threshold, config.model_version)


def serialise_batch(
    predictions: BatchPredictions, batch: dict, records: Sequence[ImageRecord], threshold: float, model_version: str
) -> Iterator[str]:
    """The batch's Prediction JSON lines: the final numbers leave the device in one transfer per tensor and
    Python touches each image once."""
    detections = predictions.detections
    kept = detections.valid & (detections.scores >= threshold)
    order = torch.sort(kept.to(torch.int8), dim=1, descending=True, stable=True).indices  # kept boxes first, best first
    rows = torch.gather(
        box_rows(detections, batch["scale"], batch["width"], batch["height"]), 1, order[..., None].expand(-1, -1, 5)
    )
    classes = torch.gather(detections.classes, 1, order)
    if predictions.confidence is None:
        raise ValueError("pool predictions need the mirrored pass (run with with_flip=True)")
    all_rows, all_classes, counts = rows.tolist(), classes.tolist(), kept.sum(dim=1).tolist()
    confidences = predictions.confidence.double().tolist()
    widths, heights = batch["width"].tolist(), batch["height"].tolist()
    embeddings = _round(predictions.embeddings.double(), 5).tolist()
    for index, record in enumerate(records):
        common = {"image_id": record.image_id, "source_ref": record.source_ref}
        error = batch["error"][index]
        if error:
            yield Prediction(
                **common, width=record.width, height=record.height, model_version=model_version, error=error
            ).model_dump_json()
            continue
        count = counts[index]
        line = {
            **common,
            "width": widths[index],
            "height": heights[index],
            "boxes": [
                dict(zip(_BOX_FIELDS, (c, *r), strict=True))
                for c, r in zip(all_classes[index][:count], all_rows[index][:count], strict=True)
            ],
            "confidence": confidences[index],
            "embedding": embeddings[index],
            "model_version": model_version,
            "error": None,
        }
        yield json.dumps(line, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
