import numpy as np
import pytest

from boxloop.config import HumanParity, QualityConfig
from boxloop.models import Box, Prediction, ScoredBox
from boxloop.quality import image_miou
from boxloop.selection import routing_confidence
from boxloop.threshold import ThresholdDecision, choose_threshold
from boxloop.threshold_step import measure_validation, quality_target, threshold_step

BOX = Box(class_id=0, left=0, top=0, width=10, height=10)
SHIFTED = Box(class_id=0, left=5, top=0, width=10, height=10)


def _prediction(image_id: str, confidence: float, box: Box = BOX, error: str | None = None) -> Prediction:
    scored = [ScoredBox(**box.model_dump(), score=confidence)] if error is None else []
    return Prediction(
        image_id=image_id,
        source_ref="s3://b/x.jpg",
        width=32,
        height=32,
        boxes=scored,
        confidence=confidence,
        embedding=[],
        error=error,
    )


def test_validation_images_are_measured_once_in_image_id_order():
    reference = {"v1": [BOX], "v2": [BOX], "v3": [BOX], "v4": [BOX]}
    predictions = [
        _prediction("pool", 0.99),
        _prediction("v2", 0.8, SHIFTED),
        _prediction("v1", 0.9),
        _prediction("v1", 0.1),
        _prediction("v3", 0.5, error="decode failed"),
    ]
    measured = measure_validation(predictions, reference)
    assert measured.confidences == [0.9, 0.8]
    assert measured.qualities == pytest.approx([1.0, 1 / 3])
    assert measured.failed_predictions == 1 and measured.without_prediction == 1
    assert measured.mean_quality == pytest.approx(2 / 3)
    assert measure_validation([], {}).mean_quality is None


def test_the_betting_bound_does_not_depend_on_the_order_predictions_arrive_in():
    rng = np.random.default_rng(3)
    ids = [f"{n:064x}" for n in rng.permutation(40)]
    reference = {image_id: [BOX] for image_id in ids}
    predictions = [
        _prediction(image_id, float(c), BOX if rng.uniform() < c else SHIFTED)
        for image_id, c in zip(ids, rng.uniform(0.3, 1.0, len(ids)), strict=True)
    ]
    quality = QualityConfig(target_miou=0.6, min_validation_images=10, bound="betting")
    arrival_bounds, documents = set(), []
    for seed in range(8):  # the same predictions, as differently sharded or iterated
        shuffled = [predictions[i] for i in np.random.default_rng(seed).permutation(len(predictions))]
        in_arrival_order = (
            [routing_confidence(p) for p in shuffled],
            [image_miou(p.boxes, reference[p.image_id]) for p in shuffled],
        )
        arrival_bounds.add(tuple(point.lower_bound for point in choose_threshold(*in_arrival_order, 0.6, 0.05).curve))
        measured = measure_validation(shuffled, reference)
        documents.append(threshold_step(measured, quality, list, iteration=1, model_version="m", computed_at="t"))

    assert len(arrival_bounds) > 1  # read in arrival order, the same images give different bounds
    assert all(document == documents[0] for document in documents)


def test_the_target_is_the_configured_one_unless_human_parity_measures_it():
    def no_gold() -> list[float]:
        raise AssertionError("gold scores read without human parity")

    assert quality_target(QualityConfig(target_miou=0.7), no_gold) == (0.7, None)
    parity = QualityConfig(human_parity=HumanParity(min_measured_images=2, margin=0.05))
    target, decision = quality_target(parity, lambda: [0.9, 0.8])
    assert target == pytest.approx(0.8) and decision.source == "human-parity"


def test_the_step_uses_the_configured_guaranteed_threshold_by_default():
    rng = np.random.default_rng(0)
    reference = {f"v{n}": [BOX] for n in range(80)}
    predictions = [
        _prediction(f"v{n}", float(c), BOX if c > 0.4 else SHIFTED) for n, c in enumerate(rng.uniform(0, 1, 80))
    ]
    measured = measure_validation(predictions, reference)
    quality = QualityConfig(target_miou=0.6, min_validation_images=10, bound="hoeffding-bentkus")
    document = threshold_step(measured, quality, list, iteration=2, model_version="job", computed_at="now")
    expected = choose_threshold(
        measured.confidences, measured.qualities, 0.6, quality.delta, min_count=10, bound="hoeffding-bentkus"
    )
    assert document.decision == expected and document.decision.threshold is not None
    assert (document.iteration, document.model_version, document.computed_at, document.target) == (
        2,
        "job",
        "now",
        None,
    )
    assert document.validation_miou == measured.mean_quality


def test_the_step_takes_another_rule_for_benchmarks():
    measured = measure_validation([_prediction("v", 0.9)], {"v": [BOX]})
    seen = []

    def rule(confidences, qualities, target) -> ThresholdDecision:
        seen.append((confidences, qualities, target))
        return choose_threshold(confidences, qualities, target, 0.1, min_count=1)

    threshold_step(
        measured, QualityConfig(target_miou=0.5), list, iteration=1, model_version="m", computed_at="", rule=rule
    )
    assert seen == [([0.9], [1.0], 0.5)]
