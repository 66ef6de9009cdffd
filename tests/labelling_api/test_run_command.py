"""``boxloop run``'s choice of workforce and configuration (no run is started)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from boxloop.cli import build_parser
from boxloop.local.commands import folder_config


def _args(*extra: str):
    return build_parser().parse_args(["run", "--images", "images", *extra])


def test_people_label_one_class_by_default_with_the_workforce_defaults():
    config = json.loads(folder_config(_args(), "browser"))
    assert config["classes"] == ["object"]
    assert config["workforce"] == {"kind": "browser"}


def test_classes_and_a_given_configuration_keep_the_local_workforce(tmp_path: Path):
    assert json.loads(folder_config(_args("--classes", "mug, toy"), "browser"))["classes"] == ["mug", "toy"]
    given = tmp_path / "labeling.json"
    given.write_text(json.dumps({"classes": ["a"], "workforce": {"kind": "a2i", "task_timeout_seconds": 120}}))
    config = json.loads(folder_config(_args("--config", str(given)), "browser"))
    assert config["workforce"] == {"kind": "browser", "task_timeout_seconds": 120}


def test_the_app_address_options_have_local_defaults():
    args = _args()
    assert (args.host, args.port, args.workforce) == ("127.0.0.1", 8765, None)
    assert _args("--workforce", "browser", "--host", "0.0.0.0", "--port", "0").workforce == "browser"
    with pytest.raises(SystemExit):
        _args("--workforce", "a2i")


def test_without_a_configuration_the_sizes_fit_the_folder_and_the_budget_hours(tmp_path: Path):
    images = tmp_path / "images"
    images.mkdir()
    for number in range(400):
        (images / f"{number}.jpg").write_bytes(b"x")
    config = json.loads(folder_config(_args_in(images, "--budget-hours", "2"), "browser"))
    assert config["human_budget_hours"] == 2.0 and config["auto_label"] is True
    # 75 to train on (300 objects at 4 an image), grown towards 102 validation images until half the 2 h budget
    # (120 images at 30 s) binds: half of them validate
    assert config["initial_sample_size"] == 120 and config["validation_share"] == 0.5
    tiny = json.loads(folder_config(_args_in(images, "--budget-hours", "0.1"), "browser"))
    assert tiny["auto_label"] is False and tiny["initial_sample_size"] == 400  # too small to learn: people only


def _args_in(images: Path, *extra: str):
    return build_parser().parse_args(["run", "--images", str(images), *extra])


def test_a_folder_run_without_a_configuration_starts_with_however_many_images_it_has(tmp_path: Path):
    images = tmp_path / "images"
    images.mkdir()
    (images / "a.jpg").write_bytes(b"\xff\xd8\xff")
    args = build_parser().parse_args(["run", "--images", str(images)])
    assert json.loads(folder_config(args, "browser"))["min_images_to_start"] == 1
