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

import numpy as np
import torch

from boxloop.models import ImageRecord, Prediction, ScoredBox
from boxloop.quality import matched_class_miou
from sagemaker_jobs.allocator import keep_freed_memory
from sagemaker_jobs.data import ImageSource, image_loader, normalise
from sagemaker_jobs.decode import Detections, decode_batch, pairwise_iou, same_class_pairs
from sagemaker_jobs.model import OUTPUT_STRIDE, CenterNetDetector
from sagemaker_jobs.small_objects import small_object_factor

MIN_DECODE_SCORE = 0.02
"""Peaks below this score are never decoded (mAP evaluation uses everything above it)."""

FLIP_MATCH_IOU = 0.5
"""A mirrored-pass box this close to a plain-pass box of the same class is averaged with it."""

_BOX_FIELDS = ("class_id", "left", "top", "width", "height", "score")

_JSON_LINE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
"""Compact JSON as pydantic writes it; a NaN or an infinity raises ValueError instead of writing invalid JSON."""

NO_ERROR_LINE_END = '"error":null}'
"""How every Prediction JSON line without an error ends (ours and pydantic's serialisation alike)."""

POSTPROCESS_MIN_IMAGES = 32
"""Pool inference post-processes at least this many images in one call, whatever the forward batch: the cost is
mostly per call (a few hundred small tensor operations), so on 2 CPU cores post-processing groups of 4 images
(the CPU forward batch) paid 1.4 ms per image, and groups of 16 or more about 0.5 (``bench/pool_inference.py``)."""


def postprocess_group_size(forward_batch_size: int) -> int:
    """Images the pool loader hands over at once and post-processed in one call, run forward in passes of
    ``forward_batch_size``."""
    return max(forward_batch_size, POSTPROCESS_MIN_IMAGES)


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
    """Runs a detector on uint8 canvases in batches: channels-last on every device (twice the images/s of the
    default layout on a 2-core CPU), fp16 autocast on CUDA, and freed memory kept by the process for the next
    batch (``allocator``: 1.6× the images/s on a 2-core CPU)."""

    def __init__(self, model: CenterNetDetector, device: torch.device | str = "cpu") -> None:
        keep_freed_memory()
        self.device = torch.device(device)
        self.model = model.to(self.device, memory_format=torch.channels_last).eval()
        self.config = model.config

    @torch.inference_mode()
    def forward(self, canvases: torch.Tensor, with_flip: bool = True) -> tuple[torch.Tensor, ...]:
        """The model's raw outputs for uint8 canvases (B, 3, S, S), mirrored copies appended when ``with_flip``."""
        images = normalise(canvases.to(self.device, non_blocking=True))
        if with_flip:
            images = torch.cat([images, images.flip(-1)])
        images = images.contiguous(memory_format=torch.channels_last)
        autocast = torch.autocast("cuda", dtype=torch.float16) if self.device.type == "cuda" else nullcontext()
        with autocast:
            return self.model(images)

    @torch.inference_mode()
    def forward_in_parts(
        self, canvases: torch.Tensor, forward_batch_size: int | None = None, with_flip: bool = True
    ) -> tuple[torch.Tensor, ...]:
        """``forward`` in passes of at most ``forward_batch_size`` canvases, joined as one pass's outputs (every
        plain row, then every mirrored row); ``None`` runs all the canvases in one pass."""
        if forward_batch_size is None or forward_batch_size >= canvases.shape[0]:
            return self.forward(canvases, with_flip)
        parts = [self.forward(chunk, with_flip) for chunk in canvases.split(forward_batch_size)]
        if not with_flip:
            return tuple(torch.cat(outputs) for outputs in zip(*parts, strict=True))
        joined = []
        for outputs in zip(*parts, strict=True):  # one model output (heatmaps, distances, embeddings) of every pass
            plain = [output[: len(output) // 2] for output in outputs]
            mirrored = [output[len(output) // 2 :] for output in outputs]
            joined.append(torch.cat(plain + mirrored))
        return tuple(joined)

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

    def run(
        self, canvases: torch.Tensor, with_flip: bool = True, forward_batch_size: int | None = None
    ) -> BatchPredictions:
        """Detect on uint8 canvases (B, 3, S, S); ``with_flip`` adds the mirrored pass in the same batch. The
        forward runs in passes of at most ``forward_batch_size`` images, the post-processing once for all B."""
        outputs = self.forward_in_parts(canvases, forward_batch_size, with_flip)
        return self.postprocess(outputs, canvases.shape[0], with_flip)


def mirror_back(detections: Detections, canvas_size: float) -> Detections:
    """Detections made on mirrored canvases, mapped back to unflipped canvas coordinates."""
    boxes = detections.boxes
    unflipped = torch.stack(
        [canvas_size - boxes[..., 2], boxes[..., 1], canvas_size - boxes[..., 0], boxes[..., 3]], -1
    )
    return Detections(unflipped, detections.scores, detections.classes, detections.valid)


def fuse_with_flip(plain: Detections, mirrored: Detections) -> Detections:
    """The plain pass's detections with each box averaged (score-weighted) with its same-class match
    (IoU ≥ FLIP_MATCH_IOU) from the mirrored pass; scores and unmatched boxes are kept as they are."""
    overlaps = pairwise_iou(plain.boxes, mirrored.boxes).nan_to_num_(0.0)
    overlaps.mul_(same_class_pairs(plain.classes, mirrored.classes, plain.valid, mirrored.valid))
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
    those pairs, computed here for the whole batch; the rare image with competing overlaps is matched on the CPU
    (Hungarian assignment, ``matched_mean_iou``).
    """
    batch = plain.boxes.shape[0]
    reported = int(torch.stack([plain.scores, mirrored.scores]).ge(threshold).sum(dim=2).max())
    plain, mirrored = plain.first_slots(reported), mirrored.first_slots(reported)  # the rest are not compared
    rounded = _rounded_xywh(torch.cat([plain.boxes, mirrored.boxes]).clamp(0, canvas_size))
    corners = torch.cat([rounded[..., :2], rounded[..., :2] + rounded[..., 2:]], dim=-1)
    plain_kept = plain.valid & (plain.scores >= threshold)
    mirrored_kept = mirrored.valid & (mirrored.scores >= threshold)
    ious = pairwise_iou(corners[:batch], corners[batch:]).nan_to_num_(0.0)
    ious.mul_(same_class_pairs(plain.classes, mirrored.classes, plain_kept, mirrored_kept))
    overlapping = ious.sign().clamp_(min=0.0)
    overlaps_per_plain, overlaps_per_mirrored = overlapping.sum(dim=2), overlapping.sum(dim=1)
    per_class = torch.zeros(batch, num_classes, 3, dtype=torch.float64, device=ious.device).scatter_add_(
        1,
        plain.classes[..., None].expand(-1, -1, 3),
        torch.stack([ious.sum(dim=2), overlaps_per_plain, plain_kept.double()], dim=-1),
    )
    matched_iou, matched, boxes = per_class.unbind(dim=-1)
    boxes = boxes.scatter_add(1, mirrored.classes, mirrored_kept.double())
    present = boxes > 0
    class_scores = torch.where(present, matched_iou / (boxes - matched).clamp(min=1.0), 0.0)
    classes_present = present.sum(dim=1)
    agreement = torch.where(classes_present > 0, class_scores.sum(dim=1) / classes_present.clamp(min=1), 1.0)
    competing = ((overlaps_per_plain > 1) | (overlaps_per_mirrored > 1)).any(dim=1).nonzero().squeeze(1)
    if len(competing):
        exact = [
            matched_mean_iou(image_ious[p_kept][:, m_kept], p_classes[p_kept], m_classes[m_kept])
            for image_ious, p_classes, m_classes, p_kept, m_kept in zip(
                ious[competing].cpu().numpy(),
                *torch.stack([plain.classes, mirrored.classes])[:, competing].cpu().numpy(),
                *torch.stack([plain_kept, mirrored_kept])[:, competing].cpu().numpy(),
                strict=True,
            )
        ]
        agreement = agreement.index_put((competing,), torch.tensor(exact, dtype=agreement.dtype, device=ious.device))
    return agreement


def matched_mean_iou(ious: np.ndarray, first_classes: np.ndarray, second_classes: np.ndarray) -> float:
    """``boxloop.quality.image_miou`` of one image from the IoU matrix (N, M) of its two box sets: per class, the
    one-to-one matching of largest total IoU, its IoUs summed over the class's boxes less the matched pairs; the
    mean over the classes on either side (1.0 when neither has a box)."""
    scores = [
        matched_class_miou(ious[np.ix_(first_classes == class_id, second_classes == class_id)])
        for class_id in np.union1d(first_classes, second_classes)
    ]
    return float(np.mean(scores)) if scores else 1.0


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
    input line) pass through unchanged; an unreadable image gives a line with ``error`` set. The model runs
    ``batch_size`` images per forward pass; post-processing takes ``postprocess_group_size`` images at once."""
    items = list(records)
    readable = [item for item in items if isinstance(item, ImageRecord)]
    loader = image_loader(
        [ImageSource(record.source_ref) for record in readable],
        predictor.config.image_size,
        postprocess_group_size(batch_size),
        num_workers,
        pin_memory=predictor.device.type == "cuda",
    )
    predicted = iter(_predict_batches(predictor, readable, loader, batch_size))
    for item in items:
        yield next(predicted) if isinstance(item, ImageRecord) else item.model_dump_json()


def predict_records(
    predictor: Predictor, records: Iterable[ImageRecord | Prediction], batch_size: int, num_workers: int
) -> Iterator[Prediction]:
    """``predict_lines`` as validated Prediction objects (for callers that work on them)."""
    for line in predict_lines(predictor, records, batch_size, num_workers):
        yield Prediction.model_validate_json(line)


def _predict_batches(
    predictor: Predictor, records: list[ImageRecord], loader: Iterable[dict], forward_batch_size: int
) -> Iterator[str]:
    config = predictor.config
    offset = 0
    for batch in loader:
        batch_records = records[offset : offset + len(batch["error"])]
        offset += len(batch_records)
        predictions = predictor.run(batch["image"], with_flip=True, forward_batch_size=forward_batch_size)
        yield from serialise_batch(predictions, batch, batch_records, config.score_threshold, config.model_version)


def serialise_batch(
    predictions: BatchPredictions, batch: dict, records: Sequence[ImageRecord], threshold: float, model_version: str
) -> Iterator[str]:
    """The batch's Prediction JSON lines: the final numbers leave the device in two transfers (boxes, per-image
    numbers) and Python touches each image once; no pydantic object is built for a readable image."""
    if predictions.confidence is None:
        raise ValueError("pool predictions need the mirrored pass (run with with_flip=True)")
    detections = predictions.detections
    kept = detections.valid & (detections.scores >= threshold)
    counts = kept.sum(dim=1)
    widest = int(counts.max()) if counts.numel() else 0
    order = torch.sort(kept.to(torch.int8), dim=1, descending=True, stable=True).indices[:, :widest]  # kept first
    rows = torch.cat(
        [detections.classes[..., None].double(), box_rows(detections, batch["scale"], batch["width"], batch["height"])],
        dim=-1,
    )
    all_boxes = torch.gather(rows, 1, order[..., None].expand(-1, -1, rows.shape[2])).tolist()
    per_image = torch.cat(
        [
            counts[:, None].double(),
            predictions.confidence[:, None].double(),
            _round(predictions.embeddings.double(), 5),
        ],
        dim=1,
    ).tolist()
    widths, heights = batch["width"].tolist(), batch["height"].tolist()
    for index, record in enumerate(records):
        error = batch["error"][index]
        if error:
            yield Prediction(
                image_id=record.image_id,
                source_ref=record.source_ref,
                width=record.width,
                height=record.height,
                model_version=model_version,
                error=error,
            ).model_dump_json()
            continue
        count, confidence, *embedding = per_image[index]
        line = {
            "image_id": record.image_id,
            "source_ref": record.source_ref,
            "width": widths[index],
            "height": heights[index],
            "boxes": [
                {"class_id": int(c), "left": left, "top": top, "width": width, "height": height, "score": score}
                for c, left, top, width, height, score in all_boxes[index][: int(count)]
            ],
            "confidence": confidence,
            "embedding": embedding,
            "model_version": model_version,
            "error": None,
        }
        yield _JSON_LINE.encode(line)
