"""The synthetic corpus: determinism, COCO truth, visible-pixel boxes, difficulty mix."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO
from pydantic import ValidationError

from boxloop.corpus import (
    CLASS_NAMES,
    MIN_VISIBLE_FRACTION,
    CorpusError,
    CorpusSpec,
    generate_corpus,
    load_truth,
    render_image,
)


def _digests(folder: Path) -> dict[str, str]:
    return {
        path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("corpus")
    generate_corpus(CorpusSpec(n_images=20, image_size=128, seed=7), out, workers=1)
    return out


def test_same_seed_same_bytes_for_any_worker_count(small_corpus: Path, tmp_path: Path) -> None:
    generate_corpus(CorpusSpec(n_images=20, image_size=128, seed=7), tmp_path, workers=2)
    assert _digests(tmp_path) == _digests(small_corpus)
    assert len(_digests(tmp_path)) == 21


def test_different_seed_different_images() -> None:
    spec_a, spec_b = CorpusSpec(n_images=2, image_size=128, seed=1), CorpusSpec(n_images=2, image_size=128, seed=2)
    assert render_image(spec_a, 0)[0] != render_image(spec_b, 0)[0]
    assert render_image(spec_a, 0)[0] != render_image(spec_a, 1)[0]


def test_truth_is_coco_with_difficulty_and_boxes_inside(small_corpus: Path) -> None:
    coco = COCO(str(small_corpus / "truth.json"))
    assert [coco.cats[i]["name"] for i in sorted(coco.cats)] == list(CLASS_NAMES)
    images = coco.loadImgs(coco.getImgIds())
    assert len(images) == 20
    assert sorted({image["difficulty"] for image in images}) == ["easy", "hard"]
    for image in images:
        with Image.open(small_corpus / "images" / image["file_name"]) as photo:
            assert photo.format == "JPEG" and photo.size == (image["width"], image["height"]) == (128, 128)
        annotations = coco.loadAnns(coco.getAnnIds(imgIds=image["id"]))
        if image["difficulty"] == "easy":
            assert len(annotations) == 1 and annotations[0]["visible_fraction"] == 1.0
        else:
            assert 1 <= len(annotations) <= 5
        for annotation in annotations:
            x, y, w, h = annotation["bbox"]
            assert x >= 0 and y >= 0 and w > 0 and h > 0 and x + w <= 128 and y + h <= 128
            assert annotation["visible_fraction"] >= MIN_VISIBLE_FRACTION


def test_easy_share_is_exact_and_interleaved() -> None:
    spec = CorpusSpec(n_images=100, easy_share=0.3)
    kinds = [spec.difficulty(index) for index in range(100)]
    assert kinds.count("easy") == 30
    assert kinds[:10].count("easy") == 3
    assert all(CorpusSpec(n_images=5, easy_share=0.0).difficulty(i) == "hard" for i in range(5))
    assert all(CorpusSpec(n_images=5, easy_share=1.0).difficulty(i) == "easy" for i in range(5))


def test_easy_box_is_tight_around_product_on_white() -> None:
    spec = CorpusSpec(n_images=4, image_size=128, easy_share=1.0, seed=3)
    data, objects = render_image(spec, 0)
    pixels = np.asarray(Image.open(io.BytesIO(data)).convert("L"), dtype=float)
    x, y, w, h = objects[0]["bbox"]
    inside = np.zeros_like(pixels, dtype=bool)
    inside[y : y + h, x : x + w] = True
    assert pixels[~inside].mean() > 180  # near-white table (shadow included)
    assert abs(pixels[inside].mean() - pixels[~inside].mean()) > 20


def test_hard_occlusion_visible_fraction_reported() -> None:
    spec = CorpusSpec(n_images=30, image_size=128, easy_share=0.0, occlusion_probability=1.0, seed=5)
    fractions = [obj["visible_fraction"] for index in range(30) for obj in render_image(spec, index)[1]]
    assert min(fractions) >= MIN_VISIBLE_FRACTION
    assert sum(fraction < 0.95 for fraction in fractions) > len(fractions) / 2


def test_spec_rejects_bad_ranges() -> None:
    with pytest.raises(ValidationError, match="hard_objects"):
        CorpusSpec(n_images=1, hard_objects=(4, 2))
    with pytest.raises(ValidationError, match="lighting_range"):
        CorpusSpec(n_images=1, lighting_range=(0.9, 0.5))


def test_refuses_non_empty_output(small_corpus: Path) -> None:
    with pytest.raises(FileExistsError, match="not empty"):
        generate_corpus(CorpusSpec(n_images=1, image_size=64), small_corpus, workers=1)


def test_load_truth_by_file_name_and_image_id(small_corpus: Path) -> None:
    truth_path = small_corpus / "truth.json"
    by_name = load_truth(truth_path)
    by_id = load_truth(truth_path, key="image_id")
    assert len(by_name) == len(by_id) == 20
    name = "img000003.jpg"
    image_id = hashlib.sha256((small_corpus / "images" / name).read_bytes()).hexdigest()
    assert by_id[image_id] == by_name[name]
    coco = json.loads(truth_path.read_text())
    assert sum(len(boxes) for boxes in by_name.values()) == len(coco["annotations"])
    first = coco["annotations"][0]
    image_name = next(image["file_name"] for image in coco["images"] if image["id"] == first["image_id"])
    box = by_name[image_name][0]
    assert [box.left, box.top, box.width, box.height] == first["bbox"]
    assert box.class_id == first["category_id"] - 1


def test_load_truth_names_bad_entry(tmp_path: Path) -> None:
    truth_path = tmp_path / "truth.json"
    truth = {
        "images": [{"id": 1, "file_name": "a.jpg"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 9, "bbox": [0, 0, 1, 1]}],
        "categories": [{"id": 1, "name": "mug"}],
    }
    truth_path.write_text(json.dumps(truth))
    with pytest.raises(CorpusError, match=r"annotations\[0\]: unknown category_id 9"):
        load_truth(truth_path)
    truth_path.write_text("{")
    with pytest.raises(CorpusError, match="not a COCO truth file"):
        load_truth(truth_path)
