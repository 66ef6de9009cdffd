"""Turning heatmap and box-head outputs into scored boxes, for a whole batch at once on the model's device."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.nn import functional as F


@dataclass(frozen=True)
class Detections:
    """A batch's detections in input-canvas pixels, K slots per image, best first within each image:
    boxes (B, K, 4) xyxy, scores (B, K), classes (B, K), and ``valid`` (B, K): the slots that hold a detection
    (score at or above the decoding floor and kept by NMS)."""

    boxes: torch.Tensor
    scores: torch.Tensor
    classes: torch.Tensor
    valid: torch.Tensor

    def rows(self, start: int, stop: int) -> Detections:
        """The detections of images ``start`` to ``stop`` (exclusive)."""
        return Detections(
            self.boxes[start:stop], self.scores[start:stop], self.classes[start:stop], self.valid[start:stop]
        )


def pairwise_iou(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """IoU of every box in ``first`` (B, N, 4) with every box in ``second`` (B, M, 4), xyxy: (B, N, M)."""
    area_first = (first[..., 2] - first[..., 0]) * (first[..., 3] - first[..., 1])
    area_second = (second[..., 2] - second[..., 0]) * (second[..., 3] - second[..., 1])
    top_left = torch.maximum(first[:, :, None, :2], second[:, None, :, :2])
    bottom_right = torch.minimum(first[:, :, None, 2:], second[:, None, :, 2:])
    sides = (bottom_right - top_left).clamp(min=0)
    intersection = sides[..., 0] * sides[..., 1]
    return intersection / (area_first[:, :, None] + area_second[:, None, :] - intersection)


def _voted_boxes(
    logits: torch.Tensor, distances: torch.Tensor, stride: int, classes: torch.Tensor, cells: torch.Tensor
) -> torch.Tensor:
    """Refined boxes (B, K, 4) at the peaks: the heat-weighted mean of the boxes decoded in each
    peak's 3×3 neighbourhood (its own class's heat), which steadies the edges of every box.

    Only the nine cells around each peak are read (cells beyond the map weigh nothing)."""
    batch, _, _, width = logits.shape
    padded_width = width + 2
    padded_logits = F.pad(logits, (1, 1, 1, 1), value=-math.inf).flatten(2)  # (B, C, (H+2)·(W+2))
    padded_distances = F.pad(distances.float(), (1, 1, 1, 1)).flatten(2)  # (B, 4, (H+2)·(W+2))
    row, column = cells // width + 1, cells % width + 1
    offsets = torch.arange(-1, 2, device=cells.device)
    neighbour_rows = (row[..., None, None] + offsets[:, None]).expand(-1, -1, 3, 3).flatten(2)  # (B, K, 9)
    neighbour_columns = (column[..., None, None] + offsets[None, :]).expand(-1, -1, 3, 3).flatten(2)
    neighbours = neighbour_rows * padded_width + neighbour_columns
    heat_index = classes[..., None] * padded_logits.shape[2] + neighbours
    heat = torch.sigmoid(torch.gather(padded_logits.flatten(1), 1, heat_index.flatten(1))).view_as(neighbours)
    left, top, right, bottom = (
        torch.gather(padded_distances, 2, neighbours.flatten(1)[:, None, :].expand(-1, 4, -1))
        .view(batch, 4, *neighbours.shape[1:])
        .unbind(dim=1)
    )  # each (B, K, 9)
    centre_x, centre_y = (neighbour_columns - 0.5) * stride, (neighbour_rows - 0.5) * stride
    boxes = torch.stack([centre_x - left, centre_y - top, centre_x + right, centre_y + bottom], dim=-1)
    weighted = (boxes * heat[..., None]).sum(dim=2) / 9
    total = (heat.sum(dim=2) / 9).clamp(min=1e-6)
    return weighted / total[..., None]


def _neighbourhood_maximum(values: torch.Tensor) -> torch.Tensor:
    """The maximum over each cell's 3×3 neighbourhood (B, C, H, W), as ``max_pool2d(values, 3, 1, 1)`` gives it,
    from four elementwise maxima (several times faster than the pooling kernel on a CPU)."""
    padded = F.pad(values, (1, 1, 1, 1), value=-math.inf)
    rows = torch.maximum(torch.maximum(padded[..., :-2], padded[..., 1:-1]), padded[..., 2:])
    return torch.maximum(torch.maximum(rows[..., :-2, :], rows[..., 1:-1, :]), rows[..., 2:, :])


def _kept_by_nms(boxes: torch.Tensor, classes: torch.Tensor, candidates: torch.Tensor, iou: float) -> torch.Tensor:
    """(B, K) mask of the candidates that greedy per-class NMS keeps, for the whole batch at once.

    Slots are best first, so a candidate is dropped when a kept, earlier candidate of its class overlaps it by
    IoU > ``iou``. Iterating "kept = candidates not overlapped by a kept earlier one" from all candidates
    reaches greedy NMS's result exactly (Cluster-NMS, Zheng et al. 2020), in a few (B, K, K) steps instead of
    one NMS per image, or one over the whole batch, whose cost grows with the square of all its boxes.
    """
    slots = boxes.shape[1]
    earlier = torch.ones(slots, slots, dtype=torch.bool, device=boxes.device).triu(diagonal=1)
    same_class = classes[:, :, None] == classes[:, None, :]
    suppresses = (pairwise_iou(boxes, boxes) > iou) & same_class & earlier & candidates[:, :, None]
    kept = candidates
    for _ in range(slots):
        updated = candidates & ~(suppresses & kept[:, :, None]).any(dim=1)
        if torch.equal(updated, kept):
            break
        kept = updated
    return kept


def decode_batch(
    heatmap_logits: torch.Tensor,
    distances: torch.Tensor,
    stride: int,
    max_detections: int,
    nms_iou: float,
    min_score: float,
) -> Detections:
    """Peaks of the class heatmaps (3×3 max-pool), top-k, boxes from the edge distances, per-class NMS.

    Returns the batch's ``Detections`` on the outputs' device; ``valid`` marks the slots with score ≥ ``min_score``
    that NMS kept.
    """
    _, num_classes, height, width = heatmap_logits.shape
    logits = heatmap_logits.float()  # peaks and ranks on logits: the sigmoid is monotonic, and runs on the peaks only
    peaks = torch.where(_neighbourhood_maximum(logits) == logits, logits, -math.inf)
    top_k = min(max_detections, num_classes * height * width)
    top_logits, flat_index = peaks.flatten(1).topk(top_k, dim=1)
    scores = torch.sigmoid(top_logits)
    classes = flat_index // (height * width)
    cells = flat_index % (height * width)
    boxes = _voted_boxes(logits, distances, stride, classes, cells).float()
    valid = _kept_by_nms(boxes, classes, scores >= min_score, nms_iou)
    return Detections(boxes, scores, classes, valid)
