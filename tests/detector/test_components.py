"""Target builder, decoder, augmentation geometry and metric-line format."""

from __future__ import annotations

import re

import pytest
import torch

from sagemaker_jobs.data import augment
from sagemaker_jobs.decode import decode_batch
from sagemaker_jobs.metric_definitions import METRIC_DEFINITIONS, format_metric_line
from sagemaker_jobs.targets import build_targets, cell_centres

STRIDE = 4
OUTPUT = 16


def _boxes() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    boxes = torch.tensor(
        [[[4.0, 6.0, 30.0, 40.0], [36.0, 8.0, 60.0, 20.0]], [[10.0, 10.0, 50.0, 54.0], [0.0, 0.0, 0.0, 0.0]]]
    )
    classes = torch.tensor([[0, 1], [1, -1]])
    valid = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
    return boxes, classes, valid


def test_targets_peak_at_each_object_centre_and_regress_only_inside_objects() -> None:
    boxes, classes, valid = _boxes()
    heatmap, target_boxes, weights = build_targets(boxes, classes, valid, 2, OUTPUT, STRIDE)
    assert heatmap.shape == (2, 2, OUTPUT, OUTPUT)
    assert int(heatmap.eq(1.0).sum()) == 3  # one peak per real object, none for padding
    assert heatmap[0, 0, int(23 / STRIDE), int(17 / STRIDE)] == 1.0
    assert heatmap[1, 1, int(32 / STRIDE), int(30 / STRIDE)] == 1.0
    centres = cell_centres(OUTPUT, STRIDE, torch.device("cpu"))
    ys, xs = torch.meshgrid(centres, centres, indexing="ij")
    weighted = weights > 0
    inside = (
        (xs.flatten() >= target_boxes[..., 0])
        & (xs.flatten() <= target_boxes[..., 2])
        & (ys.flatten() >= target_boxes[..., 1])
        & (ys.flatten() <= target_boxes[..., 3])
    )
    assert bool(inside[weighted].all())
    assert weights[1].sum() == pytest.approx(float(torch.log(torch.tensor(40.0 * 44.0))), rel=1e-4)


def test_decoding_perfect_outputs_recovers_the_boxes() -> None:
    boxes, classes, valid = _boxes()
    heatmap, target_boxes, _ = build_targets(boxes, classes, valid, 2, OUTPUT, STRIDE)
    centres = cell_centres(OUTPUT, STRIDE, torch.device("cpu"))
    ys, xs = (grid.flatten() for grid in torch.meshgrid(centres, centres, indexing="ij"))
    distances = torch.stack(
        [xs - target_boxes[..., 0], ys - target_boxes[..., 1], target_boxes[..., 2] - xs, target_boxes[..., 3] - ys],
        dim=1,
    ).view(2, 4, OUTPUT, OUTPUT)
    logits = torch.logit(heatmap.eq(1.0).float().clamp(1e-7, 1 - 1e-7))  # only the centre cells are hot
    detections = decode_batch(logits, distances, STRIDE, max_detections=10, nms_iou=0.5, min_score=0.9)
    found = [
        sorted(tuple(round(value, 2) for value in box) for box in boxes[valid].tolist())
        for boxes, valid in zip(detections.boxes, detections.valid, strict=True)
    ]
    assert found[0] == [(4.0, 6.0, 30.0, 40.0), (36.0, 8.0, 60.0, 20.0)]
    assert found[1] == [(10.0, 10.0, 50.0, 54.0)]
    assert set(detections.classes[1][detections.valid[1]].tolist()) == {1}


def test_augmented_boxes_follow_the_pixels() -> None:
    size = 64
    images = torch.full((6, 3, size, size), -1.0)
    boxes = torch.tensor([[[8.0, 12.0, 28.0, 40.0]]]).repeat(6, 1, 1)
    images[:, :, 12:40, 8:28] = 1.0
    warped, moved, valid = augment(images, boxes, torch.ones(6, 1), torch.Generator().manual_seed(3))
    for index in range(6):
        if valid[index, 0] == 0:
            continue
        bright = (warped[index].mean(0) > warped[index].mean(0).amax() - 0.3).nonzero().float()
        x1, y1, x2, y2 = moved[index, 0].tolist()
        assert bright[:, 1].min() + 0.5 == pytest.approx(x1, abs=1.5)
        assert bright[:, 1].max() + 0.5 == pytest.approx(x2, abs=1.5)
        assert bright[:, 0].min() + 0.5 == pytest.approx(y1, abs=1.5)
        assert bright[:, 0].max() + 0.5 == pytest.approx(y2, abs=1.5)


def test_metric_lines_round_trip_through_the_regexes() -> None:
    line = format_metric_line({"epoch": 3, "val_map50": 0.912, "val_miou": 0.8015})
    assert line == "boxloop_metric epoch=3; val_map50=0.912; val_miou=0.8015;"
    values = {d["Name"]: re.search(d["Regex"], line) for d in METRIC_DEFINITIONS}
    assert float(values["val_map50"].group(1)) == 0.912
    assert float(values["epoch"].group(1)) == 3.0
    assert values["val_map50_95"] is None
    with pytest.raises(KeyError, match="recall"):
        format_metric_line({"recall": 0.5})
