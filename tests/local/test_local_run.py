"""End to end: ``boxloop run`` on a tiny corpus, interrupted mid-iteration and resumed, then its outputs checked.

One run serves every assertion (module fixture): 120 generated 64 px images plus one file
that is not an image, the tiny detector with the shortest training time, the random initial sample in
waves, one trained iteration, then people finish what is left in waves until the budget binds (it pays
for fewer than the 120 images, so the budget, not the pool, ends the run).
The run is started as a subprocess, terminated once its first manifest version is published
and saved (so it stops inside iteration 1), and continued with ``--resume``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from pycocotools.coco import COCO

from boxloop.cli import main
from boxloop.corpus import CLASS_NAMES, CorpusSpec, generate_corpus
from boxloop.models import IterationMetrics, LabelSource
from tests.output_readers import read_manifest_file, read_voc, read_yolo

PROJECT_ROOT = Path(__file__).resolve().parents[2]
N_IMAGES = 120
BAD_FILE = "not-really.jpg"
CONFIG = {
    "classes": list(CLASS_NAMES),
    "quality": {"target_miou": 0.6, "delta": 0.05, "min_validation_images": 5},
    "human_budget_hours": 0.4,
    "initial_sample_size": 40,
    "validation_share": 0.4,
    "human_batch_size": 100,
    "audit_size": 5,
    "max_iterations": 1,
    "min_images_to_start": 100,
    "workforce": {"kind": "simulated", "batch_timeout_seconds": 600},
}
TRAINING = ["--detector", "tiny", "--min-steps", "1", "--train-seconds", "60"]
"""The tiny detector for its epochs (6 steps of 24 training images), no step floor: the local default floor of 100
steps hit the 60 s safety stop on a busy 2-core machine, which made what the run trained depend on its speed."""
FIRST_VERSION_TIMEOUT = 240
RUN_TIMEOUT = 480


@dataclass(frozen=True)
class FinishedRun:
    out_dir: Path
    run_dir: Path
    first_version_files: dict[str, bytes]
    interrupted_rc: int
    resumed: subprocess.CompletedProcess[str]


def _command(images: Path, truth: Path, config: Path, out_dir: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "boxloop.cli", "run", "--images", str(images), "--truth", str(truth),
        "--config", str(config), "--out", str(out_dir), *TRAINING, *extra,
    ]  # fmt: skip


def _version_files(run_dir: Path, version: int) -> dict[str, bytes]:
    folder = run_dir / "manifests" / f"v{version:04d}"
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> FinishedRun:
    root = tmp_path_factory.mktemp("local-run")
    corpus = root / "corpus"
    generate_corpus(CorpusSpec(n_images=N_IMAGES, image_size=64, seed=3), corpus, workers=1)
    (corpus / "images" / BAD_FILE).write_bytes(b"this is not a JPEG")
    config = root / "labeling.json"
    config.write_text(json.dumps(CONFIG))
    out_dir = root / "out"
    command = _command(corpus / "images", corpus / "truth.json", config, out_dir)
    environment = {**os.environ, "PYTHONUNBUFFERED": "1"}

    with (root / "first.log").open("w") as log:
        first = subprocess.Popen(command, cwd=PROJECT_ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT)
        snapshot = out_dir / "latest" / ".state" / "snapshot.json"
        deadline = time.monotonic() + FIRST_VERSION_TIMEOUT
        while not snapshot.exists() and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.5)
        if first.poll() is not None or not snapshot.exists():
            first.kill()
            first.wait()
            pytest.fail(f"the run saved no published version:\n{(root / 'first.log').read_text()[-3000:]}")
        first.send_signal(signal.SIGTERM)
        interrupted_rc = first.wait(timeout=120)
    run_dir = (out_dir / "latest").resolve()
    first_version_files = _version_files(run_dir, 1)

    resumed = subprocess.run(
        [*command, "--resume"], cwd=PROJECT_ROOT, env=environment, capture_output=True, text=True,
        timeout=RUN_TIMEOUT,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    return FinishedRun(out_dir, run_dir, first_version_files, interrupted_rc, resumed)


def _records(run: FinishedRun) -> list:
    return list(read_manifest_file(run.run_dir / "output.manifest", "bounding-box"))


def _metrics(run: FinishedRun) -> list[IterationMetrics]:
    paths = sorted((run.run_dir / "iterations").glob("*/metrics.json"))
    return [IterationMetrics.model_validate_json(path.read_bytes()) for path in paths]


@pytest.mark.timeout(900)
def test_every_image_is_in_the_final_manifest_once_with_provenance(finished_run: FinishedRun) -> None:
    records = _records(finished_run)
    ids = [record.image_id for record in records]
    report = json.loads((finished_run.run_dir / "report.json").read_text())
    assert len(ids) == len(set(ids)) == N_IMAGES - report["images_unlabelled"]
    for record in records:
        assert record.label_source in set(LabelSource)
        assert record.job_name and record.creation_date
        if record.label_source is LabelSource.AUTO:
            assert record.threshold is not None and record.model_version
        else:
            assert record.worker_ids and record.time_spent_seconds is not None


@pytest.mark.timeout(900)
def test_training_ran_its_planned_steps_not_into_the_safety_stop(finished_run: FinishedRun) -> None:
    logs = [path.read_text() for path in sorted((finished_run.out_dir / "job-logs").glob("*-train.log"))]
    assert logs, "the run trained no detector"
    for log in logs:  # what was trained must not depend on the machine's speed
        assert "safety stop:" not in log and "max_seconds_hit=0" in log, log[-500:]


@pytest.mark.timeout(900)
def test_human_time_stays_within_budget_and_the_bound_is_stated(finished_run: FinishedRun) -> None:
    report = json.loads((finished_run.run_dir / "report.json").read_text())
    assert {
        "run_id", "images_total", "images_auto_labelled", "images_human_labelled", "images_unlabelled",
        "human_seconds", "human_budget_seconds", "iterations", "target_miou", "delta", "auto_miou_lower_bound",
        "auto_miou_true", "human_miou_true", "per_iteration",
    } <= set(report)  # fmt: skip
    budget = CONFIG["human_budget_hours"] * 3600
    assert report["human_budget_seconds"] == budget
    assert report["human_seconds"] <= budget + report["human_overshoot_seconds"]
    assert report["human_seconds"] > 0.8 * budget and report["images_unlabelled"] > 0  # the budget binds
    assert "the budget is spent" in report["statement"]
    if report["human_overshoot_seconds"]:
        assert "beyond the budget" in report["statement"]
    metrics = _metrics(finished_run)
    assert [m.iteration for m in metrics] == list(range(len(metrics)))
    trained = [m for m in metrics if m.threshold is not None]
    assert len(trained) == CONFIG["max_iterations"] and trained[0].threshold.statement
    assert report["statement"] and report["human_miou_true"] is not None
    assert report["images_total"] == N_IMAGES and report["iterations"] == len(metrics)


@pytest.mark.timeout(900)
def test_exports_load_and_the_report_needs_no_network(finished_run: FinishedRun) -> None:
    records = _records(finished_run)
    exports = finished_run.run_dir
    coco = COCO(str(exports / "coco.json"))
    assert len(coco.getImgIds()) == len(records)
    assert len(coco.getAnnIds()) == sum(len(record.boxes) for record in records)
    sizes = {record.image_id: (record.width, record.height) for record in records}
    assert len(read_yolo(exports / "yolo", sizes)) == len(records)
    assert len(read_voc(exports / "voc", list(CLASS_NAMES))) == len(records)
    html = (finished_run.run_dir / "report.html").read_text()
    assert "<img" in html and 'src="http' not in html and "<script src" not in html
    assert (finished_run.out_dir / "latest").resolve() == finished_run.run_dir


@pytest.mark.timeout(900)
def test_a_bad_file_is_quarantined_with_its_reason_and_the_run_completes(finished_run: FinishedRun) -> None:
    reason_path = finished_run.run_dir / "quarantine" / "incoming" / f"{BAD_FILE}.reason.json"
    reason = json.loads(reason_path.read_text())
    assert reason["key"] == f"incoming/{BAD_FILE}" and reason["reason_code"] and reason["message"]
    assert "1 upload(s) quarantined" in finished_run.resumed.stdout


@pytest.mark.timeout(900)
def test_the_interrupted_run_resumes_without_relabelling(finished_run: FinishedRun) -> None:
    assert finished_run.interrupted_rc == 130
    assert _version_files(finished_run.run_dir, 1) == finished_run.first_version_files
    first_labelled = {
        json.loads(line)["bounding-box-metadata"]["image-id"]
        for name, data in finished_run.first_version_files.items()
        if name.endswith(".jsonl")
        for line in data.splitlines()
        if line.strip()
    }
    assert first_labelled
    records = {record.image_id: record for record in _records(finished_run)}
    assert all(records[image_id].iteration == 0 for image_id in first_labelled)
    assert "resumed" in finished_run.resumed.stdout


@pytest.mark.timeout(900)
def test_usage_json_counts_both_processes_of_the_run(finished_run: FinishedRun) -> None:
    usage = json.loads((finished_run.run_dir / "usage.json").read_text())
    assert (
        usage["processes"] == 2
        and usage["images_total"] == N_IMAGES
        and usage["iterations"] == len(_metrics(finished_run))
    )
    assert usage["lambda_invocations"] > 0 and usage["lambda_gb_seconds"] > 0
    assert all(f["memory_mb"] >= 128 and f["invocations"] > 0 for f in usage["lambda_functions"])
    transitions = usage["step_functions"]
    assert (
        transitions["state_transitions"] > transitions["states_entered"] > 0 and transitions["map_child_executions"] > 0
    )
    assert usage["training_jobs"] and usage["transform_jobs"][-1]["input_records"] > 0
    assert (
        sum(usage["sqs_messages_sent"].values())
        >= N_IMAGES - json.loads((finished_run.run_dir / "report.json").read_text())["images_unlabelled"]
    )


def test_simulated_run_without_truth_stops_before_any_work(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "images").mkdir()
    out_dir = tmp_path / "out"

    status = main(["run", "--images", str(tmp_path / "images"), "--workforce", "simulated", "--out", str(out_dir)])

    assert status == 2
    assert "--truth" in capsys.readouterr().err
    assert not out_dir.exists()
