"""Records the core tests make: registered images, and a human label with one box as a validation (gold) image has."""

import hashlib
from datetime import UTC, datetime

from boxloop.models import Box, ImageRecord, LabelRecord, LabelSource

GOLD_BOX = Box(class_id=0, left=0, top=0, width=4, height=4)


def human_record(image_id: str) -> LabelRecord:
    """A 64×48 image labelled by a person in iteration 0 with ``GOLD_BOX`` (class ``a``)."""
    return LabelRecord(
        image_id=image_id,
        source_ref=f"s3://b/{image_id}.jpg",
        width=64,
        height=48,
        boxes=[GOLD_BOX],
        box_confidences=[1.0],
        class_map={"0": "a"},
        label_source=LabelSource.HUMAN,
        creation_date="",
        job_name="",
        iteration=0,
    )


def image_records(count: int) -> list[ImageRecord]:
    """``count`` registered 10×10 images whose ids are the sha256 of ``image-<n>``."""
    return [
        ImageRecord(
            image_id=hashlib.sha256(f"image-{n}".encode()).hexdigest(),
            source_ref=f"s3://b/{n}.jpg",
            width=10,
            height=10,
            registered_at=datetime(2026, 1, 1, tzinfo=UTC),
        )
        for n in range(count)
    ]
