"""SplitTrainValidation's rule: which human labels are trained on and which validate (DESIGN.md "The guarantee").

Validation images must be a random sample of the pool that is never trained on. Only the random
initial sample (human labels of ``initial`` tasks, late answers included) is such a sample. The
validation set is an exact count, ``validation_count``: the initial-sample images with an accepted
human label, taken in keyed-random order for ``validation`` (``boxloop.keyed_draw``) until the count is
reached, so it is a uniformly random subset of the random initial sample, and an answer QC rejected is
replaced by the next image in that order (topped up from the labels that came next). The detector is
trained only once the whole initial sample has been answered, so the set changes afterwards only when a
late answer joins it (an image never trained on); the image it displaces moves to training. Every other
human or audit label (chosen for uncertainty, not at random) is trained on. Auto-labels are never trained on.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Mapping
from typing import Any

from boxloop.config import LabelingConfig
from boxloop.keyed_draw import keyed_rank, keyed_share
from boxloop.models import LabelSource

CHANNELS = ("train", "validation")
VALIDATION_PURPOSE = "validation"


MAX_VALIDATION_SHARE = 0.5
"""Validation never takes more than this share of the initial sample (or ``validation_share``, if larger)."""


def validation_count(config: LabelingConfig) -> int:
    """How many validation images a run keeps: ``validation_share`` of the initial sample and at least
    ``quality.min_validation_images`` (never a share that can fall one short of the bound's minimum), but at
    most ``max(validation_share, MAX_VALIDATION_SHARE)`` of the sample, so a sample too small for the
    minimum still trains (and its bound then says plainly that validation is too small)."""
    size = config.initial_sample_size
    wanted = max(config.quality.min_validation_images, math.ceil(config.validation_share * size))
    return min(wanted, math.floor(max(config.validation_share, MAX_VALIDATION_SHARE) * size))


def is_validation(image_id: str, seed: int, share: float) -> bool:
    """Whether an image's keyed share for ``validation`` falls below ``share`` (the benchmarks' hash split)."""
    return keyed_share(seed, VALIDATION_PURPOSE, image_id) < share


def validation_ids(labelled_initial_ids: Iterable[str], count: int, seed: int) -> set[str]:
    """The ``count`` labelled initial-sample images first in keyed-random ``validation`` order."""
    return set(heapq.nsmallest(count, set(labelled_initial_ids), key=lambda i: keyed_rank(seed, VALIDATION_PURPOSE, i)))


def is_initial_human_label(metadata: Mapping[str, Any], initial_ids: set[str]) -> bool:
    """Whether a manifest line's metadata is a human label of an initial-sample image."""
    return metadata["label-source"] == LabelSource.HUMAN.value and metadata["image-id"] in initial_ids


def channel_of(metadata: Mapping[str, Any], validation: set[str]) -> str | None:
    """``train``, ``validation``, or None (auto-labels are not trained on), from a manifest line's metadata."""
    source = metadata["label-source"]
    if source == LabelSource.AUTO.value:
        return None
    if source == LabelSource.HUMAN.value and metadata["image-id"] in validation:
        return "validation"
    return "train"


def check_channel(channel: str, count: int, wanted_validation: int, where: str) -> None:
    """ValueError naming ``where`` when ``channel`` got no labels: training needs both channels."""
    if count == 0:
        raise ValueError(
            f"{where}: no human labels for the {channel} channel "
            f"(the initial sample is too small for {wanted_validation} validation images)"
        )
