"""``bench/cost.py``: the cost arithmetic on a small hand-made efficiency.json and usage.json."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

from boxloop.local.usage import JobUsage, LambdaFunctionUsage, RunUsage, StepFunctionsUsage

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "cost.py"


@pytest.fixture(scope="module")
def cost() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_cost", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_cost"] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def _policy(name: str, human_hours: float, human_images: int, auto_images: int, iterations: list[dict]) -> dict:
    return {
        "name": name, "human_hours": human_hours, "human_images": human_images, "auto_images": auto_images,
        "auto_share": auto_images / 4000, "auto_miou": None, "human_miou": 0.91, "trained_iterations": len(iterations),
        "wall_seconds": 1.0, "iterations": iterations,
    }  # fmt: skip


def _iteration(train_seconds: float, inference_images: int) -> dict:
    return {
        "iteration": 1, "train_images": 200, "train_seconds": train_seconds, "inference_images": inference_images,
        "inference_seconds": 1.0, "threshold": 0.0, "target": 0.6, "auto_images": 1, "human_images": 1,
        "human_seconds": 1.0,
    }  # fmt: skip


EFFICIENCY = {
    "benchmark": "efficiency", "date": "2026-11-22T23:10:00Z", "machine": "2 CPU cores", "command": "bench/efficiency.py",
    "corpus": {"images": 4000, "easy_share": 0.5, "seed": 0, "image_size": 256},
    "detector": {"model": "centernet-effnet-lite0", "image_size": 128, "train_seconds_per_iteration": 3600},
    "policies": [
        _policy("all-manual", 20.0, 4000, 0, []),
        _policy("ground-truth-style", 8.0, 1600, 2400, [_iteration(3600, 3600), _iteration(3600, 2000)]),
        _policy("boxloop", 2.0, 400, 2000, [_iteration(3600, 3600)]),
    ],
}  # fmt: skip

PROJECTED = {"boxloop": 60.0, "ground-truth-style": 300.0, "all-manual": 2_800.0}
"""Human hours at 500,000 images as a multi-seed efficiency file projects them (all-manual's 2,800 h at its measured
200 images an hour would be 560,000 images: more than the corpus)."""

INGEST = "lambdas.ingest.handler.handler"
PUBLISH = "lambdas.loop.publish_manifest_version.handler"


def _usage(images: int = 4000, human: int = 400, inference: int = 3600) -> RunUsage:
    """A local run of the boxloop policy's own shape (so every scale factor is 1) unless told otherwise."""
    return RunUsage(
        run_id="run-1",
        processes=1,
        images_total=images,
        images_auto_labelled=images - human,
        images_human_labelled=human,
        iterations=2,
        lambda_functions=[
            LambdaFunctionUsage(
                function="Ingest", handler=INGEST, memory_mb=1024, invocations=images, total_seconds=images * 0.1
            ),
            LambdaFunctionUsage(function="Publish", handler=PUBLISH, memory_mb=2048, invocations=2, total_seconds=10.0),
        ],
        step_functions=StepFunctionsUsage(executions=["run-1-i0000"], states_entered=30, map_child_transitions=10),
        training_jobs=[JobUsage(job_name="t", status="Completed", wall_seconds=60.0)],
        transform_jobs=[JobUsage(job_name="i", status="Completed", wall_seconds=60.0, input_records=inference)],
        sqs_messages_sent={"IngestUploadQueue73E94F33": images, "HumanReviewHumanReviewQueueC588DCCD": 2},
    )


@pytest.mark.parametrize(
    ("objects", "fee"),
    [
        (0, 0.0),
        (10_000, 800.0),
        (50_000, 4_000.0),
        (50_001, 4_000.04),
        (500_000, 4_000.0 + 450_000 * 0.04),
        (1_000_000, 4_000.0 + 38_000.0),
        (1_000_010, 42_000.0 + 10 * 0.02),
    ],
)
def test_ground_truth_fee_is_tiered_across_boundaries(cost: ModuleType, objects: int, fee: float) -> None:
    assert cost.ground_truth_fee(objects) == pytest.approx(fee)


def test_per_1000_auto_labels_adds_every_component(cost: ModuleType) -> None:
    efficiency = cost.EfficiencyResult.model_validate(EFFICIENCY)
    inputs = cost.CostInputs("ml.g4dn.xlarge", "ml.c5.xlarge", 0.1)

    report = cost.cost_report(efficiency, _usage(), inputs, images=500_000, human_rate=15.0)

    measured = report["measured_run"]["compute"]
    assert measured["training"] == pytest.approx(0.736)  # one hour of ml.g4dn.xlarge
    # the stack's transform reads the whole pool (4,000 images) each trained iteration
    assert measured["transform"] == pytest.approx(4000 * 0.1 / 3600 * 0.204)
    assert measured["lambda_requests"] == pytest.approx(4002 * 0.20 / 1e6)
    assert measured["lambda_duration"] == pytest.approx(
        (400.0 + 20.0) * 0.0000166667
    )  # 4000 × 0.1 s × 1 GB + 10 s × 2 GB
    assert measured["step_functions"] == pytest.approx(40 * 0.025 / 1000)
    assert measured["sqs"] == pytest.approx(4002 * 3 * 0.40 / 1e6)
    assert measured["s3_requests"] == pytest.approx((4000 + 3600 + 200) * 0.0004 / 1000 + 2 * 400 * 0.005 / 1000)
    total = sum(measured.values())
    assert report["measured_run"]["per_1000_auto_labels_total"] == pytest.approx(total / 2000 * 1000)
    assert report["measured_run"]["goal_met"] is (total / 2 <= 0.10)


def test_usage_scales_per_image_per_answer_and_per_iteration(cost: ModuleType) -> None:
    half = cost.RunShape.of_usage(_usage(images=2000, human=200, inference=1800))
    target = cost.RunShape.of_policy(cost.EfficiencyResult.model_validate(EFFICIENCY).policy("boxloop"), 4000)
    ingest, publish = _usage(images=2000, human=200, inference=1800).lambda_functions

    assert cost.scaled_lambda(ingest, half, target) == pytest.approx((4000, 2 * ingest.gb_seconds))
    # per iteration: same iterations, so the same count, but each reads a pool twice the size
    assert cost.scaled_lambda(publish, half, target) == pytest.approx((2, 2 * publish.gb_seconds))
    human_answers = LambdaFunctionUsage(
        function="Answer",
        handler="lambdas.human_review.answer.handler",
        memory_mb=1024,
        invocations=200,
        total_seconds=20.0,
    )
    assert cost.scaled_lambda(human_answers, half, target)[0] == pytest.approx(400)


def test_projection_is_linear_in_images_with_fees_on_the_projected_counts(cost: ModuleType) -> None:
    efficiency = cost.EfficiencyResult.model_validate(EFFICIENCY)
    inputs = cost.CostInputs("ml.g4dn.xlarge", "ml.c5.xlarge", 0.1)

    report = cost.cost_report(efficiency, _usage(), inputs, images=500_000, human_rate=15.0)

    projections = {p["policy"]: p for p in report["projections"]}
    assert list(projections) == ["boxloop", "ground-truth-style", "all-manual"]
    boxloop = projections["boxloop"]
    assert boxloop["human_images"] == pytest.approx(400 * 125)
    assert boxloop["object_fees"] == pytest.approx(400 * 125 * 0.08)  # A2I on every human-labelled image
    assert boxloop["human_labour"] == pytest.approx(2.0 * 125 * 15.0)
    assert boxloop["compute"] == pytest.approx(report["measured_run"]["compute_total"] * 125)
    ground_truth = projections["ground-truth-style"]
    assert ground_truth["object_fees"] == pytest.approx(22_000.0)  # every image, tiered
    training, transform = 2 * 0.736, 5600 * 0.1 / 3600 * 0.204  # two budgets of an hour, 5,600 pool images
    s3 = (4000 + 5600 + 400) * 0.0004 / 1000 + 2 * 1600 * 0.005 / 1000
    assert ground_truth["compute"] == pytest.approx(125 * (training + transform + s3))
    assert projections["all-manual"]["human_labour"] == pytest.approx(20.0 * 125 * 15.0)
    assert ground_truth["total"] == pytest.approx(ground_truth["compute"] + 22_000.0 + 8.0 * 125 * 15.0)


def test_the_efficiency_benchmarks_own_projection_sets_the_human_hours(cost: ModuleType) -> None:
    projection = {name: {"hours": {"mean": hours, "min": 0.0, "max": 0.0}} for name, hours in PROJECTED.items()}
    efficiency = cost.EfficiencyResult.model_validate(
        EFFICIENCY | {"projection_images": 500_000, "summary": {"projection": projection}}
    )
    inputs = cost.CostInputs("ml.g4dn.xlarge", "ml.c5.xlarge", 0.1)

    report = cost.cost_report(efficiency, _usage(), inputs, images=500_000, human_rate=15.0)

    projections = {p["policy"]: p for p in report["projections"]}
    boxloop = projections["boxloop"]
    assert boxloop["human_hours"] == 60.0 and boxloop["human_labour"] == pytest.approx(60.0 * 15.0)
    assert boxloop["human_images"] == pytest.approx(60.0 * 400 / 2.0)  # the measured run's 200 images an hour
    assert boxloop["object_fees"] == pytest.approx(60.0 * 200 * 0.08)
    assert boxloop["compute"] == pytest.approx(report["measured_run"]["compute_total"] * 125)  # compute stays linear
    assert projections["all-manual"]["human_images"] == 500_000  # never more images than the corpus has
    assert "own projection" in report["scaling"] and report["human_hours_projected"]
    elsewhere = cost.cost_report(efficiency, _usage(), inputs, images=100_000, human_rate=15.0)
    linear = {p["policy"]: p for p in elsewhere["projections"]}
    assert linear["boxloop"]["human_hours"] == pytest.approx(2.0 * 25) and not elsewhere["human_hours_projected"]
    del projection["all-manual"]  # a file that projects some policies only: none is priced from the projection
    partial = cost.EfficiencyResult.model_validate(
        EFFICIENCY | {"projection_images": 500_000, "summary": {"projection": projection}}
    )
    mixed = cost.cost_report(partial, _usage(), inputs, images=500_000, human_rate=15.0)
    assert {p["policy"]: p["human_hours"] for p in mixed["projections"]} == pytest.approx(
        {"boxloop": 2.0 * 125, "ground-truth-style": 8.0 * 125, "all-manual": 20.0 * 125}
    )


def test_the_script_prints_writes_its_figures_and_plots(
    cost: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "efficiency.json").write_text(json.dumps(EFFICIENCY))
    (tmp_path / "usage.json").write_text(_usage().to_json())

    status = cost.main([
        "--efficiency", str(tmp_path / "efficiency.json"), "--usage", str(tmp_path / "usage.json"),
        "--json", str(tmp_path / "cost.json"), "--plot", str(tmp_path / "cost.png"),
    ])  # fmt: skip

    assert status == 0
    out = capsys.readouterr().out
    assert "per 1,000 auto-labels" in out and "not verified in the stored pages" in out and "Goal:" in out
    figures = json.loads((tmp_path / "cost.json").read_text())
    assert figures["inputs"]["inference_seconds_per_image"] == 0.057
    assert (tmp_path / "cost.png").read_bytes()[:4] == b"\x89PNG"
