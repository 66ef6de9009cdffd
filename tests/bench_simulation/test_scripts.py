"""The benchmark scripts end to end on tiny corpora with the tiny detector: they run, print and write results."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

from .conftest import BENCH_DIR, TINY_DETECTOR


def _script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH_DIR / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _outputs(folder: Path, name: str) -> list[str]:
    """Results and plot into the test's folder (the defaults are the recorded ones in docs/benchmarks/)."""
    return ["--json", str(folder / f"{name}.json"), "--plot", str(folder / "plot.png")]


def test_efficiency_compares_the_four_policies(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    efficiency = _script("efficiency")
    argv = ["--work", str(tmp_path), "--images", "40", "--max-iterations", "1", "--epochs", "1"]
    assert efficiency.main([*argv, *_outputs(tmp_path, "efficiency"), *TINY_DETECTOR]) == 0
    document = json.loads((tmp_path / "efficiency.json").read_text())
    names = [policy["name"] for policy in document["policies"]]
    assert names == ["all-manual", "boxloop", "boxloop-human-parity", "ground-truth-style"]
    assert all(p["human_images"] + p["auto_images"] == 40 for p in document["policies"])
    assert (tmp_path / "plot.png").stat().st_size > 0
    printed = capsys.readouterr().out
    assert "| ground-truth-style |" in printed and "goal (boxloop hours" in printed


def test_guarantee_counts_failures_per_target_and_rule(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    guarantee = _script("guarantee")
    argv = ["--work", str(tmp_path), "--runs", "2", "--images", "40", "--initial", "30", "--epochs", "1"]
    assert guarantee.main([*argv, "--targets", "0.3", "0.9", *_outputs(tmp_path, "guarantee"), *TINY_DETECTOR]) == 0
    document = json.loads((tmp_path / "guarantee.json").read_text())
    assert len(document["runs"]) == 2
    assert {(row["target"], row["rule"]) for row in document["summary"]} == {
        (0.3, "lower-bound"),
        (0.3, "point-estimate"),
        (0.9, "lower-bound"),
        (0.9, "point-estimate"),
    }
    for run in document["runs"]:
        for outcome in run["outcomes"]:
            assert outcome["failed"] == (
                outcome["realised_miou"] is not None and outcome["realised_miou"] < outcome["target"]
            )
    assert "goal (lower-bound failure share" in capsys.readouterr().out


def test_guarantee_summary_counts_a_run_without_auto_labels_as_no_failure() -> None:
    guarantee = _script("guarantee")
    runs = [
        {
            "pool_images": 10,
            "outcomes": [
                {"target": 0.6, "rule": "lower-bound", "auto_images": 0, "realised_miou": None, "failed": False},
                {"target": 0.6, "rule": "point-estimate", "auto_images": 5, "realised_miou": 0.5, "failed": True},
            ],
        },
        {
            "pool_images": 10,
            "outcomes": [
                {"target": 0.6, "rule": "lower-bound", "auto_images": 10, "realised_miou": 0.8, "failed": False},
                {"target": 0.6, "rule": "point-estimate", "auto_images": 10, "realised_miou": 0.8, "failed": False},
            ],
        },
    ]
    bound, point = guarantee.summary(runs, [0.6])
    assert (bound["failures"], bound["runs_auto_labelling"], bound["mean_auto_share"]) == (0, 1, 0.5)
    assert (point["failures"], point["failure_share"], point["mean_realised_miou"]) == (1, 0.5, pytest.approx(0.65))


def test_downstream_trains_on_both_label_sets(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    downstream = _script("downstream")
    argv = ["--work", str(tmp_path), "--images", "40", "--held-out", "12", "--loop-iterations", "1"]
    argv += ["--loop-epochs", "1", "--epochs", "1", *_outputs(tmp_path, "downstream")]
    assert downstream.main([*argv, *TINY_DETECTOR]) == 0
    document = json.loads((tmp_path / "downstream.json").read_text())
    assert set(document["held_out"]) == {"boxloop labels", "true labels"}
    reference = document["held_out"]["true labels"]["map50"]
    if reference > 0:  # the tiny model after one epoch may find nothing at all
        assert document["map50_ratio"] == pytest.approx(document["held_out"]["boxloop labels"]["map50"] / reference)
    else:
        assert document["map50_ratio"] is None
    assert "goal (mAP@0.5 ratio" in capsys.readouterr().out
