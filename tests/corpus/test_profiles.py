"""Corpus profiles: each has the shape it promises, retail is the unchanged generator, all reproducible per seed."""

from __future__ import annotations

import numpy as np
import pytest

from boxloop.corpus import CorpusSpec, render_image
from boxloop.corpus_profiles import PROFILE_NAMES, profile_spec

N_IMAGES = 12


def _objects(profile: str, seed: int = 4) -> list[list[dict]]:
    spec = profile_spec(profile, N_IMAGES, seed)
    return [render_image(spec, index)[1] for index in range(N_IMAGES)]


def _long_sides(objects: list[list[dict]]) -> np.ndarray:
    return np.array([max(found["bbox"][2:]) for image in objects for found in image])


def test_retail_is_todays_generator() -> None:
    assert profile_spec("retail", N_IMAGES, 4) == CorpusSpec(n_images=N_IMAGES, seed=4)


@pytest.mark.parametrize("profile", PROFILE_NAMES)
def test_every_profile_is_reproducible_per_seed(profile: str) -> None:
    spec = profile_spec(profile, 3, seed=9)
    assert [render_image(spec, index) for index in range(3)] == [render_image(spec, index) for index in range(3)]
    assert render_image(spec, 0)[0] != render_image(profile_spec(profile, 3, seed=10), 0)[0]


def test_dense_images_hold_many_small_objects_of_three_classes() -> None:
    objects = _objects("dense")
    assert min(len(image) for image in objects) >= 8
    assert {found["class_id"] for image in objects for found in image} == {0, 1, 2}
    assert np.median(_long_sides(objects)) < 0.2 * 256


def test_single_class_images_hold_one_to_three_objects_of_class_zero() -> None:
    objects = _objects("single-class")
    assert all(1 <= len(image) <= 3 for image in objects)
    assert {found["class_id"] for image in objects for found in image} == {0}


def test_small_objects_are_under_16_px_on_a_256_px_canvas() -> None:
    spec = profile_spec("small-objects", N_IMAGES)
    sides_on_canvas = _long_sides(_objects("small-objects")) * 256 / spec.image_size
    assert np.median(sides_on_canvas) < 16 and sides_on_canvas.max() <= 20


def test_mixed_sizes_spread_over_a_wide_range() -> None:
    sides = _long_sides(_objects("mixed-sizes", seed=2))
    assert sides.max() / sides.min() > 4


def test_unknown_profile_and_bad_scale_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown corpus profile 'crowded'; choose one of retail"):
        profile_spec("crowded", 5)
    with pytest.raises(ValueError, match="object_scale"):
        CorpusSpec(n_images=1, object_scale=(2.0, 1.0))
