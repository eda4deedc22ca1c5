"""Despeckling, hole filling and edge clearing with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from nanomorph.morphology import (
    MorphologyError,
    area_px_for_diameter,
    clear_edge,
    despeckle,
    touching_edge,
)

# At 0.1 nm/px the 0.5 nm default is a 5 px equivalent diameter, i.e. 19.6 px of area:
# a 4x4 block (16 px, 0.45 nm) is below it, a 5x5 block (25 px, 0.56 nm) above it.
PX = 0.1


def test_area_for_diameter() -> None:
    assert area_px_for_diameter(0.5, 0.1) == pytest.approx(np.pi / 4 * 25)


def test_specks_below_half_nm_vanish_larger_stay() -> None:
    mask = np.zeros((40, 40), bool)
    mask[5:9, 5:9] = True  # 0.45 nm speck
    mask[20:25, 20:25] = True  # 0.56 nm particle
    out = despeckle(mask, PX)
    assert not out[5:9, 5:9].any()
    assert out[20:25, 20:25].all()
    assert out.sum() == 25


def test_holes_below_half_nm_fill_larger_stay() -> None:
    mask = np.zeros((60, 60), bool)
    mask[5:55, 5:55] = True
    mask[10:14, 10:14] = False  # 0.45 nm hole
    mask[30:35, 30:35] = False  # 0.56 nm hole
    out = despeckle(mask, PX)
    assert out[10:14, 10:14].all()
    assert not out[30:35, 30:35].any()


def test_background_reaching_the_border_is_not_a_hole() -> None:
    mask = np.zeros((30, 30), bool)
    mask[0:20, 5:20] = True
    mask[0:3, 10:13] = False  # a 9 px notch open to the image edge
    out = despeckle(mask, PX)
    assert not out[0:3, 10:13].any()


def test_zero_minimum_keeps_everything() -> None:
    rng = np.random.default_rng(0)
    mask = rng.random((30, 30)) > 0.5
    out = despeckle(mask, PX, min_particle_diameter_nm=0, min_hole_diameter_nm=0)
    np.testing.assert_array_equal(out, mask)


def test_despeckle_scales_with_pixel_size() -> None:
    mask = np.zeros((20, 20), bool)
    mask[5:9, 5:9] = True  # 16 px: 0.45 nm at 0.1 nm/px, 0.9 nm at 0.2 nm/px
    assert not despeckle(mask, 0.1).any()
    assert despeckle(mask, 0.2).sum() == 16


@pytest.mark.parametrize(
    "kwargs",
    [
        {"pixel_size_nm": 0},
        {"pixel_size_nm": -1},
        {"pixel_size_nm": float("nan")},
        {"pixel_size_nm": 0.1, "min_particle_diameter_nm": -0.5},
        {"pixel_size_nm": 0.1, "min_hole_diameter_nm": -1},
    ],
)
def test_despeckle_rejects_bad_arguments(kwargs: dict) -> None:
    with pytest.raises(MorphologyError):
        despeckle(np.zeros((5, 5), bool), **kwargs)


def test_despeckle_rejects_3d() -> None:
    with pytest.raises(ValueError, match="2-D"):
        despeckle(np.zeros((2, 5, 5), bool), 0.1)


def test_touching_edge_and_clear_edge() -> None:
    mask = np.zeros((30, 30), bool)
    mask[0:5, 10:15] = True  # top edge
    mask[10:15, 25:30] = True  # right edge
    mask[12:18, 5:11] = True  # interior
    mask[29, 0] = True  # corner pixel
    labels = np.zeros((30, 30), np.int32)
    labels[mask] = 1
    labels[12:18, 5:11] = 7
    assert touching_edge(labels) == {1}
    out = clear_edge(mask)
    assert out.sum() == 36
    assert out[12:18, 5:11].all()


def test_diagonal_neighbours_count_as_one_particle() -> None:
    mask = np.zeros((10, 10), bool)
    mask[0, 0] = True
    mask[1, 1] = mask[2, 2] = True  # 8-connected to the corner pixel
    assert not clear_edge(mask).any()
