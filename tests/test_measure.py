"""Particle measurements with known answers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from skimage.draw import disk, polygon

from nanomorph.measure import (
    PARTICLE_COLUMNS,
    contrast_to_surroundings,
    empty_particle_table,
    feret_diameters_px,
    measure_particles,
)
from nanomorph.separate import Particle, separate


def _disk_mask(diameter_px: float, offset: float) -> np.ndarray:
    size = int(diameter_px + 6)
    mask = np.zeros((size, size), bool)
    mask[disk((size / 2 + offset, size / 2 + 0.37 * offset), diameter_px / 2, shape=mask.shape)] = (
        True
    )
    return mask


@pytest.mark.parametrize(
    ("diameter_nm", "pixel_size_nm"),
    [(2.0, 0.1), (5.0, 0.25), (10.0, 0.2), (3.0, 0.05), (4.0, 0.13), (25.0, 0.5)],
)
@pytest.mark.parametrize("offset", [0.0, 0.3, 0.71])
def test_disk_sizes_within_one_pixel(
    diameter_nm: float, pixel_size_nm: float, offset: float
) -> None:
    mask = _disk_mask(diameter_nm / pixel_size_nm, offset)
    row = measure_particles([Particle(mask, (0, 0))], pixel_size_nm).iloc[0]
    for column in ("equivalent_diameter_nm", "feret_min_nm", "feret_max_nm"):
        assert abs(row[column] - diameter_nm) <= pixel_size_nm + 1e-9, column
    assert row.circularity == pytest.approx(1.0, abs=0.05)
    assert row.convexity == pytest.approx(1.0, abs=0.01)
    assert 1.0 <= row.aspect_ratio < 1.1


@pytest.mark.parametrize("side", [4, 10, 33])
def test_square_feret_is_side_and_diagonal(side: int) -> None:
    feret_min, feret_max = feret_diameters_px(np.ones((side, side), bool))
    assert feret_min == pytest.approx(side)
    assert abs(feret_max - side * math.sqrt(2)) <= 1.0


@pytest.mark.parametrize("angle", [0.3, 0.785])
def test_rotated_square_feret(angle: float) -> None:
    side = 30
    corners = np.array([[-1, -1], [-1, 1], [1, 1], [1, -1]]) * side / 2
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    points = corners @ rotation.T + 30
    mask = np.zeros((60, 60), bool)
    mask[polygon(points[:, 0], points[:, 1], mask.shape)] = True
    feret_min, feret_max = feret_diameters_px(mask)
    assert abs(feret_min - side) <= 1.0
    assert abs(feret_max - side * math.sqrt(2)) <= 1.0


def test_rectangle_aspect_ratio_and_perimeter() -> None:
    mask = np.ones((10, 30), bool)
    row = measure_particles([Particle(mask, (0, 0))], 0.5).iloc[0]
    assert row.feret_min_nm == pytest.approx(10 * 0.5)
    assert abs(row.feret_max_nm - math.hypot(10, 30) * 0.5) <= 0.5  # the diagonal
    assert row.aspect_ratio == pytest.approx(row.feret_max_nm / row.feret_min_nm)
    # Crofton underestimates edges parallel to the pixel grid by about 7 % (module docstring).
    assert row.perimeter_nm == pytest.approx(80 * 0.5 * 0.934, rel=0.01)
    assert row.area_nm2 == pytest.approx(300 * 0.25)


def test_degenerate_line_of_pixels() -> None:
    assert feret_diameters_px(np.ones((1, 7), bool)) == (1.0, 7.0)
    assert feret_diameters_px(np.ones((1, 1), bool)) == (1.0, 1.0)


def test_centroid_and_bbox_convention() -> None:
    mask = np.zeros((3, 4), bool)
    mask[1, 2] = True  # pixel (row 1, column 2) of the crop
    particle = Particle(mask, offset=(10, 20))
    row = measure_particles([particle], 0.5, image="a", frame=3).iloc[0]
    # pixel (row 11, column 22) of the image has its centre at (22.5, 11.5) px
    assert row.centroid_x_nm == pytest.approx(22.5 * 0.5)
    assert row.centroid_y_nm == pytest.approx(11.5 * 0.5)
    assert (row.bbox_x0_px, row.bbox_y0_px, row.bbox_x1_px, row.bbox_y1_px) == (22, 11, 23, 12)
    assert row.image == "a" and row.frame == 3


def test_columns_dtypes_and_flags() -> None:
    particles = [
        Particle(np.ones((5, 5), bool), (0, 0), separated=True),
        Particle(np.ones((4, 6), bool), (9, 9), nonconvex=True, touches_edge=True),
    ]
    table = measure_particles(particles, 0.2)
    assert tuple(table.columns) == PARTICLE_COLUMNS
    assert table.particle_id.tolist() == [1, 2]
    assert table.separated.tolist() == [True, False]
    assert table.nonconvex.tolist() == [False, True]
    assert table.touches_edge.tolist() == [False, True]
    assert table.frame.isna().all() and str(table.frame.dtype) == "Int64"
    assert table.bbox_x1_px.dtype == np.int64 and table.area_nm2.dtype == np.float64


def test_empty_table_is_typed() -> None:
    table = measure_particles([], 0.2)
    assert len(table) == 0
    assert tuple(table.columns) == PARTICLE_COLUMNS
    full = measure_particles([Particle(np.ones((3, 3), bool), (0, 0))], 0.2)
    pd.testing.assert_series_equal(table.dtypes, full.dtypes)
    # What the workflow writes for a skipped image: the same, without any pixel size.
    pd.testing.assert_frame_equal(empty_particle_table(), table)


def test_particle_ids_match_separation_labels() -> None:
    mask = np.zeros((60, 120), bool)
    mask[disk((30, 30), 12)] = True
    mask[disk((30, 90), 8)] = True
    result = separate(mask, 0.1)
    table = measure_particles(result.particles, 0.1)
    for row in table.itertuples():
        area_px = np.count_nonzero(result.labels == row.particle_id)
        assert area_px * 0.01 == pytest.approx(row.area_nm2)


@pytest.mark.parametrize("pixel_size_nm", [0, -0.1, float("inf")])
def test_rejects_bad_pixel_size(pixel_size_nm: float) -> None:
    with pytest.raises(ValueError, match="pixel_size_nm"):
        measure_particles([Particle(np.ones((2, 2), bool), (0, 0))], pixel_size_nm)


def test_rejects_empty_particle() -> None:
    with pytest.raises(ValueError, match="empty"):
        measure_particles([Particle(np.zeros((2, 2), bool), (0, 0))], 0.1)


def test_contrast_to_surroundings_is_the_rose_criterion():
    """A disc 3 noise-sigma above a noisy background: 3 x sqrt(25) = 15; a dark one -15."""
    rng = np.random.default_rng(0)
    image = rng.normal(100.0, 2.0, (120, 200))
    labels = np.zeros(image.shape, np.int64)
    labels[disk((60, 50), 12)] = 1
    labels[disk((60, 150), 12)] = 2
    image[labels == 1] += 6.0
    image[labels == 2] -= 6.0
    snr = contrast_to_surroundings(image, labels, labels > 0)
    assert np.isnan(snr[0])
    assert snr[1] == pytest.approx(15.0, rel=0.15)
    assert snr[2] == pytest.approx(-15.0, rel=0.15)
    # A particle too small to matter counts only its own area: a 3-pixel speck gives sqrt(3).
    speck = np.zeros_like(labels)
    speck[60, 100:103] = 1
    flat = np.full(image.shape, 10.0) + rng.normal(0, 1.0, image.shape)
    flat[speck > 0] += 3.0
    assert contrast_to_surroundings(flat, speck, speck > 0)[1] == pytest.approx(
        3.0 * math.sqrt(3), rel=0.35
    )


def test_contrast_without_a_ring_is_nan():
    labels = np.ones((10, 10), np.int64)
    assert np.isnan(contrast_to_surroundings(np.zeros((10, 10)), labels, labels > 0)[1])


def test_convexity_the_separation_computed_is_reused_and_is_the_same():
    # Two overlapping discs (split) and a lone disc (left whole): the overlap test computed each
    # final particle's convexity on exactly its pixels, so measuring need not compute it again.
    from nanomorph.separate import convexity

    mask = np.zeros((90, 200), bool)
    mask[disk((45, 40), 20)] = True
    mask[disk((45, 72), 20)] = True
    mask[disk((45, 150), 18)] = True
    particles = separate(mask, pixel_size_nm=0.1).particles
    assert sorted(p.separated for p in particles) == [False, True, True]
    for particle in particles:
        assert particle.convexity == convexity(particle.mask)
    table = measure_particles(particles, 0.1)
    assert list(table["convexity"]) == [p.convexity for p in particles]
    # Measured from the pixels where the separation left none (a particle made by hand).
    lone = Particle(mask=mask[25:66, 130:171], offset=(25, 130))
    assert lone.convexity is None
    assert measure_particles([lone], 0.1)["convexity"].iloc[0] == convexity(lone.mask)
