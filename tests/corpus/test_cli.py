"""The ``boxloop`` command: ``boxloop corpus``."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
from pycocotools.coco import COCO

from boxloop.cli import main


def _digests(folder: Path) -> dict[str, str]:
    return {
        path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def test_corpus_writes_50_images_and_coco_truth_reproducibly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    assert main(["corpus", "--images", "50", "--out", str(first), "--seed", "1", "--workers", "1"]) == 0
    summary = capsys.readouterr().out
    assert summary.startswith("wrote 50 images (25 easy, 25 hard,") and summary.count("\n") == 1
    assert main(["corpus", "--images", "50", "--out", str(second), "--seed", "1", "--workers", "2"]) == 0
    assert len(list((first / "images").glob("*.jpg"))) == 50
    coco = COCO(str(first / "truth.json"))
    assert len(coco.getImgIds()) == 50 and len(coco.getAnnIds()) >= 50
    assert _digests(first) == _digests(second)


def test_corpus_options_reach_the_spec(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    arguments = ["corpus", "--images", "4", "--out", str(tmp_path), "--seed", "2", "--size", "96", "--easy-share", "1"]
    assert main(arguments) == 0
    assert "(4 easy, 0 hard, 4 objects)" in capsys.readouterr().out
    coco = COCO(str(tmp_path / "truth.json"))
    assert {(image["width"], image["height"]) for image in coco.loadImgs(coco.getImgIds())} == {(96, 96)}


def test_bad_arguments_exit_2_with_a_clear_message(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "boxloop.cli", "corpus", "--images", "0", "--out", str(tmp_path / "x")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "n_images" in result.stderr and not (tmp_path / "x").exists()
    command = [sys.executable, "-m", "boxloop.cli", "corpus"]
    missing = subprocess.run(command, capture_output=True, text=True, check=False)
    assert missing.returncode == 2 and "--images" in missing.stderr


def test_profile_shapes_the_corpus_and_names_its_classes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    arguments = ["corpus", "--images", "3", "--out", str(tmp_path), "--profile", "single-class", "--workers", "1"]
    assert main(arguments) == 0
    assert "wrote 3 images" in capsys.readouterr().out
    coco = COCO(str(tmp_path / "truth.json"))
    assert [category["name"] for category in coco.loadCats(coco.getCatIds())] == ["figurine"]
    assert {annotation["category_id"] for annotation in coco.loadAnns(coco.getAnnIds())} == {1}
