"""Corpus profiles: the synthetic corpus shaped like the real datasets boxloop meets (issue 14).

A profile is a named ``CorpusSpec`` without its size and seed:

=============  ============================================================================
profile        what it stands for
=============  ============================================================================
retail         today's product photos: half one centred product, half 2–5 cluttered ones
dense          microscopy-like: 10–16 small objects of 3 classes in every image
single-class   one class, one to three objects per image (the most common labelling job)
small-objects  512 px photos of 2–6 products of 14–31 px: 7–16 px on the detector's 256 px canvas
mixed-sizes    product sizes spread over a factor of 6 in the same corpus
=============  ============================================================================

Every profile is reproducible per seed like the retail corpus (``corpus.render_image``).
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from boxloop.corpus import CorpusSpec

ProfileName = Literal["retail", "dense", "single-class", "small-objects", "mixed-sizes"]
PROFILE_NAMES: tuple[str, ...] = get_args(ProfileName)

PROFILES: dict[str, dict[str, Any]] = {
    "retail": {},
    "dense": {"easy_share": 0.0, "hard_objects": (10, 16), "n_classes": 3, "object_scale": (0.45, 0.45),
              "occlusion_probability": 0.15},
    "single-class": {"n_classes": 1, "hard_objects": (1, 3)},
    "small-objects": {"image_size": 512, "easy_share": 0.0, "hard_objects": (2, 6), "object_scale": (0.15, 0.15),
                      "occlusion_probability": 0.2},
    "mixed-sizes": {"hard_objects": (2, 4), "object_scale": (0.25, 1.6)},
}  # fmt: skip
"""Each profile's ``CorpusSpec`` fields; anything not named keeps the spec's (retail) default."""


def profile_spec(profile: str, n_images: int, seed: int = 0, **overrides: Any) -> CorpusSpec:
    """The ``CorpusSpec`` of ``profile`` for ``n_images`` images; ``overrides`` (e.g. ``image_size``) win.

    Raises ValueError naming the known profiles for an unknown one.
    """
    if profile not in PROFILES:
        raise ValueError(f"unknown corpus profile {profile!r}; choose one of {', '.join(PROFILE_NAMES)}")
    return CorpusSpec(n_images=n_images, seed=seed, **{**PROFILES[profile], **overrides})
