"""The benchmark harness (``bench/simulation``) on tiny corpora with the ``tiny`` detector."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

BENCH_DIR = Path(__file__).resolve().parents[2] / "bench"
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

from boxloop.corpus import CorpusSpec  # noqa: E402
from simulation.corpus_images import CorpusImage, corpus_images  # noqa: E402

TINY_DETECTOR = ["--detector", "tiny", "--image-size", "64", "--threads", "1"]
"""Options that make a benchmark script train the tiny test model on 64 px canvases."""


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory) -> list[CorpusImage]:
    """60 generated 64 px images, half easy."""
    return corpus_images(tmp_path_factory.mktemp("corpus"), CorpusSpec(n_images=60, image_size=64, seed=5))
