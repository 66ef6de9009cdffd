"""Small boxes on the detector's canvas lower their image's confidence; large or unreported ones do not."""

from __future__ import annotations

import torch

from sagemaker_jobs.decode import Detections
from sagemaker_jobs.small_objects import RELIABLE_CANVAS_SIDE, small_object_factor


def _detections(boxes: list[list[list[float]]], scores: list[list[float]]) -> Detections:
    box_tensor, score_tensor = torch.tensor(boxes), torch.tensor(scores)
    return Detections(box_tensor, score_tensor, torch.zeros_like(score_tensor, dtype=torch.long), score_tensor > 0.02)


def test_the_smallest_reported_box_sets_the_factor() -> None:
    detections = _detections(
        [
            [[10, 10, 50, 60], [100, 100, 104, 140]],  # a 4 px wide box is reported
            [[10, 10, 50, 60], [100, 100, 104, 140]],  # the same small box scores under the threshold
            [[0, 0, 30, 30], [40, 40, 48, 52]],  # an 8 px box
            [[0, 0, 0, 0], [0, 0, 0, 0]],  # nothing detected
        ],
        [[0.9, 0.8], [0.9, 0.1], [0.9, 0.6], [0.0, 0.0]],
    )
    factors = small_object_factor(detections, score_threshold=0.3)
    assert factors.tolist() == [4 / RELIABLE_CANVAS_SIDE, 1.0, 8 / RELIABLE_CANVAS_SIDE, 1.0]
    assert factors.dtype == torch.float64
