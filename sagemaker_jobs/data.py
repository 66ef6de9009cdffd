"""Training and pool images: manifest parsing, fetch + decode + letterbox in DataLoader workers, augmentation.

Every image is letterboxed onto a square ``image_size`` canvas: resized so its
longer side fits, placed at the top-left corner, padded with grey. Box
coordinates map between the original (EXIF-oriented) image and the canvas by
one scale per axis, so nothing needs an offset.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from pydantic import BaseModel, ValidationError
from torch.utils.data import DataLoader, Dataset

from boxloop.manifest import ManifestError, iter_json_objects
from boxloop.models import Box
from sagemaker_jobs.image_io import ImageReadError, decode_image, read_bytes
from sagemaker_jobs.model import IMAGENET_MEAN, IMAGENET_STD

MANIFEST_SUFFIXES = (".jsonl", ".manifest", ".json")
_PAD_VALUE = tuple(round(255 * mean) for mean in IMAGENET_MEAN)


class LabelledImage(BaseModel):
    """One training or validation image with its reference boxes (original-image pixels)."""

    source_ref: str
    base_dir: Path
    width: int
    height: int
    boxes: list[Box]


class _ImageSize(BaseModel):
    width: int
    height: int


class _Label(BaseModel):
    image_size: list[_ImageSize]
    annotations: list[Box]


def manifest_files(channel_dir: Path) -> list[Path]:
    """The manifest shards in a channel directory (recursively, sorted); raises if there are none."""
    files = sorted(path for path in channel_dir.rglob("*") if path.is_file() and path.suffix in MANIFEST_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"{channel_dir}: no manifest shards ({', '.join(MANIFEST_SUFFIXES)})")
    return files


def read_labelled_images(manifest_path: Path, label_attribute: str, num_classes: int) -> list[LabelledImage]:
    """Parse a Ground Truth manifest shard; raises ManifestError naming the file and line of a bad line."""
    images = []
    with manifest_path.open("rb") as handle:
        for line_number, line in iter_json_objects(handle, str(manifest_path)):
            where = f"{manifest_path}, line {line_number}"
            try:
                label = _Label.model_validate(line[label_attribute])
                source_ref = line["source-ref"]
            except KeyError as exc:
                raise ManifestError(f"{where}: missing key {exc.args[0]!r}") from exc
            except ValidationError as exc:
                raise ManifestError(
                    f"{where}: invalid {label_attribute!r}: {exc.errors()[0]['msg']} "
                    f"at {'.'.join(map(str, exc.errors()[0]['loc']))}"
                ) from exc
            if not isinstance(source_ref, str) or len(label.image_size) != 1:
                raise ManifestError(f"{where}: needs a string 'source-ref' and exactly one image_size entry")
            unknown = sorted({box.class_id for box in label.annotations if box.class_id >= num_classes})
            if unknown:
                raise ManifestError(f"{where}: class_id {unknown} outside the {num_classes} configured classes")
            size = label.image_size[0]
            images.append(
                LabelledImage(
                    source_ref=source_ref,
                    base_dir=manifest_path.parent,
                    width=size.width,
                    height=size.height,
                    boxes=label.annotations,
                )
            )
    return images


def letterbox(image: Image.Image, width: int, height: int, image_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The uint8 canvas (3, S, S) and the (x, y) scale from original-image pixels to canvas pixels."""
    fit = image_size / max(image.width, image.height)
    new_width = max(1, min(image_size, round(image.width * fit)))
    new_height = max(1, min(image_size, round(image.height * fit)))
    resized = image.resize((new_width, new_height), Image.Resampling.BILINEAR)
    canvas = Image.new("RGB", (image_size, image_size), _PAD_VALUE)
    canvas.paste(resized, (0, 0))
    tensor = torch.from_numpy(np.asarray(canvas).copy()).permute(2, 0, 1)
    return tensor, torch.tensor([new_width / width, new_height / height], dtype=torch.float32)


@dataclass(frozen=True)
class ImageSource:
    """Where to read one image: a reference and the directory relative paths resolve against."""

    ref: str
    base_dir: Path | None = None


FETCH_THREADS = 16
"""Images each loader process fetches and decodes at once: S3 GETs wait on the network and PIL releases the
GIL while it decodes and resizes, so a batch's reads overlap instead of queueing behind one another."""


class LetterboxDataset(Dataset):
    """Fetches, decodes and letterboxes images; an unreadable image yields an error item, never an exception.

    Items: ``image`` uint8 (3, S, S), ``scale`` (2,), ``width``, ``height``
    (oriented original size, 0 on error), ``error`` ("" when fine). JPEGs are decoded at a reduced
    DCT scale when the canvas is smaller than the image (``decode_image``'s ``max_side``). A batch (``__getitems__``, which the DataLoader calls with a
    batch's indices) is read by up to ``fetch_threads`` threads of the process that loads it.
    """

    def __init__(self, sources: Sequence[ImageSource], image_size: int, fetch_threads: int = FETCH_THREADS) -> None:
        self.sources = list(sources)
        self.image_size = image_size
        self.fetch_threads = fetch_threads
        self._threads: ThreadPoolExecutor | None = None
        self._threads_pid = 0

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_threads": None, "_threads_pid": 0}

    def __len__(self) -> int:
        return len(self.sources)

    def __getitem__(self, index: int) -> dict:
        source = self.sources[index]
        try:
            image, width, height = decode_image(read_bytes(source.ref, source.base_dir), source.ref, self.image_size)
        except ImageReadError as exc:
            blank = torch.full((3, self.image_size, self.image_size), 0, dtype=torch.uint8)
            return {"image": blank, "scale": torch.ones(2), "width": 0, "height": 0, "error": str(exc)}
        canvas, scale = letterbox(image, width, height, self.image_size)
        return {"image": canvas, "scale": scale, "width": width, "height": height, "error": ""}

    def __getitems__(self, indices: Sequence[int]) -> list[dict]:
        """The items at ``indices``, in order, read concurrently."""
        if self.fetch_threads <= 1 or len(indices) <= 1:
            return [self[index] for index in indices]
        if self._threads is None or self._threads_pid != os.getpid():  # a forked loader process starts its own
            self._threads = ThreadPoolExecutor(self.fetch_threads, thread_name_prefix="image-fetch")
            self._threads_pid = os.getpid()
        return list(self._threads.map(self.__getitem__, indices))


def image_loader(
    sources: Sequence[ImageSource], image_size: int, batch_size: int, num_workers: int, pin_memory: bool = False
) -> DataLoader:
    """An ordered DataLoader that fetches and decodes ``sources`` in ``num_workers`` worker processes (0: in this
    one), each reading a batch's images concurrently."""
    return DataLoader(
        LetterboxDataset(sources, image_size),
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        pin_memory=pin_memory,
    )


@dataclass
class PreloadedImages:
    """Letterboxed images in memory with padded canvas-pixel boxes (for training and validation)."""

    images: torch.Tensor  # uint8 (N, 3, S, S)
    boxes: torch.Tensor  # float (N, M, 4) xyxy canvas pixels
    classes: torch.Tensor  # long (N, M), -1 for padding
    valid: torch.Tensor  # float (N, M)
    scales: torch.Tensor  # float (N, 2)

    def subset(self, rows: Sequence[int]) -> PreloadedImages:
        """The images at ``rows``, in that order."""
        index = torch.as_tensor(list(rows), dtype=torch.long)
        return PreloadedImages(
            self.images[index], self.boxes[index], self.classes[index], self.valid[index], self.scales[index]
        )


def preload(images: Sequence[LabelledImage], image_size: int, num_workers: int) -> PreloadedImages:
    """Decode every labelled image once (N × S² × 3 bytes of memory).

    Raises ImageReadError for an unreadable image and ValueError when the
    decoded size disagrees with the manifest's ``image_size`` (boxes would be wrong).
    """
    loader = image_loader([ImageSource(i.source_ref, i.base_dir) for i in images], image_size, 32, num_workers)
    canvases, scales = [], []
    offset = 0
    for batch in loader:
        for row in range(len(batch["error"])):
            labelled = images[offset + row]
            if batch["error"][row]:
                raise ImageReadError(batch["error"][row])
            decoded_size = (int(batch["width"][row]), int(batch["height"][row]))
            if decoded_size != (labelled.width, labelled.height):
                raise ValueError(
                    f"{labelled.source_ref}: decoded (EXIF-oriented) size {decoded_size[0]}x{decoded_size[1]} "
                    f"differs from the manifest's image_size {labelled.width}x{labelled.height}"
                )
        offset += len(batch["error"])
        canvases.append(batch["image"])
        scales.append(batch["scale"])
    max_boxes = max([len(image.boxes) for image in images] + [1])
    boxes = torch.zeros(len(images), max_boxes, 4)
    classes = torch.full((len(images), max_boxes), -1, dtype=torch.long)
    for index, image in enumerate(images):
        for slot, box in enumerate(image.boxes):
            boxes[index, slot] = torch.tensor(box.xyxy())
            classes[index, slot] = box.class_id
    all_scales = torch.cat(scales)
    boxes = boxes * all_scales.repeat(1, 2)[:, None, :]
    return PreloadedImages(torch.cat(canvases), boxes, classes, (classes >= 0).float(), all_scales)


def normalise(images: torch.Tensor) -> torch.Tensor:
    """uint8 (B, 3, S, S) → float, ImageNet-normalised, on the images' device."""
    mean = torch.tensor(IMAGENET_MEAN, device=images.device).view(1, 3, 1, 1) * 255
    std = torch.tensor(IMAGENET_STD, device=images.device).view(1, 3, 1, 1) * 255
    return (images.float() - mean) / std


def augment(
    images: torch.Tensor, boxes: torch.Tensor, valid: torch.Tensor, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random flip, zoom/shift and brightness/contrast for a whole normalised batch at once.

    Boxes follow the geometry; a box left less than 40% visible is dropped
    from the targets. Randomness comes from ``generator`` (CPU) for determinism.
    """
    batch, _, size, _ = images.shape
    device = images.device

    def uniform(low: float, high: float, *shape: int) -> torch.Tensor:
        return (torch.rand(*shape, generator=generator) * (high - low) + low).to(device)

    zoom = uniform(0.7, 1.3, batch)
    flip = (torch.rand(batch, generator=generator) < 0.5).to(device)
    shift = uniform(-0.5, 0.5, batch, 2) * (size * (1 - zoom))[:, None].abs().clamp(min=size * 0.1)
    sign = torch.where(flip, -1.0, 1.0)
    # output pixel x_out = sign·zoom·x_in + offset (flip about the canvas centre, then shift)
    offset_x = torch.where(flip, size * zoom, torch.zeros_like(zoom)) + shift[:, 0]
    offset_y = shift[:, 1]
    theta = torch.zeros(batch, 2, 3, device=device)
    theta[:, 0, 0] = sign / zoom
    theta[:, 0, 2] = sign * (1 - 2 * offset_x / size) / zoom - 1
    theta[:, 1, 1] = 1 / zoom
    theta[:, 1, 2] = (1 - 2 * offset_y / size) / zoom - 1
    grid = torch.nn.functional.affine_grid(theta, list(images.shape), align_corners=False)
    warped = torch.nn.functional.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    brightness = uniform(-0.3, 0.3, batch).view(batch, 1, 1, 1)
    contrast = uniform(0.75, 1.25, batch).view(batch, 1, 1, 1)
    warped = warped * contrast + brightness

    x1 = sign[:, None] * zoom[:, None] * boxes[..., 0] + offset_x[:, None]
    x2 = sign[:, None] * zoom[:, None] * boxes[..., 2] + offset_x[:, None]
    y1 = zoom[:, None] * boxes[..., 1] + offset_y[:, None]
    y2 = zoom[:, None] * boxes[..., 3] + offset_y[:, None]
    moved = torch.stack([torch.minimum(x1, x2), y1, torch.maximum(x1, x2), y2], dim=-1)
    clipped = moved.clamp(0, size)
    full_area = (moved[..., 2] - moved[..., 0]) * (moved[..., 3] - moved[..., 1])
    visible_area = (clipped[..., 2] - clipped[..., 0]) * (clipped[..., 3] - clipped[..., 1])
    visible = (visible_area >= 0.4 * full_area.clamp(min=1e-6)) & (visible_area > 1.0)
    return warped, clipped, valid * visible.float()
