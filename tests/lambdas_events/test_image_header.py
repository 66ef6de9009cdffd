"""Pure header validation (``boxloop.image_header``): no AWS."""

from __future__ import annotations

import pytest

from boxloop.image_header import (
    ImageHeader,
    ImageLimits,
    MoreBytesNeeded,
    RejectionCode,
    check_ending,
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
def test_accepted_formats_give_size_and_complete_ending(image_format):
    data = image_bytes(image_format, size=(80, 50))
    header = check_header(data[: LIMITS.head_bytes], len(data), LIMITS)
    assert header == ImageHeader(format=image_format, width=80, height=50)
    assert check_ending(image_format, data[-LIMITS.tail_bytes :]) is None


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
def test_missing_end_marker_is_truncated(image_format):
    data = image_bytes(image_format)
    cut = data[: len(data) // 2]
    rejection = check_ending(image_format, cut[-LIMITS.tail_bytes :])
    assert rejection.reason_code == RejectionCode.TRUNCATED


def test_jpeg_trailing_padding_is_tolerated():
    assert check_ending("JPEG", image_bytes("JPEG") + b"\x00" * 8) is None
