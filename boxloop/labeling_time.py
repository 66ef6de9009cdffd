"""How long a person takes to box one image (DESIGN.md, "Human work").

About 10 s for one clear product, growing to about 30 s for a cluttered image
with several products, and half that when the person adjusts pre-filled boxes
instead of drawing them. The simulated workforce adds noise around this; routing
uses it to estimate cost before humans report their real seconds.

Sources: the per-object seconds are the design's assumption (DESIGN.md "Human work"), inside the published range
for drawing one box: about 7 s with extreme clicking and about 34.5 s the traditional way (Papadopoulos et al.,
"Extreme clicking for efficient object annotation", ICCV 2017, citing Su et al.'s 2012 crowdsourcing protocol).
The pre-fill factor is an assumption with no direct measurement behind it; the benchmarks vary it
(``bench/efficiency.py --prefill-factor``, and its sensitivity table at 0.3, 0.5 and 0.8).
"""

from __future__ import annotations

OVERHEAD_SECONDS = 6.0
"""Opening the image, looking it over and submitting, whatever it holds."""

SECONDS_PER_CLEAR_OBJECT = 4.0
"""Drawing one box on a clean background."""

SECONDS_PER_CLUTTERED_OBJECT = 6.0
"""Drawing one box among distractors, occluders and neighbours."""

PREFILLED_FACTOR = 0.5
"""Adjusting the model's boxes takes half the time of drawing them (DESIGN.md's assumption, see above)."""


def expected_label_seconds(
    n_objects: int, prefilled: bool, cluttered: bool, prefill_factor: float = PREFILLED_FACTOR
) -> float:
    """Expected seconds to label an image with ``n_objects`` products.

    One clear product: 6 + 4 = 10 s; four products in clutter: 6 + 4 x 6 = 30 s;
    both times ``prefill_factor`` (default ``PREFILLED_FACTOR``, a half) when the boxes are pre-filled.
    """
    if n_objects < 0:
        raise ValueError(f"n_objects must be >= 0, got {n_objects}")
    if not 0.0 < prefill_factor <= 1.0:
        raise ValueError(f"prefill_factor must be in (0, 1], got {prefill_factor}")
    per_object = SECONDS_PER_CLUTTERED_OBJECT if cluttered else SECONDS_PER_CLEAR_OBJECT
    seconds = OVERHEAD_SECONDS + per_object * n_objects
    return seconds * prefill_factor if prefilled else seconds
