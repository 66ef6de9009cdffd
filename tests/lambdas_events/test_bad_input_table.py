"""The bad-input table of docs/stack.md, produced by uploading each input through the real ingest handler on moto.

Every upload ends exactly one way: registered (its bytes under a content-addressed key),
noted as a duplicate of a registered image, quarantined with its reason, or ignored (a folder
marker); nothing is lost and the registered-images counter moves once per new image.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from boxloop.image_header import ImageLimits
from lambdas.ingest.handler import handler
from tests.lambdas_events.conftest import BUCKET, image_bytes, png_claiming_size
from tests.lambdas_events.test_image_header import broken_middle

STACK_DOC = Path(__file__).resolve().parents[2] / "docs" / "stack.md"
MOTION_PHOTO_VIDEO = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 64


@dataclass(frozen=True)
class Case:
    """One input kind: its uploads (in order; the last is the one the row describes) and the expected result."""

    kind: str
    uploads: tuple[tuple[str, bytes], ...]
    result: str
    deliveries: int = 1


def _exif(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif


def _png(image: Image.Image, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG", **options)
    return buffer.getvalue()


def _palette_with_transparency() -> bytes:
    palette = Image.new("P", (64, 48), 0)
    palette.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    palette.paste(1, (32, 0, 64, 48))
    return _png(palette, transparency=0)


def _cases() -> list[Case]:
    jpeg, png = image_bytes("JPEG", seed=11), image_bytes("PNG", seed=12)
    return [
        Case("good JPEG", (("incoming/good.jpg", jpeg),), "registered, 64×48"),
        Case("good PNG", (("incoming/good.png", png),), "registered, 64×48"),
        Case(
            "phone photo, EXIF orientation 6 (stored 80×60)",
            (("incoming/phone-6.jpg", image_bytes("JPEG", size=(80, 60), seed=13, exif=_exif(6))),),
            "registered, 60×80",
        ),
        Case(
            "phone photo, EXIF orientation 8 (stored 80×60)",
            (("incoming/phone-8.jpg", image_bytes("JPEG", size=(80, 60), seed=14, exif=_exif(8))),),
            "registered, 60×80",
        ),
        Case("grayscale PNG (L)", (("incoming/gray.png", _png(Image.new("L", (64, 48), 90))),), "registered, 64×48"),
        Case(
            "16-bit grayscale PNG (I;16)",
            (("incoming/depth.png", _png(Image.fromarray(np.full((48, 64), 4000, dtype=np.uint16)))),),
            "registered, 64×48",
        ),
        Case(
            "palette PNG with transparency",
            (("incoming/palette.png", _palette_with_transparency()),),
            "registered, 64×48",
        ),
        Case(
            "JPEG with bytes after FFD9 (motion photo)",
            (("incoming/motion.jpg", image_bytes("JPEG", seed=15) + MOTION_PHOTO_VIDEO),),
            "registered, 64×48",
        ),
        Case(
            "PNG with bytes after IEND",
            (("incoming/trailer.png", image_bytes("PNG", seed=16) + b"\x00" * 100),),
            "registered, 64×48",
        ),
        Case(
            "S3 console folder marker (`incoming/shelves/`, 0 bytes)",
            (("incoming/shelves/", b""),),
            "ignored: folder marker",
        ),
        Case("empty file", (("incoming/empty.jpg", b""),), "quarantined: `empty`"),
        Case(
            "JPEG cut short (no end marker)",
            (("incoming/cut.jpg", image_bytes("JPEG", size=(200, 150), seed=17)[:1500]),),
            "quarantined: `truncated`",
        ),
        Case(
            "PNG cut short (no IEND)",
            (("incoming/cut.png", image_bytes("PNG", seed=18)[:-20]),),
            "quarantined: `truncated`",
        ),
        Case(
            "JPEG with a broken middle that still ends in FFD9",
            (("incoming/broken.jpg", broken_middle(image_bytes("JPEG", size=(400, 300), seed=19))),),
            "quarantined: `undecodable`",
        ),
        Case(
            "PNG with a broken middle that still ends in IEND",
            (("incoming/broken.png", broken_middle(image_bytes("PNG", size=(400, 300), seed=20))),),
            "quarantined: `undecodable`",
        ),
        Case("text file named .jpg", (("incoming/notes.jpg", b"not a photo\n" * 20),), "quarantined: `not_an_image`"),
        Case(
            "WebP image", (("incoming/photo.webp", image_bytes("WEBP", seed=21)),), "quarantined: `unsupported_format`"
        ),
        Case(
            "over 40 megapixels (8000×5001 PNG header)",
            (("incoming/bomb.png", png_claiming_size(8_000, 5_001)),),
            "quarantined: `decompression_bomb`",
        ),
        Case(
            "over 40 MB",
            (("incoming/huge.jpg", b"\xff\xd8\xff" + b"\x00" * ImageLimits().max_bytes),),
            "quarantined: `too_large`",
        ),
        Case(
            "same bytes under another key",
            (
                ("incoming/dup/first.jpg", image_bytes("JPEG", seed=22)),
                ("incoming/dup/again.jpg", image_bytes("JPEG", seed=22)),
            ),
            "duplicate: noted on the registered image, not counted again",
        ),
        Case(
            "same key re-uploaded with new bytes",
            (
                ("incoming/shelf.jpg", image_bytes("JPEG", seed=23)),
                ("incoming/shelf.jpg", image_bytes("JPEG", seed=24)),
            ),
            "registered as a new image, 64×48; the first keeps its bytes",
        ),
        Case(
            "the same S3 event delivered twice",
            (("incoming/twice.jpg", image_bytes("JPEG", seed=25)),),
            "registered once, 64×48",
            deliveries=2,
        ),
    ]


def bad_input_table(results: dict[str, str]) -> str:
    """The Markdown table of docs/stack.md: each input kind and what ingest did with it."""
    rows = ["| Input | Key | Result |", "| --- | --- | --- |"]
    for case in _cases():
        rows.append(f"| {case.kind} | `{case.uploads[-1][0]}` | {results[case.kind]} |")
    return "\n".join(rows) + "\n"


def _items(aws) -> dict[str, dict]:
    return {item["image_id"]["S"]: item for item in aws.dynamodb.scan(TableName="images")["Items"]}


def _object(aws, ref: str) -> bytes:
    return aws.s3.get_object(Bucket=BUCKET, Key=ref.removeprefix(f"s3://{BUCKET}/"))["Body"].read()


def _result(aws, case: Case) -> str:
    key, body = case.uploads[-1]
    if f"quarantine/{key}.reason.json" in aws.keys("quarantine/"):
        return f"quarantined: `{aws.read_json(f'quarantine/{key}.reason.json')['reason_code']}`"
    item = _items(aws).get(hashlib.sha256(body).hexdigest())
    if item is None:
        return "ignored: folder marker" if key.endswith("/") and key in aws.keys("incoming/") else "lost"
    size = f"{item['width']['N']}×{item['height']['N']}"
    if f"s3://{BUCKET}/{key}" in item.get("duplicate_keys", {}).get("SS", []):
        return "duplicate: noted on the registered image, not counted again"
    if len(case.uploads) > 1:
        first_key, first_body = case.uploads[0]
        first = _items(aws)[hashlib.sha256(first_body).hexdigest()]
        kept = _object(aws, first["source_ref"]["S"]) == first_body and first_key == key
        return f"registered as a new image, {size}; the first {'keeps its bytes' if kept else 'changed'}"
    return f"registered once, {size}" if case.deliveries > 1 else f"registered, {size}"


def _assert_nothing_lost(aws, uploads: list[tuple[str, bytes]]) -> None:
    items = _items(aws)
    for key, body in uploads:
        item = items.get(hashlib.sha256(body).hexdigest())
        quarantined = f"quarantine/{key}" in aws.keys("quarantine/") and _object(aws, f"quarantine/{key}") == body
        registered = item is not None and _object(aws, item["source_ref"]["S"]) == body
        folder_marker = key.endswith("/") and not body
        assert quarantined or registered or folder_marker, f"{key} was lost"
    counter = aws.runs_item("COUNTER", "REGISTERED")
    assert int(counter["count"]["N"]) == len(items), "the registered-images counter moved once per new image"


def test_every_input_kind_ends_as_the_table_says_and_nothing_is_lost(aws, lambda_context):
    results, uploads = {}, []
    for case in _cases():
        for key, body in case.uploads:
            aws.s3.put_object(Bucket=BUCKET, Key=key, Body=body)
            batch = aws.sqs_batch()
            for _ in range(case.deliveries):
                assert handler(batch, lambda_context) == {"batchItemFailures": []}
            uploads.append((key, body))
        results[case.kind] = _result(aws, case)
    assert results == {case.kind: case.result for case in _cases()}
    _assert_nothing_lost(aws, uploads)
    table = bad_input_table(results)
    assert table in STACK_DOC.read_text(encoding="utf-8"), f"docs/stack.md must hold this table:\n{table}"
