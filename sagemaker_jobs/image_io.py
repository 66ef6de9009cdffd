"""Reading image bytes from S3 or local storage, and decoding them robustly.

S3 reads use boto3 and honour ``AWS_ENDPOINT_URL`` (so a local moto server
works). Decoding applies the EXIF orientation first: every width and height
this package reports refers to the *oriented* image, which is what a viewer
shows and what labellers draw on.
"""

from __future__ import annotations

import io
import os
import threading
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
from PIL import Image, ImageOps

MAX_DECODED_PIXELS = 40_000_000
"""Largest image (width × height) we agree to decode (decompression-bomb guard), checked from the header before
decoding. PIL's process-wide ``Image.MAX_IMAGE_PIXELS`` is left alone: other code in the process (the ingest
header check in the local run) applies limits of its own."""

MAX_WORKING_SIDE = 4096
"""Decoded images whose longer side exceeds this are downsampled on decode (``Image.draft`` for JPEG, then resize)."""

_EXIF_ORIENTATION = 0x0112
_TRANSPOSING_ORIENTATIONS = frozenset({5, 6, 7, 8})

_s3_clients = threading.local()


class ImageReadError(ValueError):
    """An image could not be fetched or decoded; the message says which and why."""


def _s3_client():
    """One boto3 S3 client per thread (clients are not shared across threads)."""
    client = getattr(_s3_clients, "client", None)
    if client is None:
        import boto3

        client = boto3.session.Session().client("s3", endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None)
        _s3_clients.client = client
    return client


def resolve_local_path(ref: str, base_dir: Path | None = None) -> Path:
    """The local path of a ``file://`` URI or a plain path (relative paths resolve against ``base_dir``)."""
    parsed = urlparse(ref)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    path = Path(ref)
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    return path


def read_bytes(ref: str, base_dir: Path | None = None) -> bytes:
    """The bytes at ``ref``: an ``s3://bucket/key`` URI, a ``file://`` URI or a local path.

    Raises ImageReadError naming the reference when it cannot be read.
    """
    parsed = urlparse(ref)
    try:
        if parsed.scheme == "s3":
            response = _s3_client().get_object(Bucket=parsed.netloc, Key=parsed.path.lstrip("/"))
            return response["Body"].read()
        if parsed.scheme not in ("", "file"):
            raise ImageReadError(f"{ref}: unsupported URI scheme {parsed.scheme!r} (use s3://, file:// or a path)")
        return resolve_local_path(ref, base_dir).read_bytes()
    except ImageReadError:
        raise
    except Exception as exc:  # botocore and OS errors alike: report, never crash the batch
        raise ImageReadError(f"{ref}: cannot read: {type(exc).__name__}: {exc}") from exc


def _to_rgb(image: Image.Image) -> Image.Image:
    """RGB for any mode: alpha is composited on white, 16-bit and float images are rescaled to 8 bits."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        values = np.asarray(image, dtype=np.float64)
        high = values.max() if values.size else 0.0
        scale = 255.0 / high if high > 255.0 else 1.0
        image = Image.fromarray(np.clip(values * scale, 0, 255).astype(np.uint8), mode="L")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def decode_image(data: bytes, name: str, max_side: int = MAX_WORKING_SIDE) -> tuple[Image.Image, int, int]:
    """Decode ``data`` into an EXIF-oriented RGB image.

    Returns ``(image, width, height)`` where width and height are those of the
    oriented image at full resolution; the returned image itself is
    downsampled so its longer side is at most ``max_side`` (box coordinates
    must be scaled by ``width / image.width``). Handles grayscale, palette,
    CMYK, alpha and 16-bit images. Raises ImageReadError naming ``name`` for
    empty, truncated, undecodable or over-large images.
    """
    if not data:
        raise ImageReadError(f"{name}: empty file (0 bytes)")
    try:
        image = Image.open(io.BytesIO(data))
        if image.width * image.height > MAX_DECODED_PIXELS:
            raise ImageReadError(
                f"{name}: image too large to decode safely: {image.width}x{image.height} exceeds "
                f"the {MAX_DECODED_PIXELS} pixel limit"
            )
        full_width, full_height = image.size
        if image.getexif().get(_EXIF_ORIENTATION, 1) in _TRANSPOSING_ORIENTATIONS:
            full_width, full_height = full_height, full_width
        if image.format == "JPEG" and max(image.size) > max_side:
            image.draft("RGB", (max_side, max_side))
        image.load()
        image = _to_rgb(ImageOps.exif_transpose(image))
    except ImageReadError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageReadError(f"{name}: image too large to decode safely ({exc})") from exc
    except Exception as exc:  # PIL raises many types (OSError, SyntaxError, ValueError, …) for bad files
        raise ImageReadError(f"{name}: cannot decode image: {type(exc).__name__}: {exc}") from exc
    if max(image.size) > max_side:
        image.thumbnail((max_side, max_side), Image.Resampling.BILINEAR)
    return image, full_width, full_height
