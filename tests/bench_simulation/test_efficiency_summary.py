"""The efficiency benchmark's summary maths on hand-made part results, and the oracle's choice of auto-labels."""

from __future__ import annotations

import pytest

from boxloop.models import Prediction, ScoredBox
from simulation.efficiency_summary import (
    bound_margin,
    project_hours,
    repriced_hours,
    size_summary,
    spread,
    summarize,
    tables,
)
from simulation.oracle import oracle_auto


def _policy(name: str, hours: float, share: float, miou: float | None = 0.8, **fields) -> dict:
    return {
        "name": name, "images": 1000, "human_hours": hours, "initial_sample_hours": 0.0, "initial_sample_images": 0,
        "prefilled_hours": 0.0, "prefill_factor": 0.5, "budget_hours": 100.0, "auto_share": share,
        "auto_miou": miou, "iterations": [], **fields,
    }  # fmt: skip


def _part(seed: int, ours: float, theirs: float, size: int = 1000, anchoring: float = 0.3) -> dict:
    return {
        "seed": seed, "size": size, "anchoring": anchoring,
        "policies": [_policy("boxloop", ours, 0.8), _policy("ground-truth-style", theirs, 0.7, 0.75),
                     _policy("oracle", ours, 0.9)],
    }  # fmt: skip


POLICIES = ["ground-truth-style", "boxloop", "oracle"]


def test_spread_is_mean_and_range_of_the_known_values() -> None:
    assert spread([1.0, None, 3.0, 2.0]) == {"mean": 2.0, "min": 1.0, "max": 3.0, "n": 3}
    assert spread([None]) == {"mean": None, "min": None, "max": None, "n": 0}


def test_the_verdict_uses_the_ratio_of_means_and_says_whether_ranges_overlap() -> None:
    parts = [_part(0, ours=1.0, theirs=4.0), _part(1, ours=3.0, theirs=4.0)]
    summary = size_summary(parts, POLICIES, lambda p: p["human_hours"])
    assert summary["policies"]["boxloop"]["human_hours"] == {"mean": 2.0, "min": 1.0, "max": 3.0, "n": 2}
    ratio = summary["ratio"]
    assert ratio["of_means"] == pytest.approx(0.5)
    assert (ratio["per_seed"]["min"], ratio["per_seed"]["max"]) == (pytest.approx(0.25), pytest.approx(0.75))
    assert ratio["met"] and not ratio["hours_ranges_overlap"]
    assert summary["oracle"]["share_ratio"]["mean"] == pytest.approx(0.8 / 0.9)
    close = size_summary([_part(0, 3.0, 4.0), _part(1, 4.5, 5.0)], POLICIES, lambda p: p["human_hours"])
    assert close["ratio"]["hours_ranges_overlap"] and not close["ratio"]["met"]


def test_repricing_changes_only_the_pre_filled_seconds() -> None:
    policy = _policy("boxloop", 3.0, 0.5, prefilled_hours=1.0)
    assert repriced_hours(policy, 0.5) == pytest.approx(3.0)
    assert repriced_hours(policy, 0.8) == pytest.approx(3.6)
    assert repriced_hours(policy, 0.3) == pytest.approx(2.6)


def test_the_bound_margin_is_the_worst_iteration_that_auto_labelled() -> None:
    iterations = [
        {"auto_images": 10, "auto_miou": 0.70, "lower_bound": 0.62},
        {"auto_images": 5, "auto_miou": 0.64, "lower_bound": 0.61},
        {"auto_images": 0, "auto_miou": None, "lower_bound": 0.9},
    ]
    assert bound_margin(_policy("boxloop", 1.0, 0.5, iterations=iterations)) == pytest.approx(0.03)
    assert bound_margin(_policy("boxloop", 1.0, 0.0)) is None


def test_the_projection_holds_rates_fixed_and_grows_the_initial_sample_by_rule() -> None:
    policy = _policy("ground-truth-style", 3.0, 0.5, initial_sample_images=100, initial_sample_hours=1.0)
    # 0.01 h per initial image; (3 - 1) / 900 h per other image
    assert project_hours(policy, 10_000, lambda n: n // 10) == pytest.approx(1000 * 0.01 + 9000 * 2.0 / 900)
    whole = _policy("boxloop", 3.0, 0.0, initial_sample_images=1000, initial_sample_hours=3.0)
    assert project_hours(whole, 10_000, lambda n: 300) is None  # the rest of the corpus was never measured


def test_summarize_keeps_the_main_anchoring_and_compares_the_others() -> None:
    anchored = _part(0, 2.0, 4.0, anchoring=0.6)
    anchored["policies"] = [p for p in anchored["policies"] if p["name"] == "boxloop"]  # GT-style taken from 0.3's
    parts = [_part(0, 1.0, 4.0), _part(1, 3.0, 4.0), anchored]
    rules = {name: (lambda n: n // 10) for name in POLICIES}
    summary = summarize(parts, POLICIES, 0.3, rules)
    assert summary["sizes"]["1000"]["policies"]["boxloop"]["seeds"] == 2
    assert summary["anchoring_sensitivity"]["0.6"]["1000"]["of_means"] == pytest.approx(0.5)
    assert set(summary["prefill_sensitivity"]) == {"0.3", "0.5", "0.8"}
    with pytest.raises(ValueError, match="no part file at anchoring 0.9"):
        summarize(parts, POLICIES, 0.9, rules)


def test_the_projection_is_made_from_every_size_and_reported_from_the_largest() -> None:
    def part(size: int, seed: int, hours: float) -> dict:
        policy = _policy("boxloop", hours, 0.8, images=size, initial_sample_images=100, initial_sample_hours=1.0)
        return {"seed": seed, "size": size, "anchoring": 0.3, "policies": [policy]}

    parts = [part(1000, 0, 10.0), part(1000, 1, 19.0), part(2000, 0, 20.0)]
    summary = summarize(parts, ["boxloop"], 0.3, {"boxloop": lambda n: 100})
    row = summary["projection"]["boxloop"]
    # from 1,000: (10 - 1) / 900 and (19 - 1) / 900 h per image after the sample; from 2,000: 19 / 1,900
    n = 500_000 - 100
    assert row["by_size"]["1000"]["min"] == pytest.approx(1.0 + n * 0.01)
    assert row["by_size"]["1000"]["max"] == pytest.approx(1.0 + n * 0.02)
    assert row["by_size"]["2000"]["n"] == 1
    assert row["hours"] == row["by_size"]["2000"] and row["from_size"] == 2000
    assert "| boxloop | 7500 h (5000–9999) (2) | 5000 h (5000–5000) (1) |" in tables(summary, ["boxloop"])


def test_a_policy_whose_hours_stop_growing_fits_any_corpus_and_says_so() -> None:
    free_after_sample = _policy("oracle", 1.0, 0.9, initial_sample_images=100, initial_sample_hours=1.0)
    paid = _policy("boxloop", 2.0, 0.8, initial_sample_images=100, initial_sample_hours=1.0)
    part = {"seed": 0, "size": 1000, "anchoring": 0.3, "policies": [free_after_sample, paid]}
    summary = summarize([part], ["boxloop", "oracle"], 0.3, {"boxloop": lambda n: 100, "oracle": lambda n: 100})
    lines = tables(summary, ["boxloop", "oracle"]).splitlines()
    rows = {line.split(" | ")[0].strip("| "): line for line in lines if line.count(" | ") == 5}  # the projection
    assert rows["oracle"].split(" | ")[4] == "no limit"
    assert rows["boxloop"].split(" | ")[4] == "89,200"  # 1 h for the sample + (N − 100) / 900 h ≤ 100 h


def _prediction(image_id: str, left: float) -> Prediction:
    box = ScoredBox(class_id=0, left=left, top=0, width=10, height=10, score=0.9)
    return Prediction(image_id=image_id, boxes=[box], confidence=0.9)


def test_the_oracle_takes_the_longest_best_first_prefix_at_the_target() -> None:
    truth_box = ScoredBox(class_id=0, left=0, top=0, width=10, height=10, score=1.0)
    truth = {f"i{shift}": [truth_box] for shift in range(10)}
    predictions = [_prediction(f"i{shift}", float(shift)) for shift in range(10)]  # IoU falls as the shift grows
    auto, mean = oracle_auto(predictions, truth, target=0.6)
    assert mean >= 0.6
    chosen = {p.image_id for p in auto}
    assert chosen == {f"i{shift}" for shift in range(len(chosen))}  # best first
    more, _ = oracle_auto(predictions, truth, target=0.5)
    assert len(more) > len(auto)
    assert oracle_auto(predictions[5:], truth, target=0.99) == ([], None)
