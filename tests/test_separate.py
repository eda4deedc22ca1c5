"""Convexity, overlap tests and particle separation on perfect masks with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from skimage.draw import disk, ellipse, polygon

from nanomorph.separate import EXCLUSION_REASONS, convexity, separate, solidity

PX = 0.1  # nm per pixel; the 0.5 nm minimum marker is then smaller than the 30 px one


def pair_mask(
    radius_a: float, radius_b: float, overlap: float, angle: float = 0.3
) -> tuple[np.ndarray, list[float]]:
    """Two disks whose centres are (1 - overlap) * (radius_a + radius_b) apart.

    Returns the union and the equivalent diameters (px) of each disk drawn alone.
    """
    distance = (radius_a + radius_b) * (1 - overlap)
    size = int(2 * (radius_a + radius_b) + 20)
    centre = size / 2
    step = np.array([math.sin(angle), math.cos(angle)]) * distance / 2
    mask = np.zeros((size, size), bool)
    diameters = []
    for (row, col), radius in ((centre - step, radius_a), (centre + step, radius_b)):
        rr, cc = disk((row, col), radius, shape=mask.shape)
        mask[rr, cc] = True
        diameters.append(math.sqrt(4 * len(rr) / math.pi))
    return mask, diameters


def single_shapes() -> list[tuple[str, np.ndarray]]:
    shapes = []
    for radius in (6, 12, 25):
        mask = np.zeros((2 * radius + 8,) * 2, bool)
        mask[disk((radius + 4.3, radius + 4.1), radius, shape=mask.shape)] = True
        shapes.append((f"disk{radius}", mask))
    for (a, b), angle in [((20, 10), 0.4), ((30, 10), 0.785), ((15, 12), 0.0), ((40, 20), 1.2)]:
        mask = np.zeros((100, 100), bool)
        mask[ellipse(50.3, 50.1, a, b, shape=mask.shape, rotation=angle)] = True
        shapes.append((f"ellipse{a}x{b}", mask))
    for (h, w), angle in [((10, 10), 0.785), ((30, 30), 0.3), ((8, 40), 0.0), ((12, 50), 0.5)]:
        corners = np.array([[-h, -w], [-h, w], [h, w], [h, -w]]) / 2
        rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        points = corners @ rotation.T + 40
        mask = np.zeros((80, 80), bool)
        mask[polygon(points[:, 0], points[:, 1], mask.shape)] = True
        shapes.append((f"rect{h}x{w}", mask))
    return shapes


SINGLES = single_shapes()


@pytest.mark.parametrize(("name", "mask"), SINGLES, ids=[name for name, _ in SINGLES])
def test_convex_shapes_have_convexity_one(name: str, mask: np.ndarray) -> None:
    assert convexity(mask) == pytest.approx(1.0, abs=0.005)
    assert 0.85 < solidity(mask) <= 1.0


def test_peanut_convexity_and_solidity_are_low() -> None:
    mask, _ = pair_mask(20, 20, 0.10)
    assert convexity(mask) < 0.95
    assert solidity(mask) < 0.92


def test_holes_do_not_lower_convexity() -> None:
    mask = np.zeros((50, 50), bool)
    mask[disk((25, 25), 20)] = True
    mask[20:30, 20:30] = False
    assert convexity(mask) == pytest.approx(1.0, abs=0.005)


def test_convexity_rejects_empty_mask() -> None:
    with pytest.raises(ValueError, match="empty"):
        convexity(np.zeros((5, 5), bool))


@pytest.mark.parametrize(("name", "mask"), SINGLES, ids=[name for name, _ in SINGLES])
@pytest.mark.parametrize("method", ["uecs", "watershed"])
def test_single_shapes_are_never_split(name: str, mask: np.ndarray, method: str) -> None:
    result = separate(mask, PX, method=method)
    assert len(result.particles) == 1
    particle = result.particles[0]
    assert not particle.separated and not particle.nonconvex
    np.testing.assert_array_equal(result.labels > 0, mask)
    assert result.n_excluded == 0


PAIRS = [
    (radius, radius / ratio, overlap)
    for radius in (20, 30)
    for ratio in (1.0, 1.25)
    for overlap in (0.10, 0.15, 0.20, 0.25, 0.30, 0.35)
] + [(radius, radius / 1.5, overlap) for radius in (20, 30) for overlap in (0.10, 0.20, 0.30)]


@pytest.mark.parametrize(("radius_a", "radius_b", "overlap"), PAIRS)
def test_uecs_splits_overlapping_pairs(radius_a: float, radius_b: float, overlap: float) -> None:
    mask, truth = pair_mask(radius_a, radius_b, overlap)
    result = separate(mask, PX)  # default: uecs, sensitive test
    assert len(result.particles) == 2
    assert all(p.separated and not p.nonconvex for p in result.particles)
    found = sorted(math.sqrt(4 * p.mask.sum() / math.pi) for p in result.particles)
    for got, expected in zip(found, sorted(truth), strict=True):
        assert got == pytest.approx(expected, rel=0.05)
    # Regrown particles keep their overlap: together they cover more than the union.
    assert sum(p.mask.sum() for p in result.particles) > mask.sum()
    assert set(np.unique(result.labels)) == {0, 1, 2}
    # Regrowing never leaves the region (it may miss a few pixels in the concave waist).
    assert not (result.labels > 0)[~mask].any()
    assert np.count_nonzero(result.labels) > 0.93 * mask.sum()


def test_paper_criterion_splits_only_below_the_convexity_threshold() -> None:
    deep, _ = pair_mask(20, 20, 0.10)  # convexity 0.93
    shallow, _ = pair_mask(20, 20, 0.35)  # convexity 0.98: the paper's blind spot
    assert convexity(deep) < 0.95 < convexity(shallow)
    assert len(separate(deep, PX, overlap_test="paper").particles) == 2
    kept = separate(shallow, PX, overlap_test="paper").particles
    assert len(kept) == 1 and not kept[0].nonconvex and not kept[0].separated
    assert len(separate(shallow, PX, overlap_test="sensitive").particles) == 2
    # Under "none" the paper's test does not even flag it; the sensitive test does.
    assert not separate(shallow, PX, method="none", overlap_test="paper").particles[0].nonconvex
    assert separate(shallow, PX, method="none").particles[0].nonconvex


@pytest.mark.parametrize("overlap_test", ["sensitive", "paper"])
def test_none_flags_a_peanut_without_splitting(overlap_test: str) -> None:
    mask, _ = pair_mask(20, 20, 0.10)
    result = separate(mask, PX, method="none", overlap_test=overlap_test)
    assert len(result.particles) == 1
    assert result.particles[0].nonconvex and not result.particles[0].separated
    np.testing.assert_array_equal(result.labels > 0, mask)


@pytest.mark.parametrize("overlap", [0.10, 0.25])
def test_watershed_splits_a_pair_without_overlap(overlap: float) -> None:
    mask, truth = pair_mask(25, 25, overlap)
    result = separate(mask, PX, method="watershed")
    assert len(result.particles) == 2
    assert all(p.separated for p in result.particles)
    # Watershed partitions the union: no shared pixels, every pixel assigned.
    assert sum(p.mask.sum() for p in result.particles) == mask.sum()
    for particle in result.particles:
        assert math.sqrt(4 * particle.mask.sum() / math.pi) < max(truth)


def test_edge_drop_keeps_the_partner_of_an_edge_particle() -> None:
    pair, _ = pair_mask(20, 20, 0.15, angle=0.0)  # side by side horizontally
    cols = np.flatnonzero(pair.any(axis=0))
    mask = pair[:, cols[0] :]  # the left disk now touches the left border
    dropped = separate(mask, PX, edge="drop")
    assert len(dropped.particles) == 1
    assert dropped.particles[0].separated and not dropped.particles[0].touches_edge
    assert dropped.particles[0].offset[1] > 0
    assert dropped.excluded_reasons["touches_edge"] == 1
    flagged = separate(mask, PX, edge="flag")
    assert len(flagged.particles) == 2
    assert sorted(p.touches_edge for p in flagged.particles) == [False, True]
    assert flagged.n_excluded == 0


def test_edge_drop_removes_single_edge_particles() -> None:
    mask = np.zeros((60, 60), bool)
    mask[disk((0, 30), 10, shape=mask.shape)] = True
    mask[disk((30, 30), 10)] = True
    result = separate(mask, PX)
    assert len(result.particles) == 1 and result.particles[0].offset[0] > 0
    assert result.n_excluded == 1


def test_hopeless_low_convexity_region_is_excluded() -> None:
    comb = np.zeros((60, 80), bool)
    comb[5:10, 5:75] = True
    for col in range(5, 75, 8):
        comb[5:55, col : col + 3] = True
    assert convexity(comb) < 0.5
    result = separate(comb, PX)
    assert result.particles == []
    assert result.excluded_reasons["convexity_below_lower_bound"] == 1
    assert result.n_excluded == 1
    assert len(separate(comb, PX, method="none").particles) == 1


def test_region_with_too_many_holes_is_excluded() -> None:
    shape = np.zeros((60, 60), bool)
    shape[5:55, 5:25] = True
    shape[35:55, 5:55] = True  # an L: convexity about 0.9
    for row in (10, 20, 40):
        shape[row : row + 4, 12:16] = False
    result = separate(shape, PX, max_holes=2)
    assert result.excluded_reasons["too_many_holes"] == 1 and result.particles == []
    assert separate(shape, PX, max_holes=3).excluded_reasons["too_many_holes"] == 0


def test_isolated_particles_pass_through_untouched() -> None:
    mask = np.zeros((100, 100), bool)
    mask[disk((25, 25), 10)] = True
    mask[60:80, 55:90] = True
    result = separate(mask, PX)
    assert len(result.particles) == 2
    assert result.labels.dtype == np.uint32
    np.testing.assert_array_equal(result.labels > 0, mask)
    first = result.particles[0]
    r0, c0 = first.offset
    h, w = first.mask.shape
    np.testing.assert_array_equal(mask[r0 : r0 + h, c0 : c0 + w] & first.mask, first.mask)


def test_empty_mask_gives_no_particles() -> None:
    result = separate(np.zeros((20, 20), bool), PX)
    assert result.particles == [] and result.n_excluded == 0
    assert set(result.excluded_reasons) == set(EXCLUSION_REASONS)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"pixel_size_nm": 0},
        {"pixel_size_nm": 0.1, "method": "magic"},
        {"pixel_size_nm": 0.1, "overlap_test": "strict"},
        {"pixel_size_nm": 0.1, "edge": "keep"},
        {"pixel_size_nm": 0.1, "convexity_threshold": 1.5},
        {"pixel_size_nm": 0.1, "convexity_lower_bound": 0.99},
        {"pixel_size_nm": 0.1, "min_marker_px": 0},
        {"pixel_size_nm": 0.1, "max_holes": -1},
    ],
)
def test_separate_rejects_bad_arguments(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        separate(np.zeros((5, 5), bool), **kwargs)


def test_drop_particles_renumbers_and_counts_the_reason():
    from nanomorph.separate import SeparationError, drop_particles

    m = np.zeros((60, 160), bool)
    for c in (30, 80, 130):
        m[disk((30, c), 12)] = True
    result = separate(m, PX)
    assert len(result.particles) == 3
    fewer = drop_particles(result, [1], "wrong_contrast")
    assert len(fewer.particles) == 2 and fewer.excluded_reasons["wrong_contrast"] == 1
    assert fewer.n_excluded == result.n_excluded + 1
    assert sorted(np.unique(fewer.labels)) == [0, 1, 2]
    assert fewer.labels[30, 80] == 0 and fewer.labels[30, 130] == 2
    assert drop_particles(result, [], "wrong_contrast") is result
    with pytest.raises(SeparationError, match="reason"):
        drop_particles(result, [0], "because")


def _dark_and_bright_disks():
    """A bright-field scene: two dark particles and one bright spot the segmentation also took."""
    rng = np.random.default_rng(3)
    image = rng.normal(200.0, 3.0, (80, 220))
    mask = np.zeros(image.shape, bool)
    for c, delta in ((40, -60.0), (110, -60.0), (180, +60.0)):
        rr, cc = disk((40, c), 14)
        image[rr, cc] += delta
        mask[rr, cc] = True
    return image, mask


def test_declared_polarity_drops_particles_of_the_other_contrast():
    from nanomorph.pipeline import AnalysisParameters, postprocess

    image, mask = _dark_and_bright_disks()
    _, unchecked = postprocess(mask, PX, AnalysisParameters())
    assert len(unchecked.particles) == 3
    _, checked = postprocess(mask, PX, AnalysisParameters(polarity="dark"), image=image)
    assert len(checked.particles) == 2
    assert checked.excluded_reasons["wrong_contrast"] == 1
    assert all(p.offset[1] < 150 for p in checked.particles)
    # Declared the other way (HAADF), only the bright spot survives.
    _, haadf = postprocess(mask, PX, AnalysisParameters(polarity="bright"), image=image)
    assert [p.offset[1] > 150 for p in haadf.particles] == [True]


def test_declared_polarity_needs_the_image():
    from nanomorph.pipeline import AnalysisParameters, postprocess

    _, mask = _dark_and_bright_disks()
    with pytest.raises(ValueError, match="needs the image"):
        postprocess(mask, PX, AnalysisParameters(polarity="dark"))
    with pytest.raises(ValueError, match="polarity"):
        AnalysisParameters(polarity="grey")


def test_peak_count_short_cut_agrees_with_the_full_h_maxima():
    # The overlap test asks only whether there are two distance-transform peaks; a region whose
    # distance transform has fewer than two regional maxima is answered without the (slow)
    # reconstruction. The answer must be the same on any shape: discs, ellipses, noise blobs.
    from scipy import ndimage as ndi

    from nanomorph.separate import _dt_maxima

    rng = np.random.default_rng(7)
    answers = []
    for trial in range(400):
        height, width = rng.integers(3, 50, 2)
        mask = np.zeros((height, width), bool)
        for _ in range(rng.integers(1, 4)):
            if trial % 3 == 0:
                centre = (rng.uniform(0, height), rng.uniform(0, width))
                mask[disk(centre, rng.uniform(1, 12), shape=mask.shape)] = True
            elif trial % 3 == 1:
                mask[
                    ellipse(
                        rng.uniform(0, height),
                        rng.uniform(0, width),
                        rng.uniform(1, 10),
                        rng.uniform(1, 16),
                        shape=mask.shape,
                        rotation=rng.uniform(0, np.pi),
                    )
                ] = True
            else:
                mask |= rng.random((height, width)) < 0.6
        if not mask.any():
            continue
        filled = np.pad(ndi.binary_fill_holes(mask), 1)
        for dynamic in (0.5, 1.0, 2.5):
            full = _dt_maxima(filled, dynamic)[1]
            short = _dt_maxima(filled, dynamic, at_least=2)[1]
            assert (full >= 2) == (short >= 2), (trial, dynamic)
            answers.append(full >= 2)
    assert 0.2 < np.mean(answers) < 0.8  # both answers well represented


def test_uecs_erosion_and_dilation_are_scipys():
    # UECS erodes and regrows with array slices instead of scipy's calls (faster on small
    # crops); the pixels must be the same, for both elements, from 1 px crops upwards.
    from scipy import ndimage as ndi

    from nanomorph.separate import _dilate, _erode

    cross = ndi.generate_binary_structure(2, 1)
    square = np.ones((3, 3), bool)
    rng = np.random.default_rng(11)
    for trial in range(600):
        shape = tuple(int(v) for v in rng.integers(1, 30, 2))
        mask = rng.random(shape) < rng.uniform(0.2, 0.95)
        for step, element in ((1, cross), (2, square)):
            assert np.array_equal(_erode(mask, step), ndi.binary_erosion(mask, element)), trial
            assert np.array_equal(_dilate(mask, step), ndi.binary_dilation(mask, element)), trial
