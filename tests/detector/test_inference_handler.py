"""The SageMaker inference handler and the local batched command: I/O contract and bad images."""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys
from pathlib import Path

import boto3
import numpy as np
import pytest
from moto import mock_aws
from PIL import Image

from boxloop.models import Prediction
from sagemaker_jobs import inference
from sagemaker_jobs.image_io import MAX_WORKING_SIDE
from sagemaker_jobs.predictor import Predictor, predict_records

from .helpers import REPO_ROOT, draw_scene, image_record


@pytest.fixture(scope="module")
def predictor(trained_job: tuple[Path, str]) -> Predictor:
    return inference.model_fn(str(trained_job[0] / "model"))


def _scene_files(directory: Path, count: int) -> list[Path]:
    rng = np.random.default_rng(5)
    paths = []
    for index in range(count):
        image, _ = draw_scene(rng)
        paths.append(directory / f"scene{index}.jpg")
        image.save(paths[-1], quality=92)
    return paths


def _handle(predictor: Predictor, lines: list[dict | str]) -> list[Prediction]:
    body = "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines).encode()
    data = inference.input_fn(body, "application/jsonlines")
    output = inference.output_fn(inference.predict_fn(data, predictor), "application/jsonlines")
    assert not output.endswith(b"\n")  # AssembleWith=Line adds the separator
    return [Prediction.model_validate_json(line) for line in output.decode().split("\n")]


def test_round_trip_gives_one_valid_prediction_per_line_in_order(predictor: Predictor, tmp_path: Path) -> None:
    records = [image_record(path, index) for index, path in enumerate(_scene_files(tmp_path, 5))]
    predictions = _handle(predictor, records)
    assert [p.image_id for p in predictions] == [r["image_id"] for r in records]
    for prediction, record in zip(predictions, records, strict=True):
        assert prediction.error is None
        assert (prediction.width, prediction.height) == (record["width"], record["height"])
        assert prediction.model_version == predictor.config.model_version
        assert 0.0 <= prediction.confidence <= 1.0
        assert len(prediction.embedding) == predictor.config.embedding_dim
        assert math.isclose(sum(v * v for v in prediction.embedding), 1.0, abs_tol=1e-3)
        for box in prediction.boxes:
            assert 0 <= box.left <= box.right <= prediction.width and 0 <= box.top <= box.bottom <= prediction.height
            assert box.score >= predictor.config.score_threshold


def _save(image: Image.Image, path: Path, **options) -> Path:
    image.save(path, **options)
    return path


def _bad_and_odd_images(directory: Path) -> dict[str, Path]:
    scene, _ = draw_scene(np.random.default_rng(9))
    jpeg = io.BytesIO()
    scene.save(jpeg, format="JPEG")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90°: the stored 80×48 image is shown as 48×80
    files = {
        "empty": directory / "empty.jpg",
        "not-an-image": directory / "notes.jpg",
        "truncated-jpeg": directory / "truncated.jpg",
        "missing": directory / "missing.jpg",
        "grayscale": _save(scene.convert("L"), directory / "gray.png"),
        "cmyk": _save(scene.convert("CMYK"), directory / "cmyk.jpg"),
        "rgba": _save(scene.convert("RGBA"), directory / "rgba.png"),
        "16-bit": _save(Image.fromarray(np.asarray(scene.convert("L"), np.uint16) * 257), directory / "deep.png"),
        "exif-rotated": _save(scene.resize((80, 48)), directory / "rotated.jpg", exif=exif),
        "huge": _save(Image.new("RGB", (6000, 1000), (200, 200, 190)), directory / "huge.png"),
        "over-pixel-limit": _save(Image.new("1", (7000, 7000)), directory / "bomb.png"),
    }
    files["empty"].write_bytes(b"")
    files["not-an-image"].write_text("just some notes")
    files["truncated-jpeg"].write_bytes(jpeg.getvalue()[: len(jpeg.getvalue()) // 2])
    return files


def test_bad_images_yield_error_lines_and_odd_images_are_handled(predictor: Predictor, tmp_path: Path) -> None:
    files = _bad_and_odd_images(tmp_path)
    records = []
    for index, path in enumerate(files.values()):
        record = image_record(files["grayscale"], index) | {"source_ref": f"file://{path}"}
        records.append(record)
    results = dict(zip(files, _handle(predictor, records), strict=True))
    for name in ("empty", "not-an-image", "truncated-jpeg", "missing", "over-pixel-limit"):
        assert results[name].error and str(files[name]) in results[name].error, name
        assert results[name].boxes == [] and results[name].confidence == 0.0
    for name in ("grayscale", "cmyk", "rgba", "16-bit", "exif-rotated", "huge"):
        assert results[name].error is None, (name, results[name].error)
        assert len(results[name].embedding) == predictor.config.embedding_dim
    assert (results["exif-rotated"].width, results["exif-rotated"].height) == (48, 80)
    assert (results["huge"].width, results["huge"].height) == (6000, 1000)  # original pixels, though decoded smaller
    assert MAX_WORKING_SIDE < 6000
    assert "0 bytes" in results["empty"].error
    assert "too large to decode safely" in results["over-pixel-limit"].error


def test_invalid_pool_lines_become_error_lines_and_keep_their_place(predictor: Predictor, tmp_path: Path) -> None:
    good = image_record(_scene_files(tmp_path, 1)[0], 1)
    missing_width = {key: value for key, value in good.items() if key != "width"}
    predictions = _handle(predictor, [good, "{not json", missing_width, good])
    assert [p.error is None for p in predictions] == [True, False, False, True]
    assert "line 2" in predictions[1].error
    assert "line 3" in predictions[2].error and "width" in predictions[2].error
    assert predictions[2].image_id == good["image_id"]


def test_unsupported_content_types_are_refused() -> None:
    with pytest.raises(ValueError, match="content type"):
        inference.input_fn(b"{}", "text/csv")
    with pytest.raises(ValueError, match="accept"):
        inference.output_fn([], "text/csv")


def test_images_are_read_from_s3(predictor: Predictor, tmp_path: Path) -> None:
    path = _scene_files(tmp_path, 1)[0]
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="data")
        s3.put_object(Bucket="data", Key="incoming/a.jpg", Body=path.read_bytes())
        records = [
            image_record(path, 1) | {"source_ref": "s3://data/incoming/a.jpg"},
            image_record(path, 2) | {"source_ref": "s3://data/incoming/absent.jpg"},
        ]
        body = "\n".join(json.dumps(r) for r in records)
        predictions = list(predict_records(predictor, inference.input_fn(body, "application/jsonlines"), 8, 0))
    assert predictions[0].error is None and predictions[0].width == 64
    assert "s3://data/incoming/absent.jpg" in predictions[1].error


def test_local_batched_command_matches_the_handler(
    predictor: Predictor, trained_job: tuple[Path, str], tmp_path: Path
) -> None:
    records = [image_record(path, index) for index, path in enumerate(_scene_files(tmp_path, 6))]
    pool = tmp_path / "pool.jsonl"
    pool.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    output = tmp_path / "out" / "predictions.jsonl"
    command = [sys.executable, "-m", "sagemaker_jobs.predict", "--model-dir", str(trained_job[0] / "model"),
               "--input", str(pool), "--output", str(output), "--batch-size", "4", "--num-workers", "1"]  # fmt: skip
    subprocess.run(command, cwd=REPO_ROOT, check=True, capture_output=True, timeout=120)
    from_command = [Prediction.model_validate_json(line) for line in output.read_text().splitlines()]
    from_handler = _handle(predictor, records)
    assert [p.image_id for p in from_command] == [r["image_id"] for r in records]
    for mine, theirs in zip(from_command, from_handler, strict=True):
        assert mine.boxes == theirs.boxes
        assert mine.confidence == pytest.approx(theirs.confidence, abs=1e-6)
