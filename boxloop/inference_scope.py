"""Which pool images an iteration's pool inference reads: the unlabelled ones and the validation images.

An image people or the detector already labelled is never routed again (RouteShard excludes it), so inferring
it again would only cost time; the validation images are labelled too, but ComputeThreshold measures each new
detector on them. Late in a run most of the pool is labelled, so each iteration infers a shrinking remainder
rather than all of it: at 500,000 images, the difference between re-inferring the pool and inferring what is left.
"""

from __future__ import annotations

from collections.abc import Iterable, Set
from typing import TypeVar

ItemT = TypeVar("ItemT")


def needs_inference(image_id: str, labelled: Set[str], validation: Set[str]) -> bool:
    """Whether this iteration's pool inference reads the image: it is unlabelled, or a validation image."""
    return image_id in validation or image_id not in labelled


def images_to_infer(items: Iterable[tuple[str, ItemT]], labelled: Set[str], validation: Set[str]) -> list[ItemT]:
    """The items (image id, anything) whose image pool inference reads, in their order."""
    return [item for image_id, item in items if needs_inference(image_id, labelled, validation)]
