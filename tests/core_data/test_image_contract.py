"""The image contract (``boxloop.image_contract``): real-world images decode the same at ingest and in the detector."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from boxloop.image_contract import MAX_PIXELS, ImageDecodeError, decode_rgb
from boxloop.image_header import DecodedImage, check_decodes
from sagemaker_jobs.image_io import ImageReadError, decode_image

EXIF_ORIENTATION = 0x0112


def encoded(image: Image.Image, image_format: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, image_format, **options)
    return buffer.getvalue()


def phone_photo(orientation: int) -> bytes:
    """A 4000×3000-like (400×300) JPEG, black with a white square in its stored top-left corner."""
    pixels = np.zeros((300, 400, 3), dtype=np.uint8)
    pixels[:60, :60] = 255
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = orientation
    return encoded(Image.fromarray(pixels), "JPEG", quality=95, exif=exif)


@pytest.mark.parametrize(
    ("orientation", "white_corner"),
    [(1, (0, 0)), (6, (0, 1)), (8, (1, 0))],
    ids=["upright", "rotate-90-cw", "rotate-90-ccw"],
)
def test_exif_orientation_gives_one_oriented_size_and_the_same_pixels_at_ingest_and_in_the_detector(
    orientation, white_corner
):
    data = phone_photo(orientation)
    expected = (400, 300) if orientation == 1 else (300, 400)
    assert check_decodes(data) == DecodedImage(format="JPEG", width=expected[0], height=expected[1])
    image, width, height = decode_image(data, "phone.jpg")
    assert (width, height) == image.size == expected
    pixels = np.asarray(image)
    row, column = white_corner
    corner = pixels[row * (height - 30) : row * (height - 30) + 30, column * (width - 30) : column * (width - 30) + 30]
    assert corner.mean() > 240, "the white square is where a viewer shows it"
    assert pixels.mean() < 40


def test_a_large_phone_photo_is_downsampled_with_its_full_oriented_size():
    data = phone_photo(6)
    image, width, height = decode_image(data, "phone.jpg", max_side=100)
    assert (width, height) == (300, 400)
    assert max(image.size) <= 100 and image.size[1] > image.size[0]


def test_an_odd_aspect_ratio_keeps_its_size():
    data = encoded(Image.new("RGB", (1000, 7), (10, 200, 30)), "PNG")
    assert check_decodes(data) == DecodedImage(format="PNG", width=1000, height=7)
    image, width, height = decode_image(data, "strip.png", max_side=500)
    assert (width, height) == (1000, 7) and image.size[0] == 500


def test_grayscale_decodes_to_rgb():
    data = encoded(Image.new("L", (20, 10), 100), "PNG")
    image, _, _ = decode_image(data, "gray.png")
    assert image.mode == "RGB" and image.getpixel((5, 5)) == (100, 100, 100)


def test_sixteen_bit_decodes_to_rgb_rescaled():
    values = np.full((10, 20), 1000, dtype=np.uint16)
    values[0, 0] = 65535
    sixteen_bit = Image.fromarray(values)
    assert sixteen_bit.mode == "I;16"
    data = encoded(sixteen_bit, "PNG")
    image, width, height = decode_image(data, "depth.png")
    assert (width, height) == (20, 10) and image.mode == "RGB"
    assert image.getpixel((0, 0)) == (255, 255, 255)
    assert image.getpixel((5, 5)) == (3, 3, 3)  # 1000 / 65535 × 255


def test_palette_with_transparency_composites_on_white():
    palette = Image.new("P", (20, 10), 0)
    palette.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    palette.paste(1, (10, 0, 20, 10))
    data = encoded(palette, "PNG", transparency=0)
    image, _, _ = decode_image(data, "palette.png")
    assert image.getpixel((2, 2)) == (255, 255, 255)
    assert image.getpixel((15, 5)) == (0, 0, 255)


def test_the_detector_refuses_what_ingest_refuses():
    with pytest.raises(ImageDecodeError, match="pixels is over the limit"):
        decode_rgb(_png_header_claiming(8_000, MAX_PIXELS // 8_000 + 1), "bomb.png", 256)
    with pytest.raises(ImageReadError, match="cannot decode image"):
        decode_image(encoded(Image.new("RGB", (8, 8)), "GIF"), "anim.gif")


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_header_claiming(width: int, height: int) -> bytes:
    """A tiny, complete PNG whose header claims ``width``×``height`` (decoding must stop at the header)."""
    header = _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
    return b"\x89PNG\r\n\x1a\n" + header + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + _png_chunk(b"IEND", b"")
