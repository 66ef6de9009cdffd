"""Vectorised training targets and losses for the CenterNet-style detector.

Ground truth arrives padded: ``boxes`` (B, M, 4) as (x1, y1, x2, y2) in input
pixels, ``classes`` (B, M) and ``valid`` (B, M). Every target is computed for
the whole batch at once with tensor ops (no Python loop over images or boxes).
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F
from torchvision.ops import generalized_box_iou_loss

GAUSSIAN_ALPHA = 0.54
"""Gaussian radius as a share of the box side (σ = α·side/6, TTFNet's value)."""

_REGRESSION_CUTOFF = 0.05


def cell_centres(size: int, stride: int, device: torch.device) -> torch.Tensor:
    """Input-pixel coordinates of the output cells' centres along one axis, shape (size,)."""
    return (torch.arange(size, device=device, dtype=torch.float32) + 0.5) * stride


def build_targets(
    boxes: torch.Tensor,
    classes: torch.Tensor,
    valid: torch.Tensor,
    num_classes: int,
    output_size: int,
    stride: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Heatmap targets (B, C, H, W), regression boxes (B, H·W, 4) and weights (B, H·W).

    The heatmap holds, per class, the maximum over that class's objects of an
    elliptical Gaussian centred on the cell containing the object's centre
    (peak exactly 1). Each cell of an object's Gaussian region regresses that
    object's box (the smallest object wins where regions overlap); its weight
    is the Gaussian value normalised per object and scaled by log(area), so
    every object counts about equally however large its region.
    """
    batch, max_boxes = classes.shape
    device = boxes.device
    widths = (boxes[..., 2] - boxes[..., 0]).clamp(min=1.0)
    heights = (boxes[..., 3] - boxes[..., 1]).clamp(min=1.0)
    centre_x = ((boxes[..., 0] + boxes[..., 2]) / 2 / stride).floor().clamp(0, output_size - 1)
    centre_y = ((boxes[..., 1] + boxes[..., 3]) / 2 / stride).floor().clamp(0, output_size - 1)
    centre_x = (centre_x + 0.5) * stride
    centre_y = (centre_y + 0.5) * stride
    sigma_x = (GAUSSIAN_ALPHA * widths / 6).clamp(min=stride / 4)
    sigma_y = (GAUSSIAN_ALPHA * heights / 6).clamp(min=stride / 4)
    grid = cell_centres(output_size, stride, device)
    gauss_x = torch.exp(-((grid[None, None, :] - centre_x[..., None]) ** 2) / (2 * sigma_x[..., None] ** 2))
    gauss_y = torch.exp(-((grid[None, None, :] - centre_y[..., None]) ** 2) / (2 * sigma_y[..., None] ** 2))
    gaussians = gauss_y[..., :, None] * gauss_x[..., None, :] * valid[..., None, None]  # (B, M, H, W)
    gaussians = gaussians.flatten(2)  # (B, M, H·W)

    heatmap = torch.zeros(batch, num_classes, output_size * output_size, device=device)
    class_index = classes.clamp(min=0)[..., None].expand_as(gaussians)
    heatmap.scatter_reduce_(1, class_index, gaussians, reduce="amax")

    areas = widths * heights
    eligible = gaussians > _REGRESSION_CUTOFF
    priority = torch.where(eligible, -areas[..., None], torch.full_like(gaussians, -math.inf))
    owner = priority.argmax(dim=1)  # (B, H·W): the smallest eligible object per cell
    owned = F.one_hot(owner, max_boxes).transpose(1, 2).bool() & eligible  # (B, M, H·W)
    owned_gaussians = gaussians * owned
    per_object_total = owned_gaussians.sum(dim=2, keepdim=True).clamp(min=1e-6)
    object_weight = torch.log(areas.clamp(min=2.0))[..., None] * valid[..., None]
    weights = (owned_gaussians / per_object_total * object_weight).sum(dim=1)  # (B, H·W)
    target_boxes = torch.gather(boxes, 1, owner[..., None].expand(-1, -1, 4))  # (B, H·W, 4)
    return heatmap.view(batch, num_classes, output_size, output_size), target_boxes, weights


def focal_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """CenterNet's penalty-reduced focal loss (α=2, β=4), normalised by the number of object centres."""
    log_p = F.logsigmoid(logits)
    log_not_p = F.logsigmoid(-logits)
    p = log_p.exp()
    positive = targets.eq(1.0).float()
    positive_loss = -(log_not_p.exp() ** 2) * log_p * positive
    negative_loss = -(p**2) * log_not_p * (1 - targets) ** 4 * (1 - positive)
    return (positive_loss.sum() + negative_loss.sum()) / positive.sum().clamp(min=1.0)


def decode_distances(distances: torch.Tensor, stride: int) -> torch.Tensor:
    """Edge distances (B, 4, H, W) → boxes (B, H·W, 4) as (x1, y1, x2, y2) in input pixels."""
    _, _, height, width = distances.shape
    ys = cell_centres(height, stride, distances.device)[:, None].expand(height, width).reshape(-1)
    xs = cell_centres(width, stride, distances.device)[None, :].expand(height, width).reshape(-1)
    left, top, right, bottom = distances.flatten(2).unbind(dim=1)
    return torch.stack([xs - left, ys - top, xs + right, ys + bottom], dim=-1)


def box_loss(distances: torch.Tensor, target_boxes: torch.Tensor, weights: torch.Tensor, stride: int) -> torch.Tensor:
    """Weighted GIoU loss between decoded boxes and their objects' boxes over the weighted cells."""
    mask = weights > 0
    if not bool(mask.any()):
        return distances.sum() * 0.0
    predicted = decode_distances(distances, stride)[mask]
    losses = generalized_box_iou_loss(predicted, target_boxes[mask], reduction="none")
    return (losses * weights[mask]).sum() / weights[mask].sum()
