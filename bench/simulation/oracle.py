"""The oracle's auto-labels: what a loop that knew each image's true quality could auto-label at the target.

Each iteration it sorts the pool's predictions by their true mean IoU against truth (best first, ties by image id)
and auto-labels the longest prefix whose mean stays at or above the target, so no policy that keeps the
auto-labels' mean at the target can auto-label more from the same model. Comparing boxloop's auto-labelled share
with the oracle's measures what a *guaranteed* threshold costs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from boxloop.models import Box, Prediction
from boxloop.quality import image_miou


def plain_boxes(prediction: Prediction) -> list[Box]:
    """A prediction's boxes without their scores, as a label holds them."""
    return [Box(**box.model_dump(include=set(Box.model_fields))) for box in prediction.boxes]


def oracle_auto(
    predictions: Sequence[Prediction], truth: Mapping[str, Sequence[Box]], target: float
) -> tuple[list[Prediction], float | None]:
    """The predictions the oracle auto-labels and their mean true IoU (None when it takes none)."""
    usable = [p for p in predictions if p.error is None]
    scored = sorted(
        ((image_miou(plain_boxes(p), truth[p.image_id]), p.image_id, p) for p in usable),
        key=lambda item: (-item[0], item[1]),
    )
    qualities = np.array([quality for quality, _, _ in scored], dtype=float)
    running_mean = np.cumsum(qualities) / np.arange(1, len(qualities) + 1) if len(qualities) else qualities
    reaching = np.flatnonzero(running_mean >= target)
    if not len(reaching):
        return [], None
    count = int(reaching[-1]) + 1
    return [p for _, _, p in scored[:count]], float(running_mean[count - 1])
