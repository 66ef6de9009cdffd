"""Pure upload validation (``boxloop.image_header``): header and full decode, no AWS."""

from __future__ import annotations

import pytest

from boxloop.image_contract import MAX_BYTES, MAX_PIXELS
from boxloop.image_header import (
    DecodedImage,
    ImageHeader,
    ImageLimits,
    MoreBytesNeeded,
    RejectionCode,
    check_decodes,
    check_header,
    check_size,
)
from tests.lambdas_events.conftest import image_bytes, png_claiming_size

LIMITS = ImageLimits()


@pytest.mark.parametrize(
    ("size", "code"),
    [(0, RejectionCode.EMPTY), (LIMITS.max_bytes + 1, RejectionCode.TOO_LARGE)],
)
def test_size_limits_reject(size, code):
    rejection = check_size(size, LIMITS)
    assert rejection is not None and rejection.reason_code == code


def test_size_at_the_limit_passes():
    assert check_size(LIMITS.max_bytes, LIMITS) is None


@pytest.mark.parametrize("image_format", ["JPEG", "PNG"])
def test_accepted_formats_give_size_and_decode(image_format):
    data = image_bytes(image_format, size=(80, 50))
    header = check_header(data[: LIMITS.head_bytes], len(data), LIMITS)
    assert header == ImageHeader(format=image_format, width=80, height=50)
    assert check_decodes(data) == DecodedImage(format=image_format, width=80, height=50)


def test_ingest_limits_are_the_decoders():
    assert (LIMITS.max_bytes, LIMITS.max_pixels) == (MAX_BYTES, MAX_PIXELS) == (40 * 1024 * 1024, 40_000_000)
    with pytest.raises(ValueError):
        ImageLimits(max_pixels=MAX_PIXELS + 1)


def test_pixels_the_decoder_refuses_are_refused_at_ingest():
    data = png_claiming_size(8_000, 5_001)  # 40,008,000 pixels: under the old ingest limit of 50 MP
    assert check_header(data, len(data), LIMITS).reason_code == RejectionCode.DECOMPRESSION_BOMB


@pytest.mark.parametrize("image_format", ["WEBP", "BMP", "TIFF", "GIF"])
def test_other_image_formats_are_unsupported_and_named(image_format):
    data = image_bytes(image_format)
    rejection = check_header(data[: LIMITS.head_bytes], len(data), LIMITS)
    assert rejection.reason_code == RejectionCode.UNSUPPORTED_FORMAT
    assert image_format in rejection.message
    assert "JPEG and PNG" in rejection.message


def test_text_is_not_an_image():
    data = b"name,price\nbottle,2\n"
    rejection = check_header(data, len(data), LIMITS)
    assert rejection.reason_code == RejectionCode.NOT_AN_IMAGE


def test_pixel_count_over_the_limit_is_a_bomb():
    data = png_claiming_size(10_000, 10_000)
    rejection = check_header(data, len(data), LIMITS)
    assert rejection.reason_code == RejectionCode.DECOMPRESSION_BOMB
    assert "100,000,000" in rejection.message


def test_pillow_bomb_error_is_a_bomb_too():
    data = png_claiming_size(30_000, 30_000)
    assert check_header(data, len(data), LIMITS).reason_code == RejectionCode.DECOMPRESSION_BOMB


def test_header_past_the_first_read_asks_for_more_bytes():
    data = image_bytes("JPEG", icc_profile=b"\x00" * 150_000)
    verdict = check_header(data[: LIMITS.head_bytes], len(data), LIMITS)
    assert isinstance(verdict, MoreBytesNeeded) and verdict.head_bytes > LIMITS.head_bytes
    assert check_header(data[: verdict.head_bytes], len(data), LIMITS).width == 64


def test_file_cut_inside_its_header_is_truncated():
    data = image_bytes("JPEG")[:100]
    assert check_header(data, len(data), LIMITS).reason_code == RejectionCode.TRUNCATED


@pytest.mark.parametrize("image_format", ["JPEG", "PNG"])
def test_missing_end_is_truncated(image_format):
    data = image_bytes(image_format, size=(200, 150))
    assert check_decodes(data[: len(data) // 2]).reason_code == RejectionCode.TRUNCATED


@pytest.mark.parametrize("image_format", ["JPEG", "PNG"])
@pytest.mark.parametrize("trailer", [b"\x00" * 8, b"ftypmp42" + bytes(range(256)) * 40], ids=["padding", "video"])
def test_bytes_after_the_end_marker_are_accepted(image_format, trailer):
    assert check_decodes(image_bytes(image_format) + trailer) == DecodedImage(format=image_format, width=64, height=48)


def broken_middle(data: bytes) -> bytes:
    """An upload broken in its middle (a write restarted half-way): half the file, then the whole file again.

    It still starts and ends like a whole image (JPEG FFD9, PNG IEND).
    """
    return data[: len(data) // 2] + data


@pytest.mark.parametrize("image_format", ["JPEG", "PNG"])
def test_broken_middle_is_undecodable_though_it_ends_well(image_format):
    data = broken_middle(image_bytes(image_format, size=(400, 300)))
    assert data.endswith(b"\xff\xd9" if image_format == "JPEG" else b"IEND\xaeB`\x82")
    rejection = check_decodes(data)
    assert rejection.reason_code == RejectionCode.UNDECODABLE
    assert "broken data stream" in rejection.message
