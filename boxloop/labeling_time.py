"""How long a person takes to box one image (DESIGN.md, "Human work").

About 10 s for one clear product, growing to about 30 s for a cluttered image
with several products, and half that when the person adjusts pre-filled boxes
instead of drawing them. The simulated workforce adds noise around this; routing
uses it to estimate cost before humans report their real seconds.
"""

from __future__ import annotations

OVERHEAD_SECONDS = 6.0
"""Opening the image, looking it over and submitting, whatever it holds."""

SECONDS_PER_CLEAR_OBJECT = 4.0
"""Drawing one box on a clean background."""

SECONDS_PER_CLUTTERED_OBJECT = 6.0
"""Drawing one box among distractors, occluders and neighbours."""

PREFILLED_FACTOR = 0.5
"""Adjusting the model's boxes takes half the time of drawing them."""


def expected_label_seconds(n_objects: int, prefilled: bool, cluttered: bool) -> float:
    """Expected seconds to label an image with ``n_objects`` products.

    One clear product: 6 + 4 = 10 s; four products in clutter: 6 + 4 x 6 = 30 s;
    both halved when the boxes are pre-filled.
    """
    if n_objects < 0:
        raise ValueError(f"n_objects must be >= 0, got {n_objects}")
    per_object = SECONDS_PER_CLUTTERED_OBJECT if cluttered else SECONDS_PER_CLEAR_OBJECT
    seconds = OVERHEAD_SECONDS + per_object * n_objects
    return seconds * PREFILLED_FACTOR if prefilled else seconds
