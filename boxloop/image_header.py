"""Validate an uploaded image against the image contract (``boxloop.image_contract``).

Ingest reads an object's size (HEAD) and its head (a ranged GET) to reject cheaply, then the
whole object to decode every pixel with the detector's own decoder. These pure functions turn
those bytes into either the image's format and oriented dimensions or a rejection with a
reason code and a message a user can act on.

Accepted formats are JPEG and PNG. The order of checks: size (empty, too large) → header
(not an image, unsupported format, decompression bomb) → full decode (truncated, undecodable).
Bytes after a valid end marker (a phone's "motion photo" video, padding) are accepted.
"""

from __future__ import annotations

import io
import warnings
from datetime import datetime
from enum import Enum

from PIL import Image, UnidentifiedImageError
from pydantic import BaseModel, Field

from boxloop.image_contract import MAX_BYTES, MAX_PIXELS, ImageDecodeError, ImageFormat, decode_rgb

JPEG_SIGNATURE = b"\xff\xd8\xff"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_IEND_CHUNK = b"\x00\x00\x00\x00IEND\xaeB`\x82"
DECODE_CHECK_SIDE = 256
"""The full decode check's working size: a JPEG decodes at a reduced DCT scale (every byte still read)."""


class RejectionCode(str, Enum):
    """Why an upload was quarantined."""

    EMPTY = "empty"
    TOO_LARGE = "too_large"
    NOT_AN_IMAGE = "not_an_image"
    UNSUPPORTED_FORMAT = "unsupported_format"
    DECOMPRESSION_BOMB = "decompression_bomb"
    TRUNCATED = "truncated"
    UNDECODABLE = "undecodable"


class ImageLimits(BaseModel):
    """What ingest accepts and how many bytes it reads to decide.

    The defaults are the image contract's: ``max_bytes`` is Ground Truth's 40 MB per image;
    ``max_pixels`` guards against decompression bombs (a small file that would expand to a
    huge bitmap). Neither may exceed the contract, so whatever ingest registers, the detector decodes.
    """

    max_bytes: int = Field(default=MAX_BYTES, gt=0, le=MAX_BYTES)
    max_pixels: int = Field(default=MAX_PIXELS, gt=0, le=MAX_PIXELS)
    head_bytes: int = Field(default=64 * 1024, ge=64)
    max_head_bytes: int = Field(default=1024 * 1024, ge=64)


class Rejection(BaseModel):
    """A rejected upload: a reason code and a message naming what was wrong."""

    reason_code: RejectionCode
    message: str


class QuarantineRecord(BaseModel):
    """``quarantine/<original key>.reason.json``."""

    key: str
    reason_code: RejectionCode
    message: str
    size: int = Field(ge=0)
    detected_at: datetime


class ImageHeader(BaseModel):
    """What the header says about an acceptable image (stored size, before EXIF orientation)."""

    format: ImageFormat
    width: int = Field(gt=0)
    height: int = Field(gt=0)


class DecodedImage(BaseModel):
    """An image the detector decodes: its format and its oriented size (what people and the detector see)."""

    format: ImageFormat
    width: int = Field(gt=0)
    height: int = Field(gt=0)


class MoreBytesNeeded(BaseModel):
    """The header does not fit in the bytes read so far: read the first ``head_bytes`` bytes."""

    head_bytes: int = Field(gt=0)


def check_size(size: int, limits: ImageLimits) -> Rejection | None:
    """Reject an empty object or one over ``limits.max_bytes``."""
    if size == 0:
        return Rejection(reason_code=RejectionCode.EMPTY, message="the file is empty (0 bytes)")
    if size > limits.max_bytes:
        return Rejection(
            reason_code=RejectionCode.TOO_LARGE,
            message=f"the file is {size:,} bytes, over the limit of {limits.max_bytes:,} bytes",
        )
    return None


def _signature_format(head: bytes) -> ImageFormat | None:
    if head.startswith(JPEG_SIGNATURE):
        return "JPEG"
    if head.startswith(PNG_SIGNATURE):
        return "PNG"
    return None


def _open_quietly(head: bytes, formats: list[str] | None) -> Image.Image:
    """Open the header with PIL (no pixel decoding); PIL's own bomb warning is ours to judge."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        return Image.open(io.BytesIO(head), formats=formats)


def _other_format_rejection(head: bytes) -> Rejection:
    """The bytes are not JPEG or PNG: name the format if PIL knows it, else say it is no image."""
    try:
        detected = _open_quietly(head, None).format
    except UnidentifiedImageError:
        return Rejection(
            reason_code=RejectionCode.NOT_AN_IMAGE,
            message="the file is not an image (no known image signature), whatever its extension",
        )
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        return Rejection(
            reason_code=RejectionCode.UNSUPPORTED_FORMAT,
            message=f"an image format other than JPEG or PNG ({exc}); only JPEG and PNG are accepted",
        )
    return Rejection(
        reason_code=RejectionCode.UNSUPPORTED_FORMAT,
        message=f"{detected} images are not supported; only JPEG and PNG are accepted",
    )


def _bomb(width: int, height: int, limits: ImageLimits) -> Rejection:
    return Rejection(
        reason_code=RejectionCode.DECOMPRESSION_BOMB,
        message=(
            f"{width}×{height} = {width * height:,} pixels is over the limit of {limits.max_pixels:,} "
            "(possible decompression bomb)"
        ),
    )


def check_header(head: bytes, size: int, limits: ImageLimits) -> ImageHeader | Rejection | MoreBytesNeeded:
    """Identify the image from its first bytes (``head``) of an object of ``size`` bytes.

    Returns ``MoreBytesNeeded`` when a JPEG or PNG header runs past ``head`` (large
    metadata before the frame header) and more of the object can still be read.
    """
    image_format = _signature_format(head)
    if image_format is None:
        return _other_format_rejection(head)
    try:
        image = _open_quietly(head, [image_format])
    except Image.DecompressionBombError as exc:
        return Rejection(reason_code=RejectionCode.DECOMPRESSION_BOMB, message=f"{exc}")
    except (OSError, SyntaxError, ValueError) as exc:
        whole_object_read = len(head) >= size
        if not whole_object_read and len(head) < limits.max_head_bytes:
            return MoreBytesNeeded(head_bytes=min(size, limits.max_head_bytes, 4 * len(head)))
        if whole_object_read:
            return Rejection(
                reason_code=RejectionCode.TRUNCATED,
                message=f"the file starts like a {image_format} but ends before its header does ({exc})",
            )
        return Rejection(
            reason_code=RejectionCode.NOT_AN_IMAGE,
            message=(
                f"the file starts like a {image_format} but no readable header was found in its first "
                f"{len(head):,} bytes ({exc})"
            ),
        )
    width, height = image.size
    if width <= 0 or height <= 0:
        return Rejection(
            reason_code=RejectionCode.NOT_AN_IMAGE,
            message=f"the {image_format} header gives an empty image ({width}×{height})",
        )
    if width * height > limits.max_pixels:
        return _bomb(width, height, limits)
    return ImageHeader(format=image_format, width=width, height=height)


def check_decodes(data: bytes) -> DecodedImage | Rejection:
    """Decode every pixel of the whole object ``data`` with the detector's decoder (``decode_rgb``).

    A file that ends before its pixel data does, or a PNG without its IEND chunk (which PIL
    would decode without its last checksum), is ``truncated``; one whose data is broken (a
    damaged middle, even when it still ends with a valid end marker) is ``undecodable``.
    """
    try:
        _, image_format, width, height = decode_rgb(data, "the file", DECODE_CHECK_SIDE)
    except ImageDecodeError as exc:
        code = RejectionCode.TRUNCATED if exc.truncated else RejectionCode.UNDECODABLE
        return Rejection(reason_code=code, message=str(exc))
    if image_format == "PNG" and PNG_IEND_CHUNK not in data:
        return Rejection(reason_code=RejectionCode.TRUNCATED, message="the file is truncated: it has no PNG IEND chunk")
    return DecodedImage(format=image_format, width=width, height=height)
