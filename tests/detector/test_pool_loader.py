"""The pool loader: a batch read concurrently gives the items one-by-one reading gives, in order; defaults by device."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from sagemaker_jobs.data import ImageSource, LetterboxDataset, image_loader
from sagemaker_jobs.inference import default_batch_size, default_decode_workers

from .helpers import draw_scene


def _jpegs(directory: Path, count: int, size: int) -> list[ImageSource]:
    rng = np.random.default_rng(3)
    sources = []
    for index in range(count):
        image, _ = draw_scene(rng, size=size)
        path = directory / f"{index}.jpg"
        image.resize((size, size * 3 // 4)).save(path, quality=90)
        sources.append(ImageSource(str(path)))
    return sources


def test_a_batch_read_concurrently_matches_reading_one_by_one(tmp_path: Path) -> None:
    sources = _jpegs(tmp_path, 7, 256)
    sources.insert(3, ImageSource(str(tmp_path / "missing.jpg")))
    dataset = LetterboxDataset(sources, 64, fetch_threads=4)
    together = dataset.__getitems__(list(range(len(sources))))
    for index, item in enumerate(together):
        alone = dataset[index]
        assert torch.equal(item["image"], alone["image"]) and item["error"] == alone["error"]
        assert (item["width"], item["height"]) == (alone["width"], alone["height"])
    assert "missing.jpg" in together[3]["error"] and not any(item["error"] for i, item in enumerate(together) if i != 3)
    assert (together[0]["width"], together[0]["height"]) == (256, 192)  # the original size, though decoded smaller


def test_the_loader_keeps_input_order_across_worker_processes(tmp_path: Path) -> None:
    sources = _jpegs(tmp_path, 10, 96)
    batches = list(image_loader(sources, 64, batch_size=4, num_workers=2))
    loaded = torch.cat([batch["image"] for batch in batches])
    expected = torch.stack([LetterboxDataset(sources, 64)[index]["image"] for index in range(len(sources))])
    assert [len(batch["error"]) for batch in batches] == [4, 4, 2]
    assert torch.equal(loaded, expected)


def test_a_large_jpeg_on_a_small_canvas_keeps_its_original_size_and_scale(tmp_path: Path) -> None:
    path = tmp_path / "big.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (1024, 1024, 3), dtype=np.uint8)).save(path)
    item = LetterboxDataset([ImageSource(str(path))], 128)[0]
    assert item["error"] == "" and (item["width"], item["height"]) == (1024, 1024)
    assert item["scale"].tolist() == [128 / 1024, 128 / 1024]


def test_defaults_follow_the_device_and_its_cores() -> None:
    assert default_decode_workers(torch.device("cuda"), cores=16) == 15
    assert default_decode_workers(torch.device("cpu"), cores=4) == 1
    assert default_decode_workers(torch.device("cuda"), cores=1) == 1
    assert default_batch_size(torch.device("cuda")) > default_batch_size(torch.device("cpu"))
