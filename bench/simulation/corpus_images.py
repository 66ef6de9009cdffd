"""A generated corpus as the pipeline sees it: image ids (SHA-256 of the bytes), files, sizes, truth, difficulty.

``named_corpus`` builds the benchmarks' corpora: ``mixed`` (the product-case mix of ``MIXED_PARTS``), ``dense``
and ``retail`` (``boxloop.corpus_profiles``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, get_args

from boxloop.corpus import CorpusSpec, generate_corpus, load_truth
from boxloop.corpus_profiles import profile_spec
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


CorpusName = Literal["mixed", "dense", "retail"]
CORPUS_NAMES: tuple[str, ...] = get_args(CorpusName)

MIXED_PARTS: dict[str, tuple[float, dict[str, Any]]] = {
    "studio": (0.4, {"easy_share": 1.0}),
    "lifestyle": (
        0.4,
        {"easy_share": 0.0, "hard_objects": (2, 5), "occlusion_probability": 0.2, "lighting_range": (0.8, 1.0)},
    ),
    "cluttered": (
        0.2,
        {"easy_share": 0.0, "hard_objects": (3, 6), "occlusion_probability": 0.9, "lighting_range": (0.25, 0.6)},
    ),
}
"""The product-case mix (issue 17): share of the corpus and ``CorpusSpec`` fields of each kind of image.

studio: one product near the centre of a plain table; lifestyle: 2–5 products on a textured scene, rarely
occluded, in good light; cluttered: 3–6 products, most partly hidden, in dim light (``boxloop.corpus``)."""


def _part_seed(seed: int, part: int) -> int:
    """Disjoint sub-corpus seeds: one run's parts never share a random stream with another seed's."""
    return 1000 * seed + part


def corpus_parts(corpus: str, seed: int) -> list[tuple[str, float, CorpusSpec]]:
    """``corpus``'s sub-corpora as (kind, share, spec of one image): the mix, or one profile's spec."""
    if corpus == "mixed":
        return [
            (kind, share, CorpusSpec(n_images=1, seed=_part_seed(seed, index), **fields))
            for index, (kind, (share, fields)) in enumerate(MIXED_PARTS.items())
        ]
    if corpus in ("dense", "retail"):
        return [(corpus, 1.0, profile_spec(corpus, 1, seed))]
    raise ValueError(f"unknown corpus {corpus!r}; choose one of {', '.join(CORPUS_NAMES)}")


def corpus_classes(corpus: str) -> tuple[str, ...]:
    """The classes ``corpus``'s images are drawn from, in class-id order."""
    return corpus_parts(corpus, 0)[0][2].class_names


def part_sizes(corpus: str, n_images: int) -> list[int]:
    """Images of each sub-corpus for ``n_images`` in all (largest remainders, so they add up exactly)."""
    shares = [share for _, share, _ in corpus_parts(corpus, 0)]
    exact = [share * n_images for share in shares]
    sizes = [int(value) for value in exact]
    for index in sorted(range(len(exact)), key=lambda i: sizes[i] - exact[i])[: n_images - sum(sizes)]:
        sizes[index] += 1
    return sizes


def named_corpus(
    work: Path, corpus: str, n_images: int, seed: int, generate_images: int | None = None
) -> list[CorpusImage]:
    """``n_images`` of the named corpus for ``seed``, generated under ``work`` once and reused.

    Each sub-corpus is rendered image by image from ``(seed, index)``, so a smaller corpus is a prefix of a larger
    one: a folder generated for at least as many images is reused; otherwise one is generated for
    ``max(n_images, generate_images)`` (so the larger corpora of a benchmark need no second generation). The
    images' ``difficulty`` names their kind (studio / lifestyle / cluttered for the mix, easy / hard otherwise).
    Raises ValueError when two sub-corpora share an image (identical bytes).
    """
    images: list[CorpusImage] = []
    generate = part_sizes(corpus, max(n_images, generate_images or 0))
    for (kind, _, spec), size, new in zip(
        corpus_parts(corpus, seed), part_sizes(corpus, n_images), generate, strict=True
    ):
        if size == 0:
            continue
        name = f"{corpus}-{kind}-s{spec.seed}"
        generated = sorted(
            (int(folder.name.rsplit("-n", 1)[1]), folder)
            for folder in work.glob(f"{name}-n*")
            if (folder / SPEC_FILE).exists() and int(folder.name.rsplit("-n", 1)[1]) >= size
        )
        count = generated[0][0] if generated else new
        part = corpus_images(work / f"{name}-n{count}", spec.model_copy(update={"n_images": count}))
        relabel = corpus == "mixed"
        images += [replace(image, difficulty=kind) if relabel else image for image in part[:size]]
    ids = [image.image_id for image in images]
    if len(set(ids)) != len(ids):
        raise ValueError(f"the {corpus} corpus for seed {seed} holds the same image twice")
    return images
