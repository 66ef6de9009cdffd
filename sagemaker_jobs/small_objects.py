"""Small objects lower an image's confidence: below about 16 pixels on the detector's canvas a stride-4 detector
sees an object in under four output cells, so its boxes (and the objects it missed beside them) are unreliable.

An image whose reported boxes (valid, score at or above the threshold) include one whose shorter side on the
canvas is ``side`` pixels gets its confidence multiplied by ``min(1, side / RELIABLE_CANVAS_SIDE)``; images
without reported boxes, or with only larger ones, keep theirs. The threshold's guarantee is unaffected (the
validation images' confidences are computed the same way); such images are simply routed to people sooner.
Raising the detector's ``image_size`` makes the objects larger on the canvas (docs/local-run.md).
"""

from __future__ import annotations

import torch

from sagemaker_jobs.decode import Detections

RELIABLE_CANVAS_SIDE = 16.0
"""The shorter box side, in canvas pixels, from which a box no longer lowers its image's confidence."""


def small_object_factor(detections: Detections, score_threshold: float) -> torch.Tensor:
    """Per image (B,): the confidence multiplier in [0, 1] that the smallest reported box imposes."""
    boxes = detections.boxes
    shorter = torch.minimum(boxes[..., 2] - boxes[..., 0], boxes[..., 3] - boxes[..., 1]).clamp(min=0.0)
    reported = detections.valid & (detections.scores >= score_threshold)
    factors = torch.where(reported, (shorter / RELIABLE_CANVAS_SIDE).clamp(max=1.0), torch.ones_like(shorter))
    return factors.amin(dim=1).double() if factors.shape[1] else torch.ones(boxes.shape[0], dtype=torch.float64)
