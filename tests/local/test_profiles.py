"""End to end on every corpus profile: ``boxloop run`` on a tiny corpus completes, labels each image at most once,
accounts for every image, holds the human budget and leaves no image unlabelled while budget remains; the
single-class run's exports and report work with one class, and a second run of it gives the same labels.

One run per profile (module fixture, parametrised): 30 generated images, the tiny detector, one trained
iteration after the random initial sample, and a budget that binds on the dense profile. ``retail`` is the
generator ``tests/local/test_local_run.py`` runs end to end with the same assertions (every image once, budget
held, completion), so it is not run twice (CI time: each run here costs about a minute on 2 cores).
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from pycocotools.coco import COCO

from boxloop.corpus import generate_corpus, load_truth
from boxloop.corpus_profiles import profile_spec
from tests.output_readers import read_manifest_file, read_voc, read_yolo

PROJECT_ROOT = Path(__file__).resolve().parents[2]
N_IMAGES = 30
BUDGET_HOURS = 0.4
CONFIG = {
    "quality": {"target_miou": 0.6, "delta": 0.05, "min_validation_images": 5},
    "human_budget_hours": BUDGET_HOURS,
    "initial_sample_size": 14,
    "validation_share": 0.4,
    "human_batch_size": 8,
    "audit_size": 2,
    "max_iterations": 1,
    "min_images_to_start": N_IMAGES,
    "workforce": {"kind": "simulated", "batch_timeout_seconds": 600},
}
TRAINING = ["--detector", "tiny", "--epochs", "4", "--min-steps", "1", "--train-seconds", "300"]
"""4 epochs of the few training images and no step floor: these runs test accounting, not the model, and the local
default floor (100 steps) would add about 35 s to each run on 2 cores."""
RUN_TIMEOUT = 1200
PROFILES = ("single-class", "dense", "small-objects", "mixed-sizes")


@dataclass(frozen=True)
class ProfileRun:
    profile: str
    classes: tuple[str, ...]
    image_ids: frozenset[str]
    run_dir: Path
    result: subprocess.CompletedProcess[str]


def _run(corpus: Path, classes: tuple[str, ...], out: Path) -> subprocess.CompletedProcess[str]:
    config = corpus.parent / "labeling.json"
    config.write_text(json.dumps({**CONFIG, "classes": list(classes)}))
    command = [
        sys.executable, "-m", "boxloop.cli", "run", "--images", str(corpus / "images"),
        "--truth", str(corpus / "truth.json"), "--config", str(config), "--out", str(out), *TRAINING,
    ]  # fmt: skip
    result = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=RUN_TIMEOUT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


@pytest.fixture(scope="module", params=PROFILES)
def profile_run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> ProfileRun:
    profile = request.param
    root = tmp_path_factory.mktemp(f"profile-{profile}")
    spec = profile_spec(profile, N_IMAGES, seed=5)
    generate_corpus(spec, root / "corpus", workers=1)
    result = _run(root / "corpus", spec.class_names, root / "out")
    image_ids = frozenset(load_truth(root / "corpus" / "truth.json", key="image_id"))
    return ProfileRun(profile, spec.class_names, image_ids, (root / "out" / "latest").resolve(), result)


def _report(run: ProfileRun) -> dict:
    return json.loads((run.run_dir / "report.json").read_text())


@pytest.mark.timeout(1500)
def test_every_image_is_labelled_at_most_once_and_accounted_for(profile_run: ProfileRun) -> None:
    ids = [record.image_id for record in read_manifest_file(profile_run.run_dir / "output.manifest", "bounding-box")]
    report = _report(profile_run)
    assert len(ids) == len(set(ids)) and set(ids) <= profile_run.image_ids
    assert report["images_total"] == N_IMAGES
    assert len(ids) + report["images_unlabelled"] == N_IMAGES
    assert report["images_auto_labelled"] + report["images_human_labelled"] == len(ids)


@pytest.mark.timeout(1500)
def test_human_time_stays_within_the_budget(profile_run: ProfileRun) -> None:
    report = _report(profile_run)
    assert report["human_budget_seconds"] == BUDGET_HOURS * 3600
    assert 0 < report["human_seconds"] <= report["human_budget_seconds"]
    assert report["statement"]


@pytest.mark.timeout(1500)
def test_no_image_is_left_unlabelled_while_budget_remains(profile_run: ProfileRun) -> None:
    report = _report(profile_run)
    if report["images_unlabelled"]:
        assert report["finish"]["unlabelled_reason"].startswith("the budget is spent"), report["finish"]
    else:
        assert report["finish"]["unlabelled_reason"] is None
    assert report["finish"]["learning_stopped"], "max_iterations 1 stops learning before the pool is labelled"


@pytest.mark.timeout(1500)
def test_exports_and_report_carry_the_profiles_classes(profile_run: ProfileRun) -> None:
    records = list(read_manifest_file(profile_run.run_dir / "output.manifest", "bounding-box"))
    coco = COCO(str(profile_run.run_dir / "coco.json"))
    assert [category["name"] for category in coco.loadCats(coco.getCatIds())] == list(profile_run.classes)
    assert len(coco.getImgIds()) == len(records)
    sizes = {record.image_id: (record.width, record.height) for record in records}
    assert len(read_yolo(profile_run.run_dir / "yolo", sizes)) == len(records)
    assert len(read_voc(profile_run.run_dir / "voc", list(profile_run.classes))) == len(records)
    assert "<img" in (profile_run.run_dir / "report.html").read_text()


def _labels(manifest: Path) -> list[dict]:
    """The manifest's lines without what names the run rather than the label: when it was written and the job."""
    lines = [json.loads(line) for line in manifest.read_text().splitlines()]
    for line in lines:
        for metadata in (value for key, value in line.items() if key.endswith("-metadata")):
            del metadata["creation-date"], metadata["job-name"]
    return lines


@pytest.mark.timeout(1500)
@pytest.mark.parametrize("profile_run", ["single-class"], indirect=True)  # one rerun: about a minute on 2 cores
def test_a_second_run_on_the_same_inputs_gives_the_same_labels(profile_run: ProfileRun) -> None:
    corpus = profile_run.run_dir.parent.parent / "corpus"
    again = corpus.parent / "again"
    _run(corpus, profile_run.classes, again)
    first = _labels(profile_run.run_dir / "output.manifest")
    assert first == _labels(again / "latest" / "output.manifest")
    assert any(line["bounding-box-metadata"]["label-source"] == "human" for line in first)
