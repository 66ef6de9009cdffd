"""The one image contract: what ingest registers is exactly what the detector decodes.

Ingest (``boxloop.image_header`` through ``lambdas/ingest``) and the detector
(``sagemaker_jobs.image_io``) share these limits and this decoder. Decoding applies the
EXIF orientation first, so every width and height here is the *oriented* size: what a
viewer (and a browser's ``<img>``, ``image-orientation: from-image``) shows and what
labellers draw on. ``oriented_size`` is the one place that decides it.
"""

from __future__ import annotations

import io
import math
import warnings
from typing import Literal

import numpy as np
from PIL import Image, ImageOps

ImageFormat = Literal["JPEG", "PNG"]
ACCEPTED_FORMATS: tuple[ImageFormat, ...] = ("JPEG", "PNG")
FORMAT_EXTENSIONS: dict[ImageFormat, str] = {"JPEG": "jpg", "PNG": "png"}
CONTENT_TYPES: dict[ImageFormat, str] = {"JPEG": "image/jpeg", "PNG": "image/png"}

MAX_BYTES = 40 * 1024 * 1024
"""Largest accepted file: Ground Truth's 40 MB per image."""

MAX_PIXELS = 40_000_000
"""Largest accepted image (width × height): a decompression-bomb guard, checked from the header before decoding."""

_EXIF_ORIENTATION = 0x0112
_TRANSPOSING_ORIENTATIONS = frozenset({5, 6, 7, 8})
_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N", "I", "F"})


class ImageDecodeError(ValueError):
    """The bytes are not an image this contract decodes; the message says why."""

    def __init__(self, message: str, *, truncated: bool = False) -> None:
        super().__init__(message)
        self.truncated = truncated


def oriented_size(image: Image.Image) -> tuple[int, int]:
    """(width, height) of ``image`` after its EXIF orientation is applied (orientations 5–8 swap the sides)."""
    width, height = image.size
    if image.getexif().get(_EXIF_ORIENTATION, 1) in _TRANSPOSING_ORIENTATIONS:
        return height, width
    return width, height


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB for any mode: alpha is composited on white, 16-bit and float images are rescaled to 8 bits."""
    if image.mode in _SIXTEEN_BIT_MODES:
        values = np.asarray(image, dtype=np.float32)
        high = values.max() if values.size else 0.0
        scale = 255.0 / high if high > 255.0 else 1.0
        image = Image.fromarray(np.clip(values * scale, 0, 255).astype(np.uint8), mode="L")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def decode_rgb(data: bytes, name: str, max_side: int) -> tuple[Image.Image, ImageFormat, int, int]:
    """Decode ``data`` into an EXIF-oriented RGB image whose longer side is at most ``max_side``.

    Returns ``(image, format, width, height)``: width and height are the oriented size at full
    resolution (box coordinates on ``image`` scale by ``width / image.width``). Every byte of
    pixel data is decoded (a JPEG is decoded at a reduced DCT scale when it is larger than
    ``max_side``, which still reads its whole entropy-coded data). Bytes after a valid end
    marker are ignored. Raises ``ImageDecodeError`` naming ``name`` for an empty, truncated,
    undecodable, over-large or unsupported image.
    """
    if not data:
        raise ImageDecodeError(f"{name}: empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=list(ACCEPTED_FORMATS))
        if image.width * image.height > MAX_PIXELS:
            raise ImageDecodeError(
                f"{name}: image too large to decode safely: {image.width}×{image.height} = "
                f"{image.width * image.height:,} pixels is over the limit of {MAX_PIXELS:,} (possible decompression bomb)"
            )
        image_format: ImageFormat = image.format  # type: ignore[assignment]  # formats= admits only these
        width, height = oriented_size(image)
        if image.format == "JPEG" and max(image.size) > max_side:
            # draft keeps a scale only while both sides stay >= the size asked: ask for the aspect-kept fit
            fit = max_side / max(image.size)
            image.draft("RGB", (math.ceil(image.width * fit), math.ceil(image.height * fit)))
        image.load()
        image = to_rgb(ImageOps.exif_transpose(image))
    except ImageDecodeError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageDecodeError(f"{name}: image too large to decode safely ({exc})") from exc
    except Exception as exc:  # PIL raises many types (OSError, SyntaxError, ValueError, …) for bad files
        truncated = "truncated" in str(exc)
        raise ImageDecodeError(
            f"{name}: cannot decode image: {type(exc).__name__}: {exc}", truncated=truncated
        ) from exc
    if max(image.size) > max_side:
        image.thumbnail((max_side, max_side), Image.Resampling.BILINEAR)
    return image, image_format, width, height
