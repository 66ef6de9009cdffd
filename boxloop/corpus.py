"""A synthetic "product photo" corpus cut from photos that ship inside installed packages.

One module over 400 lines on purpose: the cut-outs, scenes and reference boxes are one generator whose
reproducibility per seed depends on the order of its random draws; the profiles' specs live in
``boxloop/corpus_profiles.py``.

Six product classes are cut from real photos (no download needed):

===  ============  ==========================================================
id   class         source photo
===  ============  ==========================================================
0    figurine      ``skimage.data.astronaut()``
1    cat-toy       ``skimage.data.chelsea()``
2    mug           ``skimage.data.coffee()``
3    rocket-kit    ``skimage.data.rocket()``
4    postcard      ``sklearn.datasets.load_sample_image("china.jpg")``
5    flower-pot    ``sklearn.datasets.load_sample_image("flower.jpg")``
===  ============  ==========================================================

Backgrounds, distractors and occluders come from 16 other photos shipped in
``skimage.data`` (``BACKGROUND_SOURCES``; each loads offline).

*Easy* images show one product (a random sub-window of its source, resized,
colour-jittered, with a thin package border) near the centre of a near-white
table with a soft shadow. *Hard* images show 2–5 products that may overlap on a
textured background with distractor patches, occluders over part of a product,
blur, low light and noise. The reference box of a product is the tight box of
its *visible* pixels; a product less than 35% visible is not drawn at all, so
every product in an image has a reference box.

``CorpusSpec.n_classes`` keeps only the first classes and ``object_scale`` resizes the
products (the corpus profiles of ``corpus_profiles.py``: dense, single-class, small
objects, mixed sizes); their defaults render the retail corpus unchanged.

Every image is rendered from its own random stream seeded by ``(seed, index)``,
so the output bytes do not depend on the number of worker processes.

Output layout: ``<out>/images/img000000.jpg …`` and ``<out>/truth.json`` (COCO:
``images`` with an extra ``difficulty`` of ``"easy"``/``"hard"``, ``annotations``
with ``bbox`` ``[x, y, w, h]`` and ``visible_fraction``, ``categories`` with
COCO id = class id + 1).
"""

from __future__ import annotations

import concurrent.futures
import functools
import hashlib
import io
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import skimage.data
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, model_validator
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from scipy.ndimage import gaussian_filter
from sklearn.datasets import load_sample_image

from boxloop.models import Box

CLASS_NAMES: tuple[str, ...] = ("figurine", "cat-toy", "mug", "rocket-kit", "postcard", "flower-pot")
"""Class names in class-id order; use them as the labelling configuration's ``classes``."""

CLASS_SOURCES: dict[str, Callable[[], np.ndarray]] = {
    "figurine": skimage.data.astronaut,
    "cat-toy": skimage.data.chelsea,
    "mug": skimage.data.coffee,
    "rocket-kit": skimage.data.rocket,
    "postcard": functools.partial(load_sample_image, "china.jpg"),
    "flower-pot": functools.partial(load_sample_image, "flower.jpg"),
}

BACKGROUND_SOURCES: tuple[str, ...] = (
    "brick", "camera", "cell", "checkerboard", "clock", "coins", "colorwheel", "grass",
    "gravel", "hubble_deep_field", "immunohistochemistry", "microaneurysms", "moon", "page",
    "retina", "text",
)  # fmt: skip
"""``skimage.data`` photos used for backgrounds and clutter (all ship in the wheel)."""

MIN_VISIBLE_FRACTION = 0.35
JPEG_QUALITY = 90
IMAGES_DIR = "images"
TRUTH_FILE = "truth.json"
_PROGRESS_AFTER_SECONDS = 2.0

Difficulty = Literal["easy", "hard"]


class CorpusError(ValueError):
    """A corpus truth file is malformed; the message names the file and the entry."""


class CorpusSpec(BaseModel):
    """What to generate: size, difficulty mix and seed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    n_images: int = Field(ge=1)
    image_size: int = Field(default=256, ge=64, le=2048)
    easy_share: float = Field(default=0.5, ge=0.0, le=1.0)
    hard_objects: tuple[int, int] = (2, 5)
    occlusion_probability: float = Field(default=0.5, ge=0.0, le=1.0)
    lighting_range: tuple[float, float] = (0.45, 1.0)
    n_classes: int = Field(default=len(CLASS_NAMES), ge=1, le=len(CLASS_NAMES))
    object_scale: tuple[float, float] = (1.0, 1.0)
    """Each product's size is multiplied by a log-uniform draw from this range ((1, 1): today's sizes, no draw)."""
    seed: int = 0

    @model_validator(mode="after")
    def _ranges_ordered(self) -> CorpusSpec:
        low, high = self.hard_objects
        if not 1 <= low <= high <= 20:
            raise ValueError(f"hard_objects must satisfy 1 <= min <= max <= 20, got {self.hard_objects}")
        dim, bright = self.lighting_range
        if not 0.05 <= dim <= bright <= 1.5:
            raise ValueError(f"lighting_range must satisfy 0.05 <= min <= max <= 1.5, got {self.lighting_range}")
        small, large = self.object_scale
        if not 0.05 <= small <= large <= 2.0:
            raise ValueError(f"object_scale must satisfy 0.05 <= min <= max <= 2, got {self.object_scale}")
        return self

    @property
    def class_names(self) -> tuple[str, ...]:
        """The classes this corpus draws products from: the first ``n_classes`` of ``CLASS_NAMES``."""
        return CLASS_NAMES[: self.n_classes]

    def draw_scale(self, rng: np.random.Generator) -> float:
        """A product's size multiplier; draws nothing when the range is a single value (keeps old corpora's bytes)."""
        small, large = self.object_scale
        return small if small == large else float(np.exp(rng.uniform(np.log(small), np.log(large))))

    def difficulty(self, index: int) -> Difficulty:
        """Easy and hard images interleave so every prefix of the corpus has the easy share."""
        easy = int((index + 1) * self.easy_share) > int(index * self.easy_share)
        return "easy" if easy else "hard"


class CorpusSummary(BaseModel):
    """What ``generate_corpus`` wrote."""

    out_dir: Path
    truth_path: Path
    n_images: int
    n_easy: int
    n_hard: int
    n_objects: int
    objects_per_class: dict[str, int]
    elapsed_seconds: float


@dataclass(frozen=True)
class _Layer:
    """A patch painted at (top, left) where ``shape`` is true; ``class_id`` is None for clutter."""

    top: int
    left: int
    pixels: np.ndarray  # (h, w, 3) float32 in [0, 255]
    shape: np.ndarray  # (h, w) bool
    class_id: int | None = None

    def _clipped(self, size: int) -> tuple[slice, slice, slice, slice] | None:
        height, width = self.shape.shape
        y0, x0 = max(self.top, 0), max(self.left, 0)
        y1, x1 = min(self.top + height, size), min(self.left + width, size)
        if y0 >= y1 or x0 >= x1:
            return None
        frame = (slice(y0, y1), slice(x0, x1))
        return (*frame, slice(y0 - self.top, y1 - self.top), slice(x0 - self.left, x1 - self.left))

    def frame_mask(self, size: int) -> np.ndarray:
        """The layer's footprint on the size × size frame."""
        mask = np.zeros((size, size), dtype=bool)
        clipped = self._clipped(size)
        if clipped is not None:
            ys, xs, py, px = clipped
            mask[ys, xs] = self.shape[py, px]
        return mask

    def paint(self, canvas: np.ndarray) -> None:
        """Paint the layer onto ``canvas`` in place."""
        clipped = self._clipped(canvas.shape[0])
        if clipped is not None:
            ys, xs, py, px = clipped
            region = canvas[ys, xs]
            region[self.shape[py, px]] = self.pixels[py, px][self.shape[py, px]]


@functools.cache
def _class_photos() -> tuple[np.ndarray, ...]:
    return tuple(np.ascontiguousarray(CLASS_SOURCES[name]()[..., :3]) for name in CLASS_NAMES)


@functools.cache
def _background_photos() -> tuple[np.ndarray, ...]:
    photos = []
    for name in BACKGROUND_SOURCES:
        photo = np.asarray(getattr(skimage.data, name)())
        if photo.ndim == 2:
            photo = np.repeat(photo[..., None], 3, axis=2)
        photos.append(np.ascontiguousarray(photo[..., :3].astype(np.uint8)))
    return tuple(photos)


def _resize(pixels: np.ndarray, width: int, height: int) -> np.ndarray:
    image = Image.fromarray(np.asarray(pixels, dtype=np.uint8)).resize((width, height), Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.float32)


def _random_window(rng: np.random.Generator, photo: np.ndarray, low: float, high: float) -> np.ndarray:
    height, width = photo.shape[:2]
    win_h = max(2, int(height * rng.uniform(low, high)))
    win_w = max(2, int(width * rng.uniform(low, high)))
    top = int(rng.integers(0, height - win_h + 1))
    left = int(rng.integers(0, width - win_w + 1))
    return photo[top : top + win_h, left : left + win_w]


def _jitter_colour(rng: np.random.Generator, pixels: np.ndarray) -> np.ndarray:
    grey = pixels.mean(axis=2, keepdims=True)
    saturated = grey + (pixels - grey) * rng.uniform(0.75, 1.25)
    mean = saturated.mean()
    contrasted = mean + (saturated - mean) * rng.uniform(0.85, 1.15)
    gains = rng.normal(1.0, 0.06, size=3).astype(np.float32)
    return np.clip(contrasted * gains + rng.uniform(-15.0, 15.0), 0.0, 255.0).astype(np.float32)


def _ellipse(height: int, width: int) -> np.ndarray:
    ys = (np.arange(height, dtype=np.float32) + 0.5 - height / 2) / (height / 2)
    xs = (np.arange(width, dtype=np.float32) + 0.5 - width / 2) / (width / 2)
    return ys[:, None] ** 2 + xs[None, :] ** 2 <= 1.0


def _product_patch(rng: np.random.Generator, class_id: int, long_side: float) -> np.ndarray:
    """A product: sub-window of its class photo, resized, colour-jittered, with a package border."""
    window = _random_window(rng, _class_photos()[class_id], 0.6, 1.0)
    scale = long_side / max(window.shape[:2])
    width = max(8, round(window.shape[1] * scale))
    height = max(8, round(window.shape[0] * scale))
    pixels = _jitter_colour(rng, _resize(window, width, height))
    border = max(1, round(min(width, height) * rng.uniform(0.02, 0.05)))
    package = rng.uniform(150.0, 250.0) * rng.uniform(0.85, 1.0, size=3)
    pixels[:border], pixels[-border:], pixels[:, :border], pixels[:, -border:] = package, package, package, package
    return pixels


def _clutter_patch(rng: np.random.Generator, height: int, width: int, background: bool = False) -> np.ndarray:
    """A tinted crop of a background photo: a whole background, or a distractor/occluder (sometimes flat)."""
    if not background and rng.random() < 0.3:
        flat = np.empty((height, width, 3), dtype=np.float32)
        flat[:] = rng.uniform(20.0, 235.0, size=3)
        return np.clip(flat + rng.normal(0.0, 4.0, size=(height, width, 1)), 0.0, 255.0).astype(np.float32)
    photos = _background_photos()
    low, high = (0.5, 1.0) if background else (0.2, 0.6)
    window = _random_window(rng, photos[int(rng.integers(len(photos)))], low, high)
    return _jitter_colour(rng, _resize(window, width, height) * rng.uniform(0.6, 1.2, size=3).astype(np.float32))


def _easy_scene(rng: np.random.Generator, size: int, spec: CorpusSpec) -> tuple[np.ndarray, list[_Layer]]:
    """Near-white table with a gentle gradient, one product near the centre and its soft shadow."""
    base = rng.uniform(228.0, 250.0) + rng.uniform(-4.0, 4.0, size=3)
    ramp = np.linspace(-1.0, 1.0, size, dtype=np.float32) * rng.uniform(-8.0, 8.0)
    canvas = np.broadcast_to(base[None, None, :] + ramp[:, None, None], (size, size, 3)).astype(np.float32)
    class_id = int(rng.integers(spec.n_classes))
    pixels = _product_patch(rng, class_id, rng.uniform(0.35, 0.6) * size * spec.draw_scale(rng))
    height, width = pixels.shape[:2]
    top = int(np.clip((size - height) / 2 + rng.normal(0.0, 0.06 * size), 0, size - height))
    left = int(np.clip((size - width) / 2 + rng.normal(0.0, 0.06 * size), 0, size - width))
    shadow = np.zeros((size, size), dtype=np.float32)
    dy, dx = (int(v) for v in rng.uniform(0.01, 0.04, size=2) * size)
    shadow[top + dy : top + dy + height, left + dx : left + dx + width] = 1.0
    shadow = gaussian_filter(shadow, sigma=0.025 * size)
    canvas = canvas * (1.0 - rng.uniform(0.25, 0.45) * shadow[..., None])
    product = _Layer(top, left, pixels, np.ones((height, width), dtype=bool), class_id)
    return canvas, [product]


def _occluder_over(rng: np.random.Generator, product: _Layer) -> _Layer:
    """An occluder entering from one side and covering 20–60% of the product along that axis."""
    p_height, p_width = product.shape.shape
    covered = rng.uniform(0.2, 0.6)
    side = int(rng.integers(4))
    along = p_height if side < 2 else p_width  # the axis the occluder enters along
    across = p_width if side < 2 else p_height
    depth = max(2, round(along * (covered + rng.uniform(0.1, 0.5))))
    span = max(2, round(across * rng.uniform(0.5, 1.4)))
    span_start = round(across * rng.uniform(0.2, 0.8) - span / 2)
    inside = round(along * covered)
    if side < 2:  # enters from the top (0) or the bottom (1)
        top = product.top + inside - depth if side == 0 else product.top + p_height - inside
        left, height, width = product.left + span_start, depth, span
    else:  # enters from the left (2) or the right (3)
        left = product.left + inside - depth if side == 2 else product.left + p_width - inside
        top, height, width = product.top + span_start, span, depth
    shape = _ellipse(height, width) if rng.random() < 0.4 else np.ones((height, width), dtype=bool)
    return _Layer(top, left, _clutter_patch(rng, height, width), shape)


def _hard_scene(rng: np.random.Generator, size: int, spec: CorpusSpec) -> tuple[np.ndarray, list[_Layer]]:
    """Textured background, distractors, several products (some occluded), stacked bottom to top."""
    canvas = _clutter_patch(rng, size, size, background=True)
    layers: list[_Layer] = []
    for _ in range(int(rng.integers(1, 5))):
        height, width = (max(4, int(v)) for v in rng.uniform(0.1, 0.35, size=2) * size)
        shape = _ellipse(height, width) if rng.random() < 0.5 else np.ones((height, width), dtype=bool)
        top, left = (int(v) for v in rng.integers(-size // 10, size - size // 10, size=2))
        layers.append(_Layer(top, left, _clutter_patch(rng, height, width), shape))
    low, high = spec.hard_objects
    for _ in range(int(rng.integers(low, high + 1))):
        class_id = int(rng.integers(spec.n_classes))
        pixels = _product_patch(rng, class_id, rng.uniform(0.18, 0.4) * size * spec.draw_scale(rng))
        height, width = pixels.shape[:2]
        top = int(rng.integers(-height // 5, size - height + height // 5 + 1))
        left = int(rng.integers(-width // 5, size - width + width // 5 + 1))
        product = _Layer(top, left, pixels, np.ones((height, width), dtype=bool), class_id)
        layers.append(product)
        if rng.random() < spec.occlusion_probability:
            layers.append(_occluder_over(rng, product))
    return canvas, layers


def _drop_hidden_products(layers: list[_Layer], size: int) -> tuple[list[_Layer], dict[int, np.ndarray]]:
    """Remove products under MIN_VISIBLE_FRACTION visible (repeat: removal uncovers others).

    Returns the kept layers and, per kept product's layer position, its visible mask.
    """
    while True:
        covered = np.zeros((size, size), dtype=bool)
        visible: dict[int, np.ndarray] = {}
        hidden: set[int] = set()
        for position in range(len(layers) - 1, -1, -1):
            layer = layers[position]
            footprint = layer.frame_mask(size)
            if layer.class_id is not None:
                mask = footprint & ~covered
                if mask.sum() < MIN_VISIBLE_FRACTION * layer.shape.sum():
                    hidden.add(position)
                visible[position] = mask
            covered |= footprint
        if not hidden:
            return layers, visible
        layers = [layer for position, layer in enumerate(layers) if position not in hidden]


def _finish(rng: np.random.Generator, canvas: np.ndarray, difficulty: Difficulty, spec: CorpusSpec) -> np.ndarray:
    """Lighting, blur and sensor noise; returns uint8 pixels."""
    size = canvas.shape[0]
    if difficulty == "hard":
        canvas = canvas * np.float32(rng.uniform(*spec.lighting_range))
        if rng.random() < 0.5:
            sigma = rng.uniform(0.5, 1.6) * size / 256
            canvas = gaussian_filter(canvas, sigma=(sigma, sigma, 0.0))
        noise = rng.uniform(2.0, 8.0)
    else:
        noise = rng.uniform(0.5, 2.0)
    canvas = canvas + rng.normal(0.0, noise, size=canvas.shape).astype(np.float32)
    return np.clip(np.rint(canvas), 0, 255).astype(np.uint8)


def file_name(index: int) -> str:
    """The corpus file name of image ``index``."""
    return f"img{index:06d}.jpg"


def render_image(spec: CorpusSpec, index: int) -> tuple[bytes, list[dict]]:
    """Render image ``index`` of the corpus: its JPEG bytes and its objects.

    Each object is ``{"class_id", "bbox": [x, y, w, h], "visible_fraction"}``; pure
    function of ``(spec, index)``.
    """
    rng = np.random.default_rng([spec.seed, index])
    size, difficulty = spec.image_size, spec.difficulty(index)
    if difficulty == "easy":
        canvas, layers = _easy_scene(rng, size, spec)
    else:
        canvas, layers = _hard_scene(rng, size, spec)
    layers, visible = _drop_hidden_products(layers, size)
    canvas = np.array(canvas, dtype=np.float32)
    for layer in layers:
        layer.paint(canvas)
    objects = []
    for position, layer in enumerate(layers):
        if layer.class_id is None:
            continue
        mask = visible[position]
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        x, y = int(cols[0]), int(rows[0])
        objects.append(
            {
                "class_id": layer.class_id,
                "bbox": [x, y, int(cols[-1]) + 1 - x, int(rows[-1]) + 1 - y],
                "visible_fraction": round(float(mask.sum() / layer.shape.sum()), 4),
            }
        )
    buffer = io.BytesIO()
    Image.fromarray(_finish(rng, canvas, difficulty, spec)).save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue(), objects


def _write_image(spec: CorpusSpec, images_dir: Path, index: int) -> list[dict]:
    data, objects = render_image(spec, index)
    (images_dir / file_name(index)).write_bytes(data)
    return objects


def _rendered_in_order(spec: CorpusSpec, images_dir: Path, workers: int) -> Iterator[list[dict]]:
    write = functools.partial(_write_image, spec, images_dir)
    if workers == 1:
        yield from map(write, range(spec.n_images))
        return
    chunksize = max(1, min(16, spec.n_images // (workers * 8)))
    with concurrent.futures.ProcessPoolExecutor(max_workers=workers) as pool:
        yield from pool.map(write, range(spec.n_images), chunksize=chunksize)


def generate_corpus(
    spec: CorpusSpec, out_dir: str | Path, workers: int | None = None, show_progress: bool = False
) -> CorpusSummary:
    """Write ``spec.n_images`` JPEGs under ``out_dir/images`` and COCO ``out_dir/truth.json``.

    Refuses (FileExistsError) an ``out_dir/images`` that is not empty, so stale
    images never sit beside a new truth file.

    Images are rendered in parallel over ``workers`` processes (default: every
    core); the bytes written depend only on ``spec``. With ``show_progress`` a rich
    progress bar appears on stderr once the run has taken a couple of seconds.
    """
    if workers is None:
        workers = os.cpu_count() or 1
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    out_dir = Path(out_dir)
    images_dir = out_dir / IMAGES_DIR
    if images_dir.exists() and any(images_dir.iterdir()):
        raise FileExistsError(f"{images_dir} is not empty: write the corpus to a new folder")
    images_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    coco_images, annotations = [], []
    progress = Progress(
        TextColumn("corpus"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        console=Console(stderr=True), transient=True, disable=not show_progress,
    )  # fmt: skip
    task = progress.add_task("corpus", total=spec.n_images)
    try:
        for index, objects in enumerate(_rendered_in_order(spec, images_dir, workers)):
            coco_images.append(
                {
                    "id": index + 1,
                    "file_name": file_name(index),
                    "width": spec.image_size,
                    "height": spec.image_size,
                    "difficulty": spec.difficulty(index),
                }
            )
            for obj in objects:
                width, height = obj["bbox"][2], obj["bbox"][3]
                annotations.append(
                    {
                        "id": len(annotations) + 1,
                        "image_id": index + 1,
                        "category_id": obj["class_id"] + 1,
                        "bbox": obj["bbox"],
                        "area": width * height,
                        "iscrowd": 0,
                        "visible_fraction": obj["visible_fraction"],
                    }
                )
            progress.advance(task)
            if not progress.live.is_started and time.monotonic() - started > _PROGRESS_AFTER_SECONDS:
                progress.start()
    finally:
        progress.stop()
    truth = {
        "info": {"description": "boxloop synthetic product-photo corpus", "spec": spec.model_dump(mode="json")},
        "images": coco_images,
        "annotations": annotations,
        "categories": [
            {"id": class_id + 1, "name": name, "supercategory": "product"}
            for class_id, name in enumerate(spec.class_names)
        ],
    }
    truth_path = out_dir / TRUTH_FILE
    truth_path.write_text(json.dumps(truth, indent=1) + "\n", encoding="utf-8")
    per_class = {name: 0 for name in spec.class_names}
    for annotation in annotations:
        per_class[CLASS_NAMES[annotation["category_id"] - 1]] += 1
    n_easy = sum(image["difficulty"] == "easy" for image in coco_images)
    return CorpusSummary(
        out_dir=out_dir,
        truth_path=truth_path,
        n_images=spec.n_images,
        n_easy=n_easy,
        n_hard=spec.n_images - n_easy,
        n_objects=len(annotations),
        objects_per_class=per_class,
        elapsed_seconds=time.monotonic() - started,
    )


def load_truth(truth_path: str | Path, key: Literal["file_name", "image_id"] = "file_name") -> dict[str, list[Box]]:
    """Reference boxes per image from a COCO truth file, as Ground Truth boxes.

    Keyed by the image's ``file_name``, or by its ``image_id`` (SHA-256 of the
    file's bytes under ``images/`` beside the truth file, as the pipeline names
    images). Class id = position of the category in id order. Every image
    appears, with an empty list when it has no objects. Raises CorpusError naming
    the file and the offending entry.
    """
    truth_path = Path(truth_path)
    try:
        truth = json.loads(truth_path.read_text(encoding="utf-8"))
        category_ids = sorted(category["id"] for category in truth["categories"])
        class_of = {category_id: position for position, category_id in enumerate(category_ids)}
        names = {image["id"]: image["file_name"] for image in truth["images"]}
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise CorpusError(f"{truth_path}: not a COCO truth file ({type(exc).__name__}: {exc})") from exc
    boxes: dict[str, list[Box]] = {name: [] for name in names.values()}
    for number, annotation in enumerate(truth.get("annotations", [])):
        where = f"{truth_path}: annotations[{number}]"
        if annotation.get("image_id") not in names:
            raise CorpusError(f"{where}: unknown image_id {annotation.get('image_id')!r}")
        if annotation.get("category_id") not in class_of:
            raise CorpusError(f"{where}: unknown category_id {annotation.get('category_id')!r}")
        try:
            x, y, width, height = annotation["bbox"]
            box = Box(class_id=class_of[annotation["category_id"]], left=x, top=y, width=width, height=height)
        except (KeyError, ValueError, TypeError) as exc:
            raise CorpusError(f"{where}: bad bbox ({exc})") from exc
        boxes[names[annotation["image_id"]]].append(box)
    if key == "file_name":
        return boxes
    images_dir = truth_path.parent / IMAGES_DIR
    return {hashlib.sha256((images_dir / name).read_bytes()).hexdigest(): found for name, found in boxes.items()}
