"""A generated corpus as the pipeline sees it: image ids (SHA-256 of the bytes), files, sizes, truth, difficulty."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from boxloop.corpus import CorpusSpec, generate_corpus, load_truth
from boxloop.models import Box, ImageRecord

SPEC_FILE = "spec.json"


@dataclass(frozen=True)
class CorpusImage:
    """One image of a generated corpus with its known truth."""

    image_id: str
    path: Path
    width: int
    height: int
    difficulty: str
    truth: tuple[Box, ...]

    def record(self) -> ImageRecord:
        """The pool record the pipeline would register for this image."""
        return ImageRecord(
            image_id=self.image_id,
            source_ref=f"file://{self.path}",
            width=self.width,
            height=self.height,
            registered_at=datetime(2026, 1, 1, tzinfo=UTC),
        )


def corpus_images(out_dir: Path, spec: CorpusSpec) -> list[CorpusImage]:
    """The corpus ``spec`` describes, generated under ``out_dir`` unless it is already there with the same spec.

    Raises FileExistsError when ``out_dir`` holds a different corpus.
    """
    spec_path = out_dir / SPEC_FILE
    if spec_path.exists():
        if json.loads(spec_path.read_text()) != spec.model_dump(mode="json"):
            raise FileExistsError(f"{out_dir} holds a corpus generated with another spec; choose another folder")
    else:
        generate_corpus(spec, out_dir, show_progress=True)
        spec_path.write_text(json.dumps(spec.model_dump(mode="json"), indent=1))
    truth_path = out_dir / "truth.json"
    truth = json.loads(truth_path.read_text())
    boxes = load_truth(truth_path)
    images = []
    for entry in truth["images"]:
        path = (out_dir / "images" / entry["file_name"]).resolve()
        images.append(
            CorpusImage(
                image_id=hashlib.sha256(path.read_bytes()).hexdigest(),
                path=path,
                width=entry["width"],
                height=entry["height"],
                difficulty=entry["difficulty"],
                truth=tuple(boxes[entry["file_name"]]),
            )
        )
    return images
