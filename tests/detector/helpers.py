"""Helpers for the detector tests: generated scenes, manifests, pool lines and SageMaker variables."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from PIL import Image

CLASSES = ["red-box", "blue-box"]
COLOURS = {0: (220, 30, 30), 1: (30, 40, 220)}
IMAGE_SIZE = 64
REPO_ROOT = Path(__file__).resolve().parents[2]


def draw_scene(rng: np.random.Generator, size: int = IMAGE_SIZE) -> tuple[Image.Image, list[dict]]:
    """A grey background with one or two coloured rectangles; returns the image and Ground Truth boxes."""
    image = Image.new("RGB", (size, size), (200, 200, 190))
    pixels = np.asarray(image).copy()
    annotations = []
    for _ in range(int(rng.integers(1, 3))):
        class_id = int(rng.integers(0, 2))
        width, height = (int(v) for v in rng.integers(size // 6, size // 2, 2))
        left, top = int(rng.integers(0, size - width)), int(rng.integers(0, size - height))
        pixels[top : top + height, left : left + width] = COLOURS[class_id]
        annotations.append({"class_id": class_id, "left": left, "top": top, "width": width, "height": height})
    return Image.fromarray(pixels), annotations


def write_labelled_set(directory: Path, count: int, seed: int) -> Path:
    """Images plus a manifest shard with relative source-refs; returns the channel directory."""
    rng = np.random.default_rng(seed)
    (directory / "images").mkdir(parents=True)
    lines = []
    for index in range(count):
        image, annotations = draw_scene(rng)
        name = f"images/img{index:03d}.png"
        image.save(directory / name)
        label = {"image_size": [{"width": image.width, "height": image.height, "depth": 3}], "annotations": annotations}
        lines.append(json.dumps({"source-ref": name, "bounding-box": label}))
    (directory / "shard-0000.jsonl").write_text("\n".join(lines) + "\n")
    return directory


def image_record(path: Path, image_id_seed: int) -> dict:
    """A pool line (ImageRecord JSON) for a local image file."""
    with Image.open(path) as image:
        width, height = image.size
    return {
        "image_id": f"{image_id_seed:064x}",
        "source_ref": f"file://{path}",
        "width": width,
        "height": height,
        "registered_at": datetime(2024, 1, 1, tzinfo=UTC).isoformat(),
    }


def tiny_hyperparameters(**overrides: str) -> dict[str, str]:
    """SageMaker-style (string) hyperparameters for a few steps of the tiny model."""
    return {
        "model": "tiny",
        "classes": json.dumps(CLASSES),
        "image_size": str(IMAGE_SIZE),
        "batch_size": "8",
        "epochs": "3",
        "lr": "0.01",
        "seed": "7",
        "num_workers": "0",
        **overrides,
    }


def sagemaker_environment(root: Path, train: Path, validation: Path, hyperparameters: dict[str, str]) -> dict[str, str]:
    """The SM_* variables SageMaker would set, pointing at tmp directories."""
    return {
        "SM_CHANNEL_TRAIN": str(train),
        "SM_CHANNEL_VALIDATION": str(validation),
        "SM_MODEL_DIR": str(root / "model"),
        "SM_OUTPUT_DATA_DIR": str(root / "output"),
        "SM_HPS": json.dumps(hyperparameters),
    }
