"""The simulated workforce: Ground Truth's error mix, times from the labelling-time model, determinism."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from boxloop.config import LabelingConfig
from boxloop.labeling_time import expected_label_seconds
from boxloop.models import Box
from boxloop.quality import boxes_to_xyxy, iou_matrix
from boxloop.workforce import SimulatedWorkforce

SIZE = 300
# Three well-separated boxes, far enough from each other and from the edges that a
# boundary error (each edge moved by at most 30% of the side) never reaches another box
# or the image border.
SCENE = [
    Box(class_id=0, left=40, top=40, width=60, height=50),
    Box(class_id=1, left=180, top=40, width=70, height=60),
    Box(class_id=2, left=100, top=180, width=80, height=70),
]


def _truth(n_images: int) -> dict[str, list[Box]]:
    return {f"image-{index}": SCENE for index in range(n_images)}


def _classify(truth: list[Box], answer: list[Box]) -> list[tuple[str, float]]:
    """Per true box: its fate (correct / boundary / missed / wrong_class) and its IoU."""
    ious = iou_matrix(boxes_to_xyxy(truth), boxes_to_xyxy(answer))
    fates = []
    for row, true_box in enumerate(truth):
        if not answer or ious[row].max() == 0.0:
            fates.append(("missed", 0.0))
            continue
        column = int(ious[row].argmax())
        iou = float(ious[row, column])
        if answer[column].class_id != true_box.class_id:
            fates.append(("wrong_class", iou))
        else:
            fates.append(("correct" if iou > 0.85 else "boundary", iou))
    return fates


def test_error_mix_and_rate_match_ground_truth() -> None:
    truth = _truth(2000)
    workforce = SimulatedWorkforce(truth, n_classes=6, error_rate=0.25, n_workers=5, seed=11)
    fates = [fate for key, boxes in truth.items() for fate in _classify(boxes, workforce.answer(key, SIZE, SIZE).boxes)]
    counts = Counter(kind for kind, _ in fates)
    erroneous = len(fates) - counts["correct"]
    assert erroneous / len(fates) == pytest.approx(0.25, abs=0.025)
    assert counts["boundary"] / erroneous == pytest.approx(0.62, abs=0.04)
    assert counts["missed"] / erroneous == pytest.approx(0.23, abs=0.04)
    assert counts["wrong_class"] / erroneous == pytest.approx(0.15, abs=0.03)
    boundary_ious = [iou for kind, iou in fates if kind == "boundary"]
    correct_ious = [iou for kind, iou in fates if kind == "correct"]
    assert np.mean(boundary_ious) < 0.75
    assert min(correct_ious) > 0.85 and np.mean(correct_ious) > 0.95


def test_no_errors_at_rate_zero_and_boxes_stay_in_image() -> None:
    truth = {"edge": [Box(class_id=0, left=0, top=0, width=50, height=50)]} | _truth(50)
    perfect = SimulatedWorkforce(truth, n_classes=3, error_rate=0.0, seed=1)
    for key, boxes in truth.items():
        answer = perfect.answer(key, SIZE, SIZE).boxes
        assert [box.class_id for box in answer] == [box.class_id for box in boxes]
        assert all(kind == "correct" for kind, _ in _classify(boxes, answer))
    sloppy = SimulatedWorkforce(truth, n_classes=3, error_rate=1.0, seed=1)
    for key in truth:
        for box in sloppy.answer(key, SIZE, SIZE).boxes:
            assert box.left >= 0 and box.top >= 0 and box.right <= SIZE and box.bottom <= SIZE


def test_answers_are_deterministic_and_independent_of_order() -> None:
    truth = _truth(40)
    keys = list(truth)
    first = SimulatedWorkforce(truth, n_classes=6, error_rate=0.5, seed=3)
    second = SimulatedWorkforce(truth, n_classes=6, error_rate=0.5, seed=3)
    forward = {key: first.answer(key, SIZE, SIZE) for key in keys}
    backward = {key: second.answer(key, SIZE, SIZE) for key in reversed(keys)}
    assert forward == backward
    other_seed = SimulatedWorkforce(truth, n_classes=6, error_rate=0.5, seed=4)
    assert forward != {key: other_seed.answer(key, SIZE, SIZE) for key in keys}


def test_attempts_go_to_different_workers() -> None:
    workforce = SimulatedWorkforce(_truth(1), n_classes=6, n_workers=3, seed=0)
    workers = {workforce.answer("image-0", SIZE, SIZE, attempt=attempt).worker_id for attempt in range(3)}
    assert len(workers) == 3
    assert all(worker.startswith("sim-worker-") for worker in workers)
    assert np.mean(list(workforce.worker_skill.values())) == pytest.approx(1.0)


def test_time_follows_the_labelling_time_model() -> None:
    one_product = {f"single-{index}": SCENE[:1] for index in range(600)}
    workforce = SimulatedWorkforce(one_product | _truth(600), n_classes=6, seed=5)
    single = [workforce.answer(key, SIZE, SIZE).time_spent_seconds for key in one_product]
    cluttered = [workforce.answer(f"image-{index}", SIZE, SIZE).time_spent_seconds for index in range(600)]
    expected_single = expected_label_seconds(n_objects=1, prefilled=False, cluttered=False)
    expected_cluttered = expected_label_seconds(n_objects=3, prefilled=False, cluttered=True)
    assert np.mean(single) == pytest.approx(expected_single, rel=0.06)
    assert np.mean(cluttered) == pytest.approx(expected_cluttered, rel=0.06)
    assert np.std(single) > 0.1 * expected_single


def test_prefilled_boxes_halve_the_time() -> None:
    workforce = SimulatedWorkforce(_truth(20), n_classes=6, seed=2)
    for index in range(20):
        key = f"image-{index}"
        drawn = workforce.answer(key, SIZE, SIZE, cluttered=True)
        adjusted = workforce.answer(key, SIZE, SIZE, prefill=SCENE, cluttered=True)
        assert adjusted.time_spent_seconds == pytest.approx(drawn.time_spent_seconds / 2, abs=0.01)
        assert adjusted.boxes == drawn.boxes


def test_from_config_and_bad_input() -> None:
    config = LabelingConfig.model_validate(
        {
            "classes": ["a", "b", "c"],
            "workforce": {"kind": "simulated", "simulated_workers": 2, "simulated_error_rate": 0.0},
        }
    )
    workforce = SimulatedWorkforce.from_config(_truth(2), config)
    assert sorted(workforce.worker_skill) == ["sim-worker-01", "sim-worker-02"]
    with pytest.raises(KeyError, match="no truth for image 'missing'"):
        workforce.answer("missing", SIZE, SIZE)
    with pytest.raises(ValueError, match="class_id 2 >= n_classes 2"):
        SimulatedWorkforce(_truth(1), n_classes=2)
    with pytest.raises(ValueError, match="n_classes must be at least 1"):
        SimulatedWorkforce({"a": []}, n_classes=0)


def test_one_class_errors_are_boundary_or_missed_in_ground_truths_proportion() -> None:
    truth = {key: [box.model_copy(update={"class_id": 0}) for box in boxes] for key, boxes in _truth(2000).items()}
    workforce = SimulatedWorkforce(truth, n_classes=1, error_rate=0.25, n_workers=5, seed=11)
    fates = [fate for key, boxes in truth.items() for fate in _classify(boxes, workforce.answer(key, SIZE, SIZE).boxes)]
    counts = Counter(kind for kind, _ in fates)
    erroneous = len(fates) - counts["correct"]
    assert counts["wrong_class"] == 0
    assert erroneous / len(fates) == pytest.approx(0.25, abs=0.025)
    assert counts["boundary"] / erroneous == pytest.approx(0.62 / 0.85, abs=0.04)


def _shifted(box: Box, dx: float) -> Box:
    return box.model_copy(update={"left": box.left + dx})


MODEL_BOXES = [
    _shifted(SCENE[0], 12.0),
    _shifted(SCENE[1], 15.0),
    Box(class_id=3, left=5, top=250, width=30, height=30),
]
"""The model's pre-filled boxes: the first two true objects found a little off (IoU ≥ 0.5), the third missed, and
one false positive."""


def test_without_anchoring_pre_filled_boxes_change_only_the_time() -> None:
    workforce = SimulatedWorkforce(_truth(30), n_classes=6, seed=4, anchoring=0.0)
    for index in range(30):
        key = f"image-{index}"
        assert workforce.answer(key, SIZE, SIZE, prefill=MODEL_BOXES).boxes == workforce.answer(key, SIZE, SIZE).boxes


def test_full_anchoring_keeps_the_pre_filled_boxes_of_matched_objects_and_false_positives() -> None:
    own = SimulatedWorkforce(_truth(30), n_classes=6, seed=4, error_rate=0.0)
    anchored = SimulatedWorkforce(_truth(30), n_classes=6, seed=4, error_rate=0.0, anchoring=1.0)
    for index in range(30):
        key = f"image-{index}"
        answer = anchored.answer(key, SIZE, SIZE, prefill=MODEL_BOXES).boxes
        assert answer[:2] == MODEL_BOXES[:2]  # matched objects: the model's boxes
        assert answer[2] == own.answer(key, SIZE, SIZE).boxes[2]  # the model's miss: the person's own box
        assert answer[3] == MODEL_BOXES[2]  # the false positive stays
        assert len(answer) == 4


def test_anchoring_keeps_its_share_of_errors_and_is_deterministic_per_seed() -> None:
    workforce = SimulatedWorkforce(_truth(2000), n_classes=6, seed=7, error_rate=0.0, anchoring=0.3)
    answers = [workforce.answer(f"image-{index}", SIZE, SIZE, prefill=MODEL_BOXES).boxes for index in range(2000)]
    kept = [sum(box in MODEL_BOXES for box in boxes) for boxes in answers]
    assert np.mean(kept) / len(MODEL_BOXES) == pytest.approx(0.3, abs=0.02)
    again = SimulatedWorkforce(_truth(2000), n_classes=6, seed=7, error_rate=0.0, anchoring=0.3)
    assert again.answer("image-5", SIZE, SIZE, prefill=MODEL_BOXES).boxes == answers[5]
    with pytest.raises(ValueError, match="anchoring must be in"):
        SimulatedWorkforce(_truth(1), n_classes=6, anchoring=1.5)


def test_config_sets_anchoring_and_the_prefill_factor() -> None:
    config = LabelingConfig.model_validate(
        {"classes": list("abc"), "workforce": {"simulated_anchoring": 0.6, "simulated_prefill_factor": 0.8}}
    )
    workforce = SimulatedWorkforce.from_config(_truth(1), config)
    assert (workforce.anchoring, workforce.prefill_factor) == (0.6, 0.8)
    drawn = workforce.answer("image-0", SIZE, SIZE).time_spent_seconds
    assert workforce.answer("image-0", SIZE, SIZE, prefill=SCENE).time_spent_seconds == pytest.approx(
        0.8 * drawn, abs=0.01
    )
    assert LabelingConfig.model_validate({"classes": ["a"]}).workforce.simulated_anchoring == 0.0
