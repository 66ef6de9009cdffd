"""The benchmark scripts end to end on tiny corpora with the tiny detector: they run, print and write results."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

from boxloop.config import LabelingConfig
from simulation.corpus_images import corpus_classes
from simulation.policy import boxloop_policy

from .conftest import BENCH_DIR, TINY_DETECTOR


def _script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH_DIR / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _outputs(folder: Path, name: str) -> list[str]:
    """Results and plot into the test's folder (the defaults are the recorded ones in docs/benchmarks/)."""
    return ["--json", str(folder / f"{name}.json"), "--plot", str(folder / "plot.png")]


TINY_LOOP = ["--max-iterations", "1", "--epochs", "1", "--boxloop-override"]
TINY_BOXLOOP = (
    '{"initial_sample_size": 24, "human_batch_size": 8, "auto_label": true, "quality": {"min_validation_images": 5}}'
)


def test_efficiency_compares_the_policies_per_size_and_seed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    efficiency = _script("efficiency")
    argv = ["--work", str(tmp_path), "--sizes", "40", "--seeds", "1", *TINY_LOOP, TINY_BOXLOOP]
    assert efficiency.main([*argv, *_outputs(tmp_path, "efficiency"), *TINY_DETECTOR]) == 0
    part = json.loads((tmp_path / "parts" / "mixed-40-s0-a0.3-f0.5.json").read_text())
    names = [policy["name"] for policy in part["policies"]]
    assert names == ["all-manual", "ground-truth-style", "boxloop", "oracle"]
    assert all(p["human_images"] + p["auto_images"] == 40 for p in part["policies"])
    assert part["kinds"] == {"cluttered": 8, "lifestyle": 16, "studio": 16}
    document = json.loads((tmp_path / "efficiency.json").read_text())
    assert document["summary"]["sizes"]["40"]["policies"]["boxloop"]["seeds"] == 1
    assert (tmp_path / "plot.png").stat().st_size > 0
    printed = capsys.readouterr().out
    assert "| 40 | ground-truth-style | 1 |" in printed and "Projection: per policy and seed" in printed


def _hours(mean: float) -> dict:
    return {"human_hours": {"mean": mean, "min": mean - 1, "max": mean + 1, "n": 2}}


def test_the_efficiency_plot_draws_a_trend_over_sizes_and_bars_for_one_size() -> None:
    efficiency = _script("efficiency")
    policies = ["ground-truth-style", "boxloop"]
    by_size = {"policies": {"ground-truth-style": _hours(9.0), "boxloop": _hours(10.0)}}
    one_size = efficiency.hours_figure({"sizes": {"2000": by_size}}, policies)
    axis = one_size.axes[0]
    assert [tick.get_text() for tick in axis.get_xticklabels()] == policies
    assert [bar.get_height() for bar in axis.patches] == [9.0, 10.0]
    assert axis.get_xlabel() == "policy, 2,000 images"
    sizes = efficiency.hours_figure({"sizes": {"4000": by_size, "2000": by_size}}, policies)
    assert not sizes.axes[0].patches
    assert list(sizes.axes[0].lines[0].get_xdata()) == [2000, 4000]
    efficiency.plt.close("all")


def test_efficiency_reuses_part_files_and_summarizes_without_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    efficiency = _script("efficiency")
    argv = ["--work", str(tmp_path), "--sizes", "10,20", "--seeds", "1", "--policies", "all-manual"]
    assert efficiency.main([*argv, "--corpus", "retail", "--parts-only", *TINY_DETECTOR]) == 0
    assert len(list((tmp_path / "parts").glob("retail-*.json"))) == 2
    assert len(list((tmp_path / "corpora").iterdir())) == 1  # the 10-image corpus is a prefix of the 20-image one
    assert capsys.readouterr().out == ""

    def no_more_runs(*args, **kwargs):
        raise AssertionError("a part that exists was run again")

    monkeypatch.setattr(efficiency, "run_part", no_more_runs)
    argv += ["--corpus", "retail", *TINY_DETECTOR]
    assert efficiency.main([*argv, *_outputs(tmp_path, "efficiency")]) == 0
    assert "| 20 | all-manual | 1 |" in capsys.readouterr().out
    with pytest.raises(ValueError, match="use another --work"):
        efficiency.main([*argv, "--summarize", "--target", "0.7", *_outputs(tmp_path, "e")])


def _kinds(work: Path) -> set[str]:
    """The kinds of image in the corpora a benchmark generated under ``work`` (``mixed-<kind>-s<seed>-n<n>``)."""
    return {folder.name.split("-")[1] for folder in (work / "corpora").iterdir()}


def test_guarantee_counts_failures_per_target_and_rule(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    guarantee = _script("guarantee")
    argv = ["--work", str(tmp_path), "--runs", "2", "--images", "40", "--initial", "30", "--epochs", "1"]
    assert guarantee.main([*argv, "--targets", "0.3", "0.9", *_outputs(tmp_path, "guarantee"), *TINY_DETECTOR]) == 0
    document = json.loads((tmp_path / "guarantee.json").read_text())
    assert len(document["runs"]) == 2
    assert document["settings"]["corpus"] == "mixed" and _kinds(tmp_path) == {"studio", "lifestyle", "cluttered"}
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
    assert document["settings"]["corpus"] == "mixed" and _kinds(tmp_path) == {"studio", "lifestyle", "cluttered"}
    planned = boxloop_policy(corpus_classes("mixed"), 1, n_images=40, human_budget_hours=100.0).config
    assert (
        document["loop"]["initial_sample_size"]
        == planned.initial_sample_size
        != LabelingConfig.model_fields["initial_sample_size"].default
    ), "the loop labels with boxloop run's sizes for the corpus, not the configuration defaults"
    assert document["loop"]["classes"] == list(corpus_classes("mixed"))
    reference = document["held_out"]["true labels"]["map50"]
    if reference > 0:  # the tiny model after one epoch may find nothing at all
        assert document["map50_ratio"] == pytest.approx(document["held_out"]["boxloop labels"]["map50"] / reference)
    else:
        assert document["map50_ratio"] is None
    assert "goal (mAP@0.5 ratio" in capsys.readouterr().out
