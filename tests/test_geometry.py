"""nanomorph.geometry must give skimage's digital hull and Crofton perimeter exactly."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.draw import disk, ellipse, polygon
from skimage.measure import perimeter_crofton
from skimage.morphology import convex_hull_image

from nanomorph.geometry import convex_hull_mask, crofton_perimeter


def _random_masks(seed: int, count: int):
    """Blobs, ellipses, polygons, scattered pixels and thin lines of every size from 1 px."""
    rng = np.random.default_rng(seed)
    for trial in range(count):
        height, width = (int(v) for v in rng.integers(1, 45, 2))
        kind = trial % 5
        mask = np.zeros((height + 4, width + 4), bool)
        if kind == 0:
            mask[2:-2, 2:-2] = rng.random((height, width)) < rng.uniform(0.05, 0.9)
        elif kind == 1:
            for _ in range(rng.integers(1, 4)):
                centre = (rng.uniform(0, height + 4), rng.uniform(0, width + 4))
                radii = rng.uniform(0.5, 15, 2)
                rr, cc = ellipse(*centre, *radii, shape=mask.shape, rotation=rng.uniform(0, np.pi))
                mask[rr, cc] = True
        elif kind == 2:
            rr, cc = polygon(
                rng.uniform(0, height + 4, 6), rng.uniform(0, width + 4, 6), shape=mask.shape
            )
            mask[rr, cc] = True
        elif kind == 3:
            mask[rng.integers(0, mask.shape[0], 3), rng.integers(0, mask.shape[1], 3)] = True
        else:
            mask = np.zeros((1, width), bool) if trial % 2 else np.zeros((height, 1), bool)
            mask.flat[rng.integers(0, mask.size, 2)] = True
        if mask.any():
            yield mask


def test_hull_is_skimages_on_random_shapes():
    masks = list(_random_masks(seed=3, count=2500))
    assert len(masks) > 2000
    for number, mask in enumerate(masks):
        expected = convex_hull_image(mask)
        assert np.array_equal(convex_hull_mask(mask), expected), number


def test_crofton_perimeter_is_skimages_to_the_last_bit():
    for number, mask in enumerate(_random_masks(seed=4, count=2500)):
        assert crofton_perimeter(mask) == perimeter_crofton(mask, directions=4), number
    labels = np.array([[0, 2, 2], [0, 5, 0]])  # any value above zero is the region
    assert crofton_perimeter(labels) == perimeter_crofton(labels, directions=4)


def test_hull_of_known_shapes():
    ell = np.zeros((6, 6), bool)
    ell[1:5, 1] = True
    ell[4, 1:5] = True
    hull = convex_hull_mask(ell)
    # The triangle's hypotenuse passes through the pixel centres between its ends.
    assert hull.sum() == 10
    assert hull[2, 2] and hull[3, 3] and not hull[2, 3]

    square = np.zeros((20, 20), bool)
    square[5:15, 5:15] = True
    assert np.array_equal(convex_hull_mask(square), square)

    big = np.zeros((201, 201), bool)
    big[disk((100, 100), 90)] = True
    assert np.array_equal(convex_hull_mask(big), convex_hull_image(big))

    ring = big.copy()
    ring[disk((100, 100), 60)] = False  # the hole does not matter to the hull
    assert np.array_equal(convex_hull_mask(ring), convex_hull_image(big))


def test_crofton_perimeter_of_a_disk_is_near_its_circumference():
    mask = np.zeros((101, 101), bool)
    mask[disk((50, 50), 40)] = True
    assert crofton_perimeter(mask) == pytest.approx(2 * np.pi * 40, rel=0.02)


def test_hull_refuses_empty_and_non_2d_masks():
    with pytest.raises(ValueError, match="at least one pixel"):
        convex_hull_mask(np.zeros((4, 4), bool))
    with pytest.raises(ValueError, match="2-D"):
        convex_hull_mask(np.ones((2, 2, 2), bool))
