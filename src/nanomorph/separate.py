"""Split overlapping particles: convexity tests, UECS, distance-transform watershed.

Perimeter estimator
-------------------
Convexity is ``P(hull) / P(region)`` with both perimeters from the 4-direction Crofton estimator
(``skimage.measure.perimeter_crofton(..., directions=4)``), the region's holes filled and the hull
being ``skimage.morphology.convex_hull_image`` of that filled region (both computed by
:mod:`nanomorph.geometry`, which gives skimage's values faster). Crofton counts boundary
crossings along four line directions, i.e. it integrates the projected widths of the shape; the
pixels a digital hull adds in the staircase notches of a convex shape do not change those widths,
so every digitally convex shape (disks, ellipses, rotated squares, rods, any size >= 3 px) comes out
at 1.000 (measured below), while the same estimator on a disk gives circularity 0.99-1.01 (see
:mod:`nanomorph.measure`). Marching-squares polygon perimeters were rejected: the polygon of a
digital disk is not convex and gives convexity 0.96-0.97 and circularity 0.90 for every size.
skimage's default ``perimeter`` drifts from 1.16 (r = 5 px) to 0.93 (r = 40 px) in circularity.
Values are clipped to at most 1 (a hull cannot be longer than the shape it wraps; the excess is
digitisation noise).

Overlap tests (``overlap_test``)
--------------------------------
``"paper"`` -- non-convex iff convexity < ``convexity_threshold`` (0.95), exactly as the paper.
``"sensitive"`` (default) -- non-convex iff the paper's test says so, or solidity (filled area /
digital convex-hull area) < ``solidity_threshold`` (0.85), or the distance transform of the region
has at least two maxima that each rise ``dt_peak_dynamic_px`` (1.0 px) above the saddle between
them (h-maxima of the Euclidean distance transform).

Measured on perfect digital masks (``benchmarks/bench_separate.py`` re-measures the split rate):

* 53 convex singles -- disks r = 5-40 px at two sub-pixel offsets, ellipses 12x8 to 40x20 and
  30x10, squares 10-40 px and rods 8x40 to 20x60 each at 0, 0.3 and 0.785 rad: convexity 1.000
  for all; solidity down to 0.89 (small rotated squares: the digital hull adds the staircase
  notches), so solidity cannot separate pairs (below) from squares; largest distance-transform
  second-peak dynamic 0.70 px (rods and ellipses: digitisation ripples along the ridge).
* 102 overlapping pairs -- radii 10-40 px, ratios 1, 1.25, 1.5, 2 (smaller radius >= 8 px),
  overlap 10-35 % of the summed radii: convexity 0.92-1.00, only 29 % below 0.95 (the paper's
  limitation: it saw about 1 pair in 5); solidity 0.89-0.97; second-peak dynamic 0.35-21 px,
  93 % above 0.75 px, 89 % above 1.0 px, 75 % above 2 px. The pairs missed at 1 px are those with
  a 2:1 radius ratio and >= 25 % overlap, where the small disk is mostly inside the large one
  (the paper's "ellipse" case); no perimeter or area test separates them from ellipses either.

``benchmarks/bench_separate.py`` (200 random pairs: radii 10-40 px, ratio 1-2, overlap 10-35 %;
100 random ellipses and rotated rectangles) gave, UECS: "paper" split 27 % of the pairs,
"sensitive" 76 % (73 % with both equivalent diameters within 5 %); watershed: 28 % and 83 % (but
only 42 % within 5 %, because it cuts the shared area in two); no convex single was split by any.

The sensitive test only decides which regions go to UECS; a region it flags wrongly yields a
single convex marker there and stays one particle, so a false alarm costs time, not a wrong split.

UECS
----
Ultimate erosion of convex shapes (Park et al.), as adapted in the paper: each non-convex region is
eroded on its padded bounding-box crop, alternating a cross and a square 3x3 structuring element
(an octagonal, near-isotropic metric). After every erosion the remaining pixels are split into
8-connected pieces; a piece that passes the same overlap test as the regions becomes a marker
together with its erosion count; a piece that still fails it is eroded further, unless it has
shrunk below the minimum marker (``max(min_marker_px, area of a disk of min_marker_diameter_nm)``),
then it is discarded. This follows the paper's wording -- markers are discarded when they fall
below the minimum "before surpassing the convexity threshold" -- and matters: the smaller partner
of an unequal pair detaches late in the erosion, often at 10-30 px (2:1 radii at 25 % overlap:
28 px), so discarding every small piece (as the issue text reads) split 60 of the 102 pairs below,
this rule 86 of 102. A regrown particle below the minimum marker is discarded instead, so a tiny
convex crumb can never become a particle on its own. Each marker
is regrown by as many dilations as it was eroded, with the same elements in reverse order, each
step masked by the original region; overlap is preserved (two regrown particles may share pixels).
A regrown particle that still fails the test is discarded; a region with a single marker stays one
particle (``separated=False``, ``nonconvex=True``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from scipy import ndimage as ndi
from skimage.morphology import local_maxima, reconstruction
from skimage.segmentation import watershed

from nanomorph.geometry import convex_hull_mask, crofton_perimeter
from nanomorph.morphology import area_px_for_diameter

__all__ = [
    "EXCLUSION_REASONS",
    "Particle",
    "SeparationError",
    "Separation",
    "convexity",
    "drop_particles",
    "separate",
    "solidity",
]

Method = Literal["uecs", "watershed", "none"]
OverlapTest = Literal["sensitive", "paper"]
EdgePolicy = Literal["drop", "flag"]

EXCLUSION_REASONS = (
    "convexity_below_lower_bound",  # hopeless agglomerate, not split
    "too_many_holes",  # hopeless agglomerate network, not split
    "no_convex_marker",  # UECS eroded it away without finding a convex piece
    "regrown_nonconvex",  # a UECS particle still failed the overlap test after regrowing
    "small_fragment",  # a regrown UECS particle or watershed piece below the minimum marker
    "touches_edge",  # dropped by edge="drop"
    "wrong_contrast",  # darker than its surroundings in HAADF, brighter in bright field
)

_CONNECT8 = np.ones((3, 3), dtype=bool)
_PAD = 2


class SeparationError(ValueError):
    """A bad argument to a separation function (a ValueError with one explanatory sentence)."""


@dataclass
class Particle:
    """One particle: a boolean crop of its pixels and where the crop sits in the image.

    Attributes
    ----------
    mask : numpy.ndarray
        Boolean crop, tight around the particle's pixels.
    offset : tuple of int
        (row0, col0) of the crop's top-left pixel in the image.
    separated : bool
        True if the particle came out of splitting a larger region.
    nonconvex : bool
        True if the region failed the overlap test but was left whole (method "none", a single
        UECS marker, or a single watershed basin).
    touches_edge : bool
        True if the particle has a pixel in the image's first or last row or column.
    convexity : float or None
        :func:`convexity` of these pixels where the overlap test already computed it (None
        elsewhere); the measurement takes it from here instead of computing it again.
    """

    mask: np.ndarray
    offset: tuple[int, int]
    separated: bool = False
    nonconvex: bool = False
    touches_edge: bool = False
    convexity: float | None = None


@dataclass
class Separation:
    """The result of :func:`separate`.

    Attributes
    ----------
    particles : list of Particle
        Measured particles; particle k (0-based) carries label k + 1 in `labels`.
    labels : numpy.ndarray
        uint32 image, 0 = background. Where regrown UECS particles overlap, the pixels carry the
        label of the particle listed first.
    n_excluded : int
        Regions or particles left out, the sum of `excluded_reasons`.
    excluded_reasons : dict of str to int
        Counts per reason; keys are :data:`EXCLUSION_REASONS`.
    """

    particles: list[Particle]
    labels: np.ndarray
    n_excluded: int = 0
    excluded_reasons: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(EXCLUSION_REASONS, 0)
    )


def _label_image(particles: list[Particle], shape: tuple[int, ...]) -> np.ndarray:
    labels = np.zeros(shape, dtype=np.uint32)
    for number, particle in enumerate(particles, start=1):
        r0, c0 = particle.offset
        window = labels[r0 : r0 + particle.mask.shape[0], c0 : c0 + particle.mask.shape[1]]
        window[particle.mask & (window == 0)] = number
    return labels


def drop_particles(separation: Separation, indices, reason: str) -> Separation:
    """A copy of `separation` without the particles at `indices` (0-based), counted as `reason`.

    The label image is rebuilt, so the remaining particles are numbered 1..n again in order.
    """
    if reason not in EXCLUSION_REASONS:
        raise SeparationError(f"reason must be one of {EXCLUSION_REASONS}, got {reason!r}.")
    drop = {int(i) for i in np.asarray(indices, dtype=np.int64).ravel()}
    if not drop:
        return separation
    kept = [p for k, p in enumerate(separation.particles) if k not in drop]
    reasons = dict(separation.excluded_reasons)
    reasons[reason] = reasons.get(reason, 0) + len(separation.particles) - len(kept)
    labels = _label_image(kept, separation.labels.shape)
    return Separation(kept, labels, sum(reasons.values()), reasons)


def _as_region(region_mask: np.ndarray) -> np.ndarray:
    region = np.asarray(region_mask)
    if region.ndim != 2:
        raise SeparationError(f"A region mask must be 2-D, got shape {region.shape}.")
    region = region.astype(bool, copy=False)
    if not region.any():
        raise SeparationError("A region mask must contain at least one pixel, got an empty one.")
    return region


def _padded(mask: np.ndarray, width: int) -> np.ndarray:
    """``mask`` with ``width`` background pixels all round (np.pad's result, without its
    overhead, which dominated on the thousands of small crops of a micrograph)."""
    out = np.zeros((mask.shape[0] + 2 * width, mask.shape[1] + 2 * width), mask.dtype)
    out[width : width + mask.shape[0], width : width + mask.shape[1]] = mask
    return out


def _filled_padded(region: np.ndarray) -> np.ndarray:
    return _padded(ndi.binary_fill_holes(region), 1)


def _convexity_of_filled(filled: np.ndarray) -> tuple[float, np.ndarray]:
    hull = convex_hull_mask(filled)
    perimeter = crofton_perimeter(filled)
    if perimeter <= 0:
        return 1.0, hull
    return min(1.0, crofton_perimeter(hull) / perimeter), hull


def convexity(region_mask: np.ndarray) -> float:
    """Convexity = convex-hull perimeter / perimeter of one region, holes filled.

    Both perimeters are Crofton (4-direction) estimates, so every digitally convex shape gives
    1.0 (see the module docstring for the measurements behind this choice). Clipped to <= 1.

    Parameters
    ----------
    region_mask : numpy.ndarray
        2-D boolean mask of one region (any non-zero pixel belongs to it).

    Returns
    -------
    float
        Convexity in (0, 1].

    Raises
    ------
    SeparationError
        If the mask is not 2-D or is empty.

    Examples
    --------
    >>> from skimage.draw import disk
    >>> m = np.zeros((40, 40), bool); m[disk((20, 20), 12)] = True
    >>> round(convexity(m), 3)
    1.0
    """
    return _convexity_of_filled(_filled_padded(_as_region(region_mask)))[0]


def solidity(region_mask: np.ndarray) -> float:
    """Solidity = area / digital convex-hull area of one region, holes filled.

    The hull is ``skimage.morphology.convex_hull_image``; small shapes at an angle to the pixel
    grid score below 1 (a 10 px square at 45 degrees: 0.89) because the digital hull fills the
    staircase notches.

    Parameters
    ----------
    region_mask : numpy.ndarray
        2-D boolean mask of one region.

    Returns
    -------
    float
        Solidity in (0, 1].

    Raises
    ------
    SeparationError
        If the mask is not 2-D or is empty.
    """
    filled = _filled_padded(_as_region(region_mask))
    return float(filled.sum() / convex_hull_mask(filled).sum())


def _dt_maxima(
    filled: np.ndarray, dynamic_px: float, at_least: int = 0
) -> tuple[np.ndarray, int, np.ndarray]:
    """Label the distance-transform maxima whose dynamic is at least `dynamic_px`.

    h-maxima transform: reconstruct dt - h under dt; the regional maxima of the reconstruction
    are the domes that rise at least h above every saddle leading to a higher one.

    With ``at_least`` > 1, a region whose distance transform has fewer regional maxima than that
    returns a count below ``at_least`` without the reconstruction (the slow part): each regional
    maximum of the reconstruction encloses one of the distance transform's own, so it cannot have
    more. (The labels returned then are not the h-maxima; only the count is meant.)
    """
    dt = ndi.distance_transform_edt(filled)
    if at_least > 1:
        # A cheaper bound first: the pixels with no higher neighbour form, per 8-connected
        # component, one plateau of one value, and every regional maximum is one of them whole,
        # so there are at least as many components as regional maxima.
        labels, n = ndi.label((dt == ndi.maximum_filter(dt, size=3)) & filled, _CONNECT8)
        if n < at_least:
            return labels, n, dt
        labels, n = ndi.label(
            local_maxima(dt, connectivity=2, allow_borders=True) & filled, structure=_CONNECT8
        )
        if n < at_least:
            return labels, n, dt
    rec = reconstruction(dt - dynamic_px, dt, method="dilation")
    peaks = local_maxima(rec, connectivity=2, allow_borders=True) & filled
    labels, n = ndi.label(peaks, structure=_CONNECT8)
    return labels, n, dt


@dataclass(frozen=True)
class _Test:
    overlap_test: str
    convexity_threshold: float
    solidity_threshold: float
    dt_peak_dynamic_px: float

    def fails(self, region: np.ndarray) -> bool:
        """True if `region` (bool, any crop) looks like overlapping particles."""
        return self.assess(region)[0]

    def assess(self, region: np.ndarray) -> tuple[bool, float]:
        """Whether `region` fails the test, and its convexity (:func:`convexity`)."""
        filled = _filled_padded(region)
        conv, hull = _convexity_of_filled(filled)
        if conv < self.convexity_threshold:
            return True, conv
        if self.overlap_test == "paper":
            return False, conv
        if filled.sum() / hull.sum() < self.solidity_threshold:
            return True, conv
        return _dt_maxima(filled, self.dt_peak_dynamic_px, at_least=2)[1] >= 2, conv


def _tight(mask: np.ndarray, origin: tuple[int, int]) -> tuple[np.ndarray, tuple[int, int]]:
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    return mask[r0:r1, c0:c1].copy(), (int(origin[0] + r0), int(origin[1] + c0))


def _erode(mask: np.ndarray, step: int) -> np.ndarray:
    """Binary erosion by UECS step ``step``'s element (odd: cross, even: 3x3 square), outside
    the crop counting as background: ``ndi.binary_erosion``'s result, by array slices (its call
    overhead was a tenth of a micrograph's postprocess)."""
    out = np.zeros_like(mask)
    if step % 2 == 0:
        across = mask[:, :-2] & mask[:, 1:-1] & mask[:, 2:]
        out[1:-1, 1:-1] = across[:-2] & across[1:-1] & across[2:]
    else:
        out[1:-1, 1:-1] = (
            mask[1:-1, 1:-1] & mask[:-2, 1:-1] & mask[2:, 1:-1] & mask[1:-1, :-2] & mask[1:-1, 2:]
        )
    return out


def _dilate(mask: np.ndarray, step: int) -> np.ndarray:
    """Binary dilation by UECS step ``step``'s element: ``ndi.binary_dilation``'s result."""
    out = mask.copy()
    out[1:] |= mask[:-1]
    out[:-1] |= mask[1:]
    if step % 2 == 0:
        rows = out.copy()  # the square is the cross's vertical line widened sideways
        out[:, 1:] |= rows[:, :-1]
        out[:, :-1] |= rows[:, 1:]
    else:
        out[:, 1:] |= mask[:, :-1]
        out[:, :-1] |= mask[:, 1:]
    return out


def _uecs_markers(region: np.ndarray, test: _Test, min_marker_px: float) -> list[tuple]:
    """Erode until every piece is convex or too small; return (marker mask, erosions) pairs."""
    markers: list[tuple[np.ndarray, int]] = []
    active = region
    step = 0
    while active.any():
        step += 1
        active = _erode(active, step)
        pieces, n = ndi.label(active, structure=_CONNECT8)
        if n == 0:
            break
        still_nonconvex = np.zeros_like(active)
        for j, sl in enumerate(ndi.find_objects(pieces), start=1):
            piece = pieces[sl] == j
            if test.fails(piece):
                # The paper discards markers that shrink below the minimum "before surpassing
                # the convexity threshold"; a piece that is already convex is kept whatever its
                # size, because the small partner of an unequal pair only detaches late.
                if piece.sum() >= min_marker_px:
                    still_nonconvex[sl] |= piece
            else:
                marker = np.zeros_like(active)
                marker[sl] = piece
                markers.append((marker, step))
        active = still_nonconvex
    return markers


def _regrow(marker: np.ndarray, erosions: int, region: np.ndarray) -> np.ndarray:
    grown = marker
    for step in range(erosions, 0, -1):
        grown = _dilate(grown, step) & region
    return grown


def _check_params(
    pixel_size_nm: float,
    method: str,
    convexity_threshold: float,
    convexity_lower_bound: float,
    solidity_threshold: float,
    dt_peak_dynamic_px: float,
    min_marker_px: float,
    min_marker_diameter_nm: float,
    overlap_test: str,
    max_holes: int,
    edge: str,
) -> None:
    try:
        pixel_ok = math.isfinite(float(pixel_size_nm)) and float(pixel_size_nm) > 0
    except (TypeError, ValueError):
        pixel_ok = False
    if not pixel_ok:
        raise SeparationError(f"pixel_size_nm must be a positive number, got {pixel_size_nm!r}.")
    choices = {
        "method": (method, ("uecs", "watershed", "none")),
        "overlap_test": (overlap_test, ("sensitive", "paper")),
        "edge": (edge, ("drop", "flag")),
    }
    for name, (value, allowed) in choices.items():
        if value not in allowed:
            raise SeparationError(f"{name} must be one of {allowed}, got {value!r}.")
    if not 0 < convexity_threshold <= 1:
        raise SeparationError(
            f"convexity_threshold must be in (0, 1], got {convexity_threshold!r}."
        )
    if not 0 <= convexity_lower_bound < convexity_threshold:
        raise SeparationError(
            f"convexity_lower_bound must be in [0, convexity_threshold), got "
            f"{convexity_lower_bound!r}."
        )
    if not 0 <= solidity_threshold <= 1:
        raise SeparationError(f"solidity_threshold must be in [0, 1], got {solidity_threshold!r}.")
    if not dt_peak_dynamic_px > 0:
        raise SeparationError(f"dt_peak_dynamic_px must be positive, got {dt_peak_dynamic_px!r}.")
    if not min_marker_px >= 1:
        raise SeparationError(f"min_marker_px must be at least 1, got {min_marker_px!r}.")
    if not min_marker_diameter_nm >= 0:
        raise SeparationError(
            f"min_marker_diameter_nm must be zero or positive, got {min_marker_diameter_nm!r}."
        )
    if int(max_holes) != max_holes or max_holes < 0:
        raise SeparationError(f"max_holes must be a non-negative integer, got {max_holes!r}.")


def separate(
    mask: np.ndarray,
    pixel_size_nm: float,
    method: Method = "uecs",
    convexity_threshold: float = 0.95,
    convexity_lower_bound: float = 0.5,
    solidity_threshold: float = 0.85,
    dt_peak_dynamic_px: float = 1.0,
    min_marker_px: int = 30,
    min_marker_diameter_nm: float = 0.5,
    overlap_test: OverlapTest = "sensitive",
    max_holes: int = 2,
    edge: EdgePolicy = "drop",
) -> Separation:
    """Turn a clean particle mask into particles, splitting overlapping ones.

    Each 8-connected region is handled on its own bounding-box crop. A region passing the overlap
    test is one particle, untouched. A failing region is, by `method`: split by UECS (default),
    split by a distance-transform watershed, or kept whole and flagged ``nonconvex`` ("none").
    Under "uecs" and "watershed", a failing region with convexity below `convexity_lower_bound`
    or more than `max_holes` holes is excluded as hopeless. Edge handling comes after separation,
    so of a pair where one particle touches the border the other is kept.

    Parameters
    ----------
    mask : numpy.ndarray
        2-D particle mask (bool, or numeric with non-zero meaning particle), already despeckled.
    pixel_size_nm : float
        Pixel size in nm (> 0).
    method : {"uecs", "watershed", "none"}, optional
        How to treat regions that fail the overlap test.
    convexity_threshold : float, optional
        Regions with convexity below this fail the test (paper: 0.95).
    convexity_lower_bound : float, optional
        Failing regions with convexity below this are excluded, not split (paper: 0.5).
    solidity_threshold : float, optional
        "sensitive" test only: regions with solidity below this fail (0.85: convex shapes measured
        down to 0.89, see the module docstring).
    dt_peak_dynamic_px : float, optional
        "sensitive" test only: regions whose distance transform has two maxima each at least this
        high (px) above the saddle between them fail. Also the h of the watershed's h-maxima.
    min_marker_px : int, optional
        Smallest marker in pixels (paper: 30).
    min_marker_diameter_nm : float, optional
        Smallest marker as an equivalent diameter (paper: 0.5 nm); the larger area of the two
        applies.
    overlap_test : {"sensitive", "paper"}, optional
        "paper": convexity only. "sensitive": also solidity and distance-transform evidence.
    max_holes : int, optional
        Failing regions enclosing more holes than this are excluded (default 2).
    edge : {"drop", "flag"}, optional
        Drop particles touching the image border, or keep them with ``touches_edge=True``.

    Returns
    -------
    Separation
        Particles, a uint32 label image and the exclusion counts.

    Raises
    ------
    SeparationError
        If the mask is not 2-D or an argument is out of range.

    Examples
    --------
    >>> from skimage.draw import disk
    >>> m = np.zeros((80, 120), bool)
    >>> m[disk((40, 40), 20)] = True; m[disk((40, 72), 20)] = True
    >>> [p.separated for p in separate(m, pixel_size_nm=0.1).particles]
    [True, True]
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise SeparationError(f"The mask must be 2-D, got an array of shape {mask.shape}.")
    mask = mask.astype(bool, copy=False)
    _check_params(
        pixel_size_nm,
        method,
        convexity_threshold,
        convexity_lower_bound,
        solidity_threshold,
        dt_peak_dynamic_px,
        min_marker_px,
        min_marker_diameter_nm,
        overlap_test,
        max_holes,
        edge,
    )
    test = _Test(overlap_test, convexity_threshold, solidity_threshold, dt_peak_dynamic_px)
    min_marker_area = max(
        float(min_marker_px), area_px_for_diameter(min_marker_diameter_nm, pixel_size_nm)
    )
    reasons = dict.fromkeys(EXCLUSION_REASONS, 0)
    height, width = mask.shape
    regions, _ = ndi.label(mask, structure=_CONNECT8)
    # (crop, origin, separated, nonconvex, convexity where the overlap test computed it)
    found: list[tuple[np.ndarray, tuple[int, int], bool, bool, float | None]] = []

    for index, sl in enumerate(ndi.find_objects(regions), start=1):
        if sl is None:
            continue
        region = _padded(regions[sl] == index, _PAD)
        origin = (sl[0].start - _PAD, sl[1].start - _PAD)
        failing, region_convexity = test.assess(region)
        if not failing:
            found.append((region, origin, False, False, region_convexity))
            continue
        if method == "none":
            found.append((region, origin, False, True, region_convexity))
            continue
        filled = ndi.binary_fill_holes(region)
        if region_convexity < convexity_lower_bound:
            reasons["convexity_below_lower_bound"] += 1
            continue
        if ndi.label(filled & ~region)[1] > max_holes:
            reasons["too_many_holes"] += 1
            continue

        if method == "uecs":
            markers = _uecs_markers(region, test, min_marker_area)
            if not markers:
                reasons["no_convex_marker"] += 1
            elif len(markers) == 1:
                found.append((region, origin, False, True, region_convexity))
            else:
                for marker, erosions in markers:
                    grown = _regrow(marker, erosions, region)
                    if grown.sum() < min_marker_area:
                        reasons["small_fragment"] += 1
                        continue
                    grown_fails, grown_convexity = test.assess(grown)
                    if grown_fails:
                        reasons["regrown_nonconvex"] += 1
                    else:
                        found.append((grown, origin, True, False, grown_convexity))
        else:
            peaks, n_peaks, dt = _dt_maxima(filled, dt_peak_dynamic_px)
            # A basin needs a peak deep enough to hold the smallest marker (a disk of that area).
            min_radius = math.sqrt(min_marker_area / math.pi)
            peak_height = ndi.maximum(dt, peaks, np.arange(1, n_peaks + 1))
            keep = np.zeros(n_peaks + 1, dtype=bool)
            keep[1:] = np.asarray(peak_height) >= min_radius
            peaks = np.where(keep[peaks], peaks, 0)
            if np.count_nonzero(keep) < 2:
                found.append((region, origin, False, True, region_convexity))
                continue
            basins = watershed(-dt, peaks, mask=region)
            for value in np.unique(basins[basins > 0]):
                piece = basins == value
                if piece.sum() < min_marker_area:
                    reasons["small_fragment"] += 1
                else:
                    found.append((piece, origin, True, False, None))

    particles: list[Particle] = []
    for crop, origin, separated, nonconvex, crop_convexity in found:
        tight, offset = _tight(crop, origin)
        touches = (
            offset[0] == 0
            or offset[1] == 0
            or offset[0] + tight.shape[0] == height
            or offset[1] + tight.shape[1] == width
        )
        if touches and edge == "drop":
            reasons["touches_edge"] += 1
            continue
        particles.append(
            Particle(tight, offset, separated, nonconvex, bool(touches), crop_convexity)
        )

    labels = _label_image(particles, mask.shape)
    return Separation(particles, labels, sum(reasons.values()), reasons)
