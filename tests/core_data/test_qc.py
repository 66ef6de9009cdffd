"""Human label QC: rules, size statistics, gold scoring, consensus, the initial-sample gate."""

from __future__ import annotations

import math

import pytest

from boxloop.config import QcConfig
from boxloop.models import Box
from boxloop.qc import (
    ClassSizeStats,
    HumanQualityError,
    check_rules,
    consolidate_answers,
    initial_sample_gate,
    score_workers_on_gold,
    workers_below_gold_minimum,
)

QC = QcConfig()


def box(left: float, top: float, width: float, height: float, class_id: int = 0) -> Box:
    return Box(class_id=class_id, left=left, top=top, width=width, height=height)


def test_clean_answer_passes():
    assert (
        check_rules([box(10, 10, 50, 40), box(100, 10, 50, 40), box(10, 10, 50, 40, class_id=1)], 640, 480, 2, QC) == []
    )


def test_box_may_overshoot_within_tolerance_only():
    assert check_rules([box(-2, 0, 20, 20), box(600, 460, 42, 22)], 640, 480, 1, QC) == []
    reasons = check_rules([box(-5, 0, 20, 20)], 640, 480, 1, QC)
    assert reasons == ["box 1 (class 0) extends 5.0 px outside the 640x480 image (tolerance 2 px)"]
    assert "extends 3.0 px outside" in check_rules([box(600, 10, 43, 10)], 640, 480, 1, QC)[0]


def test_too_small_box_is_rejected():
    assert check_rules([box(10, 10, 1.5, 30)], 640, 480, 1, QC) == [
        "box 1 (class 0) is 1.5x30.0 px, below the minimum side of 2 px"
    ]


def test_unknown_class_is_rejected():
    assert check_rules([box(10, 10, 20, 20, class_id=3)], 640, 480, 3, QC) == [
        "box 1 has unknown class id 3 (the configuration has 3 classes)"
    ]


def test_near_duplicates_of_the_same_class_are_rejected():
    boxes = [box(10, 10, 100, 100), box(11, 11, 100, 100), box(10, 10, 100, 100, class_id=1), box(300, 300, 50, 50)]
    assert check_rules(boxes, 640, 480, 2, QC) == ["boxes 1 and 2 (class 0) are near-duplicates (IoU 0.96 >= 0.9)"]


def size_stats() -> ClassSizeStats:
    sides = [40 + (i % 7) for i in range(30)]
    return ClassSizeStats.from_labels(
        [[box(0, 0, side, side) for side in sides], [box(0, 0, 5, 5, class_id=1)]], min_count=20
    )


def test_size_stats_need_a_minimum_count():
    stats = size_stats()
    assert set(stats.per_class) == {0}
    assert stats.per_class[0].count == 30
    assert stats.per_class[0].median == pytest.approx(math.log(43 * 43))
    assert stats.robust_z(box(0, 0, 5, 5, class_id=1)) is None


def test_size_outliers_are_flagged_against_class_statistics():
    stats = size_stats()
    assert check_rules([box(0, 0, 45, 41)], 640, 480, 2, QC, stats) == []
    reasons = check_rules([box(0, 0, 400, 400)], 640, 480, 2, QC, stats)
    assert len(reasons) == 1 and reasons[0].startswith("box 1 (class 0) is a size outlier: robust z-score +")
    assert "size outlier" in check_rules([box(0, 0, 3, 3)], 640, 480, 2, QC, stats)[0]
    assert check_rules([box(0, 0, 3, 3, class_id=1)], 640, 480, 2, QC, stats) == []


def test_constant_sizes_do_not_flag_small_differences():
    stats = ClassSizeStats.from_labels([[box(0, 0, 50, 50)] * 25])
    assert stats.per_class[0].mad == 0.0
    assert check_rules([box(0, 0, 52, 52)], 640, 480, 1, QC, stats) == []


def test_gold_scores_and_flags_weak_workers():
    gold = [box(0, 0, 100, 100)]
    scores = score_workers_on_gold(
        [
            ("good", gold, gold),
            ("good", [box(0, 0, 100, 50)], gold),
            ("bad", [], gold),
            ("bad", gold, gold),
            ("bad", [], gold),
        ]
    )
    assert scores["good"].gold_images == 2 and scores["good"].mean_miou == pytest.approx(0.75)
    assert scores["bad"].mean_miou == pytest.approx(1 / 3)
    assert workers_below_gold_minimum(scores, QC) == ["bad"]


def test_consensus_averages_matched_boxes_and_keeps_majority():
    answers = [
        [box(10, 10, 100, 100), box(300, 300, 20, 20, class_id=1)],
        [box(14, 12, 100, 100), box(500, 10, 30, 30)],
        [box(12, 8, 100, 104), box(302, 300, 20, 20, class_id=1)],
    ]
    assert consolidate_answers(answers) == [box(12, 10, 100, 101.33333333333333), box(301, 300, 20, 20, class_id=1)]


def test_consensus_does_not_match_across_classes_or_below_iou():
    answers = [[box(0, 0, 50, 50, class_id=0)], [box(0, 0, 50, 50, class_id=1)], [box(40, 40, 50, 50, class_id=0)]]
    assert consolidate_answers(answers) == []


def test_consensus_matches_one_to_one_by_total_iou():
    first = [box(0, 0, 100, 100), box(60, 0, 100, 100)]
    second = [box(58, 0, 100, 100), box(2, 0, 100, 100)]
    merged = consolidate_answers([first, second])
    assert merged == [box(1, 0, 100, 100), box(59, 0, 100, 100)]


def test_single_answer_is_its_own_consensus_and_empty_input_is_an_error():
    answer = [box(5, 5, 10, 10, class_id=2), box(1, 1, 3, 3)]
    assert consolidate_answers([answer]) == sorted(answer, key=lambda b: (b.class_id, b.left))
    with pytest.raises(ValueError, match="no answers"):
        consolidate_answers([])


def test_initial_sample_gate_message():
    initial_sample_gate(5, 50, 0.10)
    with pytest.raises(HumanQualityError) as raised:
        initial_sample_gate(7, 50, 0.10)
    assert str(raised.value) == (
        "7 of 50 initial human labels (14%) failed QC; the allowed share is 10%: "
        "check the workforce and instructions before restarting"
    )
    with pytest.raises(ValueError, match="n_total > 0"):
        initial_sample_gate(0, 0, 0.1)
