"""Turning heatmap and box-head outputs into scored boxes."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F
from torchvision.ops import batched_nms

from sagemaker_jobs.targets import decode_distances


@dataclass(frozen=True)
class Detections:
    """One image's detections in input-canvas pixels, best first: boxes (N, 4) xyxy, scores (N,), classes (N,)."""

    boxes: torch.Tensor
    scores: torch.Tensor
    classes: torch.Tensor


def _voted_boxes(
    heat: torch.Tensor, distances: torch.Tensor, stride: int, classes: torch.Tensor, cells: torch.Tensor
) -> torch.Tensor:
    """Refined boxes (B, K, 4) at the peaks: the heat-weighted mean of the boxes decoded in each
    peak's 3×3 neighbourhood (its own class's heat), which steadies the edges of every box."""
    batch, _, height, width = heat.shape
    boxes = decode_distances(distances.float(), stride).transpose(1, 2).reshape(batch, 4, height, width)
    peak_heat = torch.gather(heat.flatten(2), 1, classes[..., None].expand(-1, -1, height * width))  # (B, K, H·W)
    peak_heat = peak_heat.view(batch, -1, 1, height, width)
    weighted = F.avg_pool2d((peak_heat * boxes[:, None]).flatten(1, 2), 3, stride=1, padding=1)
    total = F.avg_pool2d(peak_heat.flatten(1, 2), 3, stride=1, padding=1).clamp(min=1e-6)
    voted = (weighted.view(batch, -1, 4, height * width) / total.view(batch, -1, 1, height * width))
    index = cells[..., None, None].expand(-1, -1, 4, 1)
    return torch.gather(voted, 3, index).squeeze(-1)


def decode_batch(
    heatmap_logits: torch.Tensor,
    distances: torch.Tensor,
    stride: int,
    max_detections: int,
    nms_iou: float,
    min_score: float,
) -> list[Detections]:
    """Peaks of the class heatmaps (3×3 max-pool), top-k, boxes from the edge distances, per-class NMS.

    Returns one ``Detections`` per image with scores ≥ ``min_score`` (on the CPU).
    """
    batch, num_classes, height, width = heatmap_logits.shape
    heat = torch.sigmoid(heatmap_logits)
    peaks = heat * (F.max_pool2d(heat, 3, stride=1, padding=1) == heat)
    top_k = min(max_detections, num_classes * height * width)
    scores, flat_index = peaks.flatten(1).topk(top_k, dim=1)
    classes = flat_index // (height * width)
    cells = flat_index % (height * width)
    boxes = _voted_boxes(heat, distances, stride, classes, cells)
    boxes, scores, classes = boxes.float().cpu(), scores.float().cpu(), classes.cpu()
    results = []
    for image in range(batch):
        keep = scores[image] >= min_score
        image_boxes, image_scores, image_classes = boxes[image][keep], scores[image][keep], classes[image][keep]
        kept = batched_nms(image_boxes, image_scores, image_classes, nms_iou)
        results.append(Detections(image_boxes[kept], image_scores[kept], image_classes[kept]))
    return results
