import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from boxloop.models import Box, ScoredBox
from boxloop.quality import boxes_to_xyxy, coco_map, image_miou, iou_matrix, mean_image_miou


def box(x1: float, y1: float, x2: float, y2: float, class_id: int = 0) -> Box:
    return Box(class_id=class_id, left=x1, top=y1, width=x2 - x1, height=y2 - y1)


def scored(x1: float, y1: float, x2: float, y2: float, score: float = 0.9, class_id: int = 0) -> ScoredBox:
    return ScoredBox(class_id=class_id, left=x1, top=y1, width=x2 - x1, height=y2 - y1, score=score)


def test_iou_matrix_values_and_shapes():
    a = np.array([[0, 0, 2, 2], [10, 10, 11, 11]], dtype=float)
    b = np.array([[1, 1, 3, 3], [0, 0, 2, 2], [0, 0, 0, 0]], dtype=float)
    expected = np.array([[1 / 7, 1.0, 0.0], [0.0, 0.0, 0.0]])
    np.testing.assert_allclose(iou_matrix(a, b), expected)
    assert iou_matrix(np.zeros((0, 4)), b).shape == (0, 3)
    assert iou_matrix(a, np.zeros((0, 4))).shape == (2, 0)


def test_boxes_to_xyxy():
    np.testing.assert_array_equal(boxes_to_xyxy([box(1, 2, 4, 6)]), [[1, 2, 4, 6]])
    assert boxes_to_xyxy([]).shape == (0, 4)


def test_single_pair_scores_its_iou():
    assert image_miou([box(0, 0, 10, 10)], [box(0, 0, 10, 5)]) == pytest.approx(0.5)


def test_unmatched_reference_counts_zero():
    # one perfect match, one missed reference: 1 / (1 + 2 - 1)
    assert image_miou([box(0, 0, 10, 10)], [box(0, 0, 10, 10), box(50, 50, 60, 60)]) == pytest.approx(0.5)


def test_assigned_pair_without_overlap_is_unmatched():
    predicted = [box(0, 0, 10, 10), box(100, 100, 110, 110)]
    reference = [box(0, 0, 10, 10), box(50, 50, 60, 60)]
    # the second pair does not overlap: both boxes count as unmatched, 1 / (2 + 2 - 1)
    assert image_miou(predicted, reference) == pytest.approx(1 / 3)


def test_matching_maximises_total_iou():
    # "wide" overlaps both references by 1/3; "left" overlaps only the first, by 0.9.
    reference = [box(0, 0, 10, 1), box(10, 0, 20, 1)]
    predicted = [box(5, 0, 15, 1), box(0, 0, 9, 1)]
    assert image_miou(predicted, reference) == pytest.approx((0.9 + 1 / 3) / 2)


def test_classes_are_averaged_with_equal_weight():
    predicted = [box(0, 0, 10, 10, class_id=0), box(20, 20, 30, 30, class_id=1)]
    reference = [box(0, 0, 10, 10, class_id=0), box(20, 20, 30, 30, class_id=2)]
    # class 0 scores 1, class 1 (predicted only) 0, class 2 (reference only) 0
    assert image_miou(predicted, reference) == pytest.approx(1 / 3)


def test_wrong_class_scores_zero():
    assert image_miou([box(0, 0, 10, 10, class_id=1)], [box(0, 0, 10, 10, class_id=0)]) == 0.0


def test_empty_sides():
    assert image_miou([], []) == 1.0
    assert image_miou([], [box(0, 0, 1, 1)]) == 0.0
    assert image_miou([box(0, 0, 1, 1)], []) == 0.0


def test_mean_image_miou():
    pairs = [([box(0, 0, 10, 10)], [box(0, 0, 10, 5)]), ([], [])]
    assert mean_image_miou(pairs) == pytest.approx(0.75)
    with pytest.raises(ValueError, match="at least one"):
        mean_image_miou([])


boxes_strategy = st.lists(
    st.builds(
        lambda class_id, x, y, w, h: Box(class_id=class_id, left=x, top=y, width=w, height=h),
        st.integers(0, 2),
        st.integers(0, 60),
        st.integers(0, 60),
        st.integers(1, 40),
        st.integers(1, 40),
    ),
    max_size=6,
)


@settings(max_examples=150, deadline=None)
@given(boxes_strategy)
def test_identical_boxes_score_one(boxes):
    assert image_miou(boxes, list(boxes)) == pytest.approx(1.0)


@settings(max_examples=150, deadline=None)
@given(boxes_strategy, boxes_strategy, st.randoms(use_true_random=False))
def test_permutation_invariant_bounded_and_symmetric(predicted, reference, rng: random.Random):
    score = image_miou(predicted, reference)
    assert 0.0 <= score <= 1.0
    assert image_miou(reference, predicted) == pytest.approx(score)
    shuffled_predicted = rng.sample(predicted, len(predicted))
    shuffled_reference = rng.sample(reference, len(reference))
    assert image_miou(shuffled_predicted, shuffled_reference) == pytest.approx(score)


def test_coco_map_perfect_predictions():
    references = {"a": [box(0, 0, 10, 10), box(20, 20, 40, 40, class_id=1)], "b": [box(5, 5, 50, 50)]}
    predictions = {
        image_id: [ScoredBox(**b.model_dump(), score=0.9) for b in boxes] for image_id, boxes in references.items()
    }
    result = coco_map(predictions, references, {"a": (64, 64), "b": (64, 64)}, class_ids=[0, 1])
    assert result.map50 == pytest.approx(1.0)
    assert result.map50_95 == pytest.approx(1.0)


def test_coco_map_half_recall():
    # precision 1 up to recall 0.5, nothing beyond: 51 of COCO's 101 recall points
    references = {"a": [box(0, 0, 10, 10)], "b": [box(0, 0, 10, 10)]}
    result = coco_map({"a": [scored(0, 0, 10, 10)]}, references, {"a": (32, 32), "b": (32, 32)}, class_ids=[0])
    assert result.map50 == pytest.approx(51 / 101)
    assert result.map50_95 == pytest.approx(51 / 101)


def test_coco_map_loose_box_counts_only_at_low_iou_thresholds():
    # IoU 0.62 matches at 0.50, 0.55 and 0.60: three of the ten thresholds
    result = coco_map({"a": [scored(0, 0, 100, 62)]}, {"a": [box(0, 0, 100, 100)]}, {"a": (128, 128)}, class_ids=[0])
    assert result.map50 == pytest.approx(1.0)
    assert result.map50_95 == pytest.approx(0.3)


def test_coco_map_without_predictions_is_zero():
    assert coco_map({}, {"a": [box(0, 0, 10, 10)]}, {"a": (32, 32)}, class_ids=[0]).map50 == 0.0


def test_coco_map_rejects_bad_input():
    references = {"a": [box(0, 0, 10, 10)]}
    with pytest.raises(ValueError, match="without references"):
        coco_map({"zzz": [scored(0, 0, 1, 1)]}, references, {"a": (32, 32)}, class_ids=[0])
    with pytest.raises(ValueError, match="image_sizes lacks"):
        coco_map({}, references, {}, class_ids=[0])
    with pytest.raises(ValueError, match="class_id 3"):
        coco_map({"a": [scored(0, 0, 1, 1, class_id=3)]}, references, {"a": (32, 32)}, class_ids=[0])
    with pytest.raises(ValueError, match="at least one reference box"):
        coco_map({}, {"a": []}, {"a": (32, 32)}, class_ids=[0])


def test_coco_map_is_silent(capsys):
    coco_map({"a": [scored(0, 0, 10, 10)]}, {"a": [box(0, 0, 10, 10)]}, {"a": (32, 32)}, class_ids=[0])
    assert capsys.readouterr().out == ""
