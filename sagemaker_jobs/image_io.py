"""Reading image bytes from S3 or local storage, and decoding them robustly.

S3 reads use boto3 and honour ``AWS_ENDPOINT_URL`` (so a local moto server
works). Decoding is the image contract's (``boxloop.image_contract``), the same
limits and decoder ingest checks uploads with: every width and height this
package reports refers to the *oriented* image, which is what a viewer shows and
what labellers draw on.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from urllib.parse import unquote, urlparse

from PIL import Image

from boxloop.image_contract import ImageDecodeError, decode_rgb

MAX_WORKING_SIDE = 4096
"""Decoded images whose longer side exceeds this are downsampled on decode (``Image.draft`` for JPEG, then resize)."""

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


def decode_image(data: bytes, name: str, max_side: int = MAX_WORKING_SIDE) -> tuple[Image.Image, int, int]:
    """Decode ``data`` into an EXIF-oriented RGB image.

    Returns ``(image, width, height)`` where width and height are those of the
    oriented image at full resolution; the returned image itself is
    downsampled so its longer side is at most ``max_side`` (box coordinates
    must be scaled by ``width / image.width``). Handles grayscale, palette,
    CMYK, alpha and 16-bit images. Raises ImageReadError naming ``name`` for
    empty, truncated, undecodable or over-large images.
    """
    try:
        image, _, width, height = decode_rgb(data, name, max_side)
    except ImageDecodeError as exc:
        raise ImageReadError(str(exc)) from exc
    return image, width, height
