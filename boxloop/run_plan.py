"""The plan of a run without a configuration: sizes that fit the corpus and the budget, and whether it can learn.

One rule (README, "Configuration"), from the number of images ``N``, the budget ``B`` seconds and the expected
seconds ``s`` people take for one image without help (``boxloop.people_waves.unaided_task_seconds``: the time
model for ``expected_objects_per_image`` objects):

- validation needs ``V = ceil(min_validation_images / (1 - qc.max_initial_failure_share))`` images, so that the
  bound's minimum survives the rejections QC allows; training needs as many again;
- the initial sample is ``max(2 V, 10% of N, MIN_OBJECTS_TO_LEARN / expected_objects_per_image)`` images, but
  at most half the corpus and at most what half the budget pays for (``B / 2 / s``), then grown by ``(R - 1) V``
  images as far as those two caps allow, ``R = VALIDATION_RESOLUTION``; its validation part is ``R V`` images, at
  most half the sample and at least ``V``. With ``V`` validation images the bound needs nearly all of them above the
  threshold, so it can only auto-label the whole pool or nothing; with ``R V`` its minimum is a ``1 / R`` share of
  the set, so a threshold can take the confident part of the pool (issue 17: on the mixed 2,000-image benchmark the
  larger set halved boxloop's human hours on both seeds measured, at the cost of 66 more initial images);
- each later iteration's batch of uncertain images is an equal part, over ``max_iterations`` iterations, of the
  images left after the sample and of what the rest of the budget pays for at the pre-filled rate (``s / 2``),
  and at most the initial sample's size, whichever is smallest, and at least 1: every iteration's detector gets
  its share of the pool to auto-label before people take the uncertain rest (when the budget does not bind, the
  batch is not "all that is left", which would hand the whole pool to people after the first detector), and a
  detector is retrained once people have at most doubled what it learnt from (issue 17: on the mixed 2,000-image
  benchmark, a first detector that auto-labelled half the pool left a third of it to people in one batch of 578;
  with batches of 268 the next detector auto-labelled nearly all the rest just the same, saving 1.3 h on each such
  seed).

Too small to learn: Ground Truth refuses automated labelling under 1,250 labelled objects. Our rule is smaller,
because the bound on auto-label quality, not a fixed count, decides whether anything is auto-labelled: a
detector is trained only if the initial sample can hold ``2 V`` images and at least ``MIN_OBJECTS_TO_LEARN``
objects (at ``expected_objects_per_image``). Otherwise the run trains nothing (``auto_label`` false): people
label the images in budget-sized waves, and the report says how many remain unlabelled.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel

from boxloop.config import LabelingConfig
from boxloop.people_waves import unaided_task_seconds
from boxloop.validation_split import validation_count

MIN_OBJECTS_TO_LEARN = 300
"""The fewest objects the initial sample must hold for boxloop to train a detector at all."""

VALIDATION_RESOLUTION = 3
"""The validation set grows to this many times the bound's minimum ``V`` where the corpus and budget allow."""

INITIAL_SHARE_OF_CORPUS = 0.1
"""The initial sample is at least this share of the corpus (more random labels give a tighter bound)."""

MAX_SAMPLE_SHARE = 0.5
"""The initial sample takes at most this share of the corpus and of the budget."""


class RunPlan(BaseModel):
    """What a run will do, said before any work."""

    images: int
    budget_hours: float
    seconds_per_image: float
    initial_sample_size: int
    validation_images: int
    human_batch_size: int
    initial_sample_hours: float
    hours_left_after_sample: float
    learns: bool
    too_small_reason: str | None = None

    def lines(self) -> list[str]:
        """The plan in plain sentences."""
        said = [
            f"plan: {self.images} images, budget {self.budget_hours:.2f} h, about {self.seconds_per_image:.0f} s "
            "per image for a person without help",
        ]
        if self.learns:
            said.append(
                f"plan: initial sample {self.initial_sample_size} images ({self.validation_images} to validate), "
                f"expected {self.initial_sample_hours:.2f} h; {self.hours_left_after_sample:.2f} h left for later "
                f"iterations of up to {self.human_batch_size} images each"
            )
        else:
            said.append(f"plan: too small to learn: {self.too_small_reason}")
            said.append(
                "plan: no detector is trained and nothing is auto-labelled; people label the images in waves "
                "within the budget, and the report says how many remain unlabelled"
            )
        return said


def validation_needed(config: LabelingConfig) -> int:
    """Validation images the bound needs after the rejections QC allows."""
    return math.ceil(config.quality.min_validation_images / (1.0 - config.qc.max_initial_failure_share))


def _affordable_sample(n_images: int, config: LabelingConfig, extra: int = 0) -> int:
    """The initial sample the rule allows, grown by ``extra`` images as far as its caps allow."""
    per_image = unaided_task_seconds(config, [])
    return min(
        max(
            2 * validation_needed(config),
            math.ceil(INITIAL_SHARE_OF_CORPUS * n_images),
            math.ceil(MIN_OBJECTS_TO_LEARN / config.expected_objects_per_image),
        )
        + extra,
        math.floor(MAX_SAMPLE_SHARE * n_images),
        math.floor(MAX_SAMPLE_SHARE * config.human_budget_seconds / per_image),
    )


def too_small_reason(n_images: int, config: LabelingConfig) -> str | None:
    """Why the corpus and budget cannot train a useful detector (our rule, above), or None when they can."""
    sample = _affordable_sample(n_images, config)
    needed = 2 * validation_needed(config)
    if sample < needed:
        return (
            f"an initial sample of {needed} images is needed (half to validate, half to train), but the corpus "
            f"and the budget allow only {max(sample, 0)}"
        )
    objects = sample * config.expected_objects_per_image
    if objects < MIN_OBJECTS_TO_LEARN:
        return f"the initial sample would hold about {objects:.0f} objects, fewer than {MIN_OBJECTS_TO_LEARN}"
    return None


def derived_fields(n_images: int, config: LabelingConfig) -> dict[str, Any]:
    """The configuration fields the rule sets for ``n_images`` under ``config``'s budget."""
    if n_images < 1:
        raise ValueError("there are no images to label")
    if too_small_reason(n_images, config) is not None:
        return {"initial_sample_size": max(n_images, 10), "auto_label": False}
    per_image = unaided_task_seconds(config, [])
    minimum = validation_needed(config)
    sample = _affordable_sample(n_images, config, extra=(VALIDATION_RESOLUTION - 1) * minimum)
    validation = max(minimum, min(VALIDATION_RESOLUTION * minimum, math.floor(MAX_SAMPLE_SHARE * sample)))
    left = config.human_budget_seconds - sample * per_image
    affordable = math.floor(left / config.max_iterations / (per_image / 2))
    share_of_images = math.ceil((n_images - sample) / config.max_iterations)
    return {
        "initial_sample_size": max(sample, 10),
        "validation_share": min(_share_of(validation, sample), MAX_SAMPLE_SHARE),
        "human_batch_size": max(1, min(share_of_images, affordable, sample)),
        "auto_label": True,
    }


def _share_of(count: int, total: int) -> float:
    """The largest share whose ``ceil(share × total)`` is ``count`` (a float quotient can round one image up)."""
    share = count / total
    while math.ceil(share * total) > count:
        share = math.nextafter(share, 0.0)
    return share


def describe_plan(n_images: int, config: LabelingConfig) -> RunPlan:
    """What a run of ``config`` on ``n_images`` will do, said before any work."""
    per_image = unaided_task_seconds(config, [])
    sample = min(config.initial_sample_size, n_images)
    sample_seconds = min(sample * per_image, config.human_budget_seconds)
    reason = too_small_reason(n_images, config) if not config.auto_label else None
    return RunPlan(
        images=n_images,
        budget_hours=config.human_budget_hours,
        seconds_per_image=per_image,
        initial_sample_size=sample,
        validation_images=validation_count(config) if config.auto_label else 0,
        human_batch_size=config.human_batch_size,
        initial_sample_hours=sample_seconds / 3600,
        hours_left_after_sample=(config.human_budget_seconds - sample_seconds) / 3600,
        learns=config.auto_label,
        too_small_reason=reason or ("auto_label is false in the configuration" if not config.auto_label else None),
    )
