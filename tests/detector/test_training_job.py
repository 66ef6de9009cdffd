"""The SageMaker training contract: environment, model dir, metrics, warm start, determinism, bad input."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import pytest
import torch

from boxloop.manifest import ManifestError
from sagemaker_jobs.metric_definitions import METRIC_DEFINITIONS, training_progress
from sagemaker_jobs.model import CLASS_MAP_FILE, CONFIG_FILE, WEIGHTS_FILE, DetectorConfig, load_model
from sagemaker_jobs.settings import SettingsError, planned_steps, read_environment
from sagemaker_jobs.train import train

from .helpers import CLASSES, sagemaker_environment, tiny_hyperparameters


def test_model_dir_holds_weights_class_map_and_config(trained_job: tuple[Path, str]) -> None:
    root, _ = trained_job
    model_dir = root / "model"
    assert {WEIGHTS_FILE, CONFIG_FILE, CLASS_MAP_FILE} <= {path.name for path in model_dir.iterdir()}
    config = DetectorConfig.model_validate_json((model_dir / CONFIG_FILE).read_text())
    assert config.class_names == CLASSES and config.architecture == "tiny"
    assert json.loads((model_dir / CLASS_MAP_FILE).read_text()) == {"0": "red-box", "1": "blue-box"}
    assert re.fullmatch(r"[0-9a-f]{16}", config.model_version)


def test_metrics_file_and_stdout_lines_parse_with_the_published_regexes(trained_job: tuple[Path, str]) -> None:
    root, stdout = trained_job
    metrics = json.loads((root / "output" / "metrics.json").read_text())
    for name in ("val_map50", "val_map50_95", "val_miou"):
        assert 0.0 <= metrics[name] <= 1.0
    parsed = {}
    for definition in METRIC_DEFINITIONS:
        found = re.findall(definition["Regex"], stdout)
        if found:
            parsed[definition["Name"]] = float(found[-1])
    assert parsed["epoch"] == 3.0
    assert parsed["train_loss"] > 0
    for name in ("val_map50", "val_miou"):
        assert parsed[name] == pytest.approx(metrics[name], abs=1e-5)


def test_the_log_says_steps_done_of_those_planned_as_training_goes(trained_job: tuple[Path, str]) -> None:
    _, stdout = trained_job
    lines = stdout.splitlines(keepends=True)
    planned_at = next(i for i, line in enumerate(lines) if line.startswith("planned "))
    assert training_progress("".join(lines[:planned_at])) is None
    assert training_progress("".join(lines[: planned_at + 1])) == (0, 9)  # 24 images in batches of 8, 3 epochs
    assert training_progress("".join(lines[: planned_at + 2])) == (3, 9)  # after the first epoch
    assert training_progress(stdout) == (9, 9)


def _run_in_process(tmp_path: Path, labelled_sets: tuple[Path, Path], **environ: str) -> dict:
    train_dir, validation_dir = labelled_sets
    variables = sagemaker_environment(tmp_path, train_dir, validation_dir, tiny_hyperparameters(epochs="1"))
    return train(read_environment({**variables, **environ}))


def test_same_seed_on_cpu_gives_identical_weights(tmp_path: Path, labelled_sets: tuple[Path, Path]) -> None:
    first = _run_in_process(tmp_path / "a", labelled_sets)
    second = _run_in_process(tmp_path / "b", labelled_sets)
    assert first["model_version"] == second["model_version"]  # the weights' hash


@pytest.mark.parametrize("packed", [False, True], ids=["model-dir", "model.tar.gz"])
def test_warm_start_loads_the_previous_model(
    tmp_path: Path, labelled_sets: tuple[Path, Path], trained_job: tuple[Path, str], packed: bool
) -> None:
    previous = trained_job[0] / "model"
    channel = previous
    if packed:
        channel = tmp_path / "warm"
        channel.mkdir()
        with tarfile.open(channel / "model.tar.gz", "w:gz") as archive:
            for path in previous.iterdir():
                archive.add(path, arcname=path.name)
    train_dir, validation_dir = labelled_sets
    hyperparameters = tiny_hyperparameters(epochs="1", lr="1e-9")
    variables = sagemaker_environment(tmp_path / "job", train_dir, validation_dir, hyperparameters)
    train(read_environment({**variables, "SM_CHANNEL_WARM_START": str(channel)}))
    before = load_model(previous).state_dict()
    after = load_model(tmp_path / "job" / "model").state_dict()
    # with a negligible learning rate the weights stay those of the previous model
    assert torch.allclose(before["heatmap_head.2.weight"], after["heatmap_head.2.weight"], atol=1e-4)


def test_loading_a_model_archive_leaves_no_unpacked_copy_behind(
    tmp_path: Path, trained_job: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    previous = trained_job[0] / "model"
    archive = tmp_path / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as packed:
        for path in previous.iterdir():
            packed.add(path, arcname=path.name)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    loaded = load_model(archive).state_dict()
    assert list(scratch.iterdir()) == []  # each load of a SageMaker artefact used to leave a 13 MB copy in /tmp
    assert torch.equal(loaded["heatmap_head.2.weight"], load_model(previous).state_dict()["heatmap_head.2.weight"])


def test_warm_start_with_other_classes_is_refused(
    tmp_path: Path, labelled_sets: tuple[Path, Path], trained_job: tuple[Path, str]
) -> None:
    train_dir, validation_dir = labelled_sets
    hyperparameters = tiny_hyperparameters(classes=json.dumps(["red-box", "blue-box", "green-box"]))
    variables = sagemaker_environment(tmp_path, train_dir, validation_dir, hyperparameters)
    with pytest.raises(SettingsError, match="does not match"):
        train(read_environment({**variables, "SM_CHANNEL_WARM_START": str(trained_job[0] / "model")}))


def test_missing_or_invalid_settings_name_the_variable(tmp_path: Path, labelled_sets: tuple[Path, Path]) -> None:
    train_dir, validation_dir = labelled_sets
    variables = sagemaker_environment(tmp_path, train_dir, validation_dir, tiny_hyperparameters())
    with pytest.raises(SettingsError, match="SM_CHANNEL_VALIDATION"):
        read_environment({key: value for key, value in variables.items() if key != "SM_CHANNEL_VALIDATION"})
    bad = {**variables, "SM_HPS": json.dumps(tiny_hyperparameters(batch_size="many"))}
    with pytest.raises(SettingsError, match="batch_size"):
        read_environment(bad)
    unknown = {**variables, "SM_HPS": json.dumps(tiny_hyperparameters(learning_rate="0.1"))}
    with pytest.raises(SettingsError, match="learning_rate"):
        read_environment(unknown)


def test_a_malformed_manifest_line_names_file_and_line(tmp_path: Path, labelled_sets: tuple[Path, Path]) -> None:
    train_dir, validation_dir = labelled_sets
    broken = tmp_path / "broken"
    broken.mkdir()
    lines = (train_dir / "shard-0000.jsonl").read_text().splitlines()[:3]
    line = json.loads(lines[1])
    del line["bounding-box"]["annotations"][0]["width"]
    (broken / "shard.jsonl").write_text("\n".join([lines[0], json.dumps(line), lines[2]]) + "\n")
    for path in (train_dir / "images").iterdir():
        (broken / "images").mkdir(exist_ok=True)
        (broken / "images" / path.name).write_bytes(path.read_bytes())
    variables = sagemaker_environment(tmp_path, broken, validation_dir, tiny_hyperparameters())
    with pytest.raises(ManifestError, match=r"shard\.jsonl, line 2: .*width"):
        train(read_environment(variables))


def test_planned_steps_follow_the_data_not_the_clock() -> None:
    assert planned_steps(100, 16, epochs=3, max_steps=None) == 18
    assert planned_steps(100, 16, epochs=3, max_steps=10) == 10
    assert planned_steps(5, 16, epochs=4, max_steps=None) == 4  # fewer images than a batch: one step per epoch
    assert planned_steps(41, 16, epochs=7, max_steps=None, min_steps=100) == 100  # a small corpus: the floor
    assert planned_steps(1000, 16, epochs=7, max_steps=None, min_steps=100) == 434  # a large one: its epochs
    assert planned_steps(41, 16, epochs=7, max_steps=50, min_steps=100) == 50  # max_steps caps the floor too


def test_a_cpu_bound_competitor_changes_neither_steps_nor_weights(
    tmp_path: Path, labelled_sets: tuple[Path, Path]
) -> None:
    alone = _run_in_process(tmp_path / "alone", labelled_sets)
    competitor = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        slowed = _run_in_process(tmp_path / "slowed", labelled_sets)
    finally:
        competitor.kill()
        competitor.wait()
    assert slowed["steps"] == alone["steps"] == alone["planned_steps"] > 0
    assert not alone["max_seconds_hit"] and not slowed["max_seconds_hit"]
    assert slowed["model_version"] == alone["model_version"]  # CPU training is deterministic: the weights' hash


def test_max_seconds_is_a_safety_stop_that_is_reported(tmp_path: Path, labelled_sets: tuple[Path, Path]) -> None:
    train_dir, validation_dir = labelled_sets
    hyperparameters = tiny_hyperparameters(epochs="50", max_seconds="0.001")
    metrics = train(read_environment(sagemaker_environment(tmp_path, train_dir, validation_dir, hyperparameters)))
    assert metrics["max_seconds_hit"] and metrics["steps"] == 1 < metrics["planned_steps"]


def test_a_small_training_set_trains_at_least_min_steps(tmp_path: Path, labelled_sets: tuple[Path, Path]) -> None:
    train_dir, validation_dir = labelled_sets
    hyperparameters = tiny_hyperparameters(epochs="1", min_steps="7")
    metrics = train(read_environment(sagemaker_environment(tmp_path, train_dir, validation_dir, hyperparameters)))
    assert metrics["planned_steps"] == metrics["steps"] == 7 and not metrics["max_seconds_hit"]
