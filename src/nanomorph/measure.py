"""One row per particle: calibrated size and shape.

Definitions (``px`` is the pixel size in nm; a particle is a set of square pixels):

* ``area_nm2`` -- pixel count x px^2 (holes, if any, not counted);
  ``equivalent_diameter_nm`` = sqrt(4 A / pi).
* ``feret_max_nm`` / ``feret_min_nm`` -- largest and smallest caliper width of the convex hull of
  the pixel centres (rotating calipers for the minimum, the longest hull chord for the maximum),
  plus one pixel for the half pixel on either side. A digital square of side s gives s and
  s*sqrt(2) - 0.41 px; a digital disk of diameter d gives d within 0.5 px in every direction. The
  hull of the pixel corners was rejected: its corners stick out along the diagonals, so disks came
  out 1.1-1.3 px too long. ``regionprops``' ``feret_diameter_max`` (a marching-squares hull) is
  not used either, so that minimum and maximum come from the same hull and a disk's aspect ratio
  cannot fall below 1.
* ``aspect_ratio`` = feret_max / feret_min.
* ``perimeter_nm`` -- 4-direction Crofton estimate (``skimage.measure.perimeter_crofton``) of the
  outer boundary (holes filled). It is chosen because a digital disk then has circularity within
  0.02 of 1 from 3 px radius upwards, where skimage's default ``perimeter`` drifts from 1.16 to
  0.93 with size and a marching-squares polygon gives 0.90; it is also the estimator behind
  ``convexity`` (see :mod:`nanomorph.separate`). Its known bias: edges parallel to the pixel grid
  come out about 7 % short (a 10 x 30 px rectangle: 74.7 px instead of 80), so an axis-aligned
  square has circularity 0.90 instead of pi/4 = 0.785; edges at other angles are closer.
* ``circularity`` = 4 pi A / P^2, reported as computed (not clipped; digital disks give 0.99-1.01).
* ``convexity`` -- :func:`nanomorph.separate.convexity`, convex-hull perimeter / perimeter.
* ``centroid_x_nm``, ``centroid_y_nm`` -- from the image's top-left corner, x to the right, y
  down; pixel (row i, column j) has its centre at ((j + 0.5) px, (i + 0.5) px).
* ``bbox_x0_px``, ``bbox_y0_px`` -- first column and row of the particle; ``bbox_x1_px``,
  ``bbox_y1_px`` -- one past the last column and row (exclusive, as in Python slices).
* ``separated``, ``nonconvex``, ``touches_edge`` -- copied from the :class:`Particle`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import ndimage as ndi
from scipy.spatial import ConvexHull, QhullError
from skimage.measure import regionprops

from nanomorph.geometry import crofton_perimeter
from nanomorph.separate import Particle, convexity

__all__ = [
    "PARTICLE_COLUMNS",
    "MeasurementError",
    "contrast_to_surroundings",
    "feret_diameters_px",
    "measure_particles",
]

PARTICLE_COLUMNS: tuple[str, ...] = (
    "image",
    "frame",
    "particle_id",
    "area_nm2",
    "equivalent_diameter_nm",
    "feret_min_nm",
    "feret_max_nm",
    "aspect_ratio",
    "perimeter_nm",
    "circularity",
    "convexity",
    "centroid_x_nm",
    "centroid_y_nm",
    "bbox_x0_px",
    "bbox_y0_px",
    "bbox_x1_px",
    "bbox_y1_px",
    "separated",
    "nonconvex",
    "touches_edge",
)

_DTYPES: dict[str, str] = {
    "image": "object",
    "frame": "Int64",
    "particle_id": "int64",
    **{
        name: "float64"
        for name in PARTICLE_COLUMNS[3:13]  # area_nm2 .. centroid_y_nm
    },
    **{name: "int64" for name in ("bbox_x0_px", "bbox_y0_px", "bbox_x1_px", "bbox_y1_px")},
    **{name: "bool" for name in ("separated", "nonconvex", "touches_edge")},
}


class MeasurementError(ValueError):
    """A bad argument to a measurement function (a ValueError with one explanatory sentence)."""


def contrast_to_surroundings(
    image: np.ndarray, labels: np.ndarray, mask: np.ndarray, ring_px: int = 4
) -> np.ndarray:
    """How far each labelled particle stands out of its surroundings, in units of their noise.

    The particle's mean minus the mean of a ring around it (``ring_px`` wide, starting one pixel
    away from any pixel of `mask`), over the ring's standard deviation (noise and background
    structure together), times the square root of the particle's area capped at 25 px (the Rose
    criterion: a person does not integrate a faint disc over hundreds of pixels). Positive for a
    particle brighter than its surroundings (HAADF), negative for a darker one (bright field).

    Parameters
    ----------
    image : numpy.ndarray
        The micrograph (2-D, any numeric type).
    labels : numpy.ndarray
        Non-negative integer particle labels of the same shape, 0 = background.
    mask : numpy.ndarray
        Every particle pixel (the ring keeps clear of all of them, labelled or not).
    ring_px : int, optional
        Ring width in pixels.

    Returns
    -------
    numpy.ndarray
        float, indexed by label (index 0, absent labels and particles with fewer than 5 ring
        pixels: NaN).
    """
    from skimage.segmentation import expand_labels

    ids = np.asarray(labels, dtype=np.int64)
    n = int(ids.max()) + 1 if ids.size else 1
    ring = expand_labels(ids, ring_px)
    ring[ndi.binary_dilation(np.asarray(mask, dtype=bool), iterations=1)] = 0
    values = np.asarray(image, dtype=np.float64).ravel()

    def stats(label_image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        flat = label_image.ravel()
        count = np.bincount(flat, minlength=n).astype(float)
        total = np.bincount(flat, weights=values, minlength=n)
        squares = np.bincount(flat, weights=values**2, minlength=n)
        mean = total / np.maximum(count, 1)
        var = np.maximum(squares / np.maximum(count, 1) - mean**2, 0.0)
        return count, mean, var

    n_in, mean_in, _ = stats(ids)
    n_ring, mean_ring, var_ring = stats(ring)
    with np.errstate(divide="ignore", invalid="ignore"):
        snr = (mean_in - mean_ring) / np.sqrt(var_ring) * np.sqrt(np.minimum(n_in, 25))
    snr[(n_in < 1) | (n_ring < 5) | ~np.isfinite(snr)] = np.nan
    snr[0] = np.nan
    return snr


def feret_diameters_px(mask: np.ndarray) -> tuple[float, float]:
    """Minimum and maximum Feret diameter of a region, in pixels.

    Caliper widths of the convex hull of the pixel centres, plus one pixel (half a pixel on each
    side). A single row or column of n pixels gives (1, n).

    Parameters
    ----------
    mask : numpy.ndarray
        2-D boolean mask of one region.

    Returns
    -------
    tuple of float
        (feret_min_px, feret_max_px).

    Raises
    ------
    MeasurementError
        If the mask is not 2-D or is empty.

    Examples
    --------
    >>> [round(v, 2) for v in feret_diameters_px(np.ones((3, 4), bool))]  # 1 + hypot(2, 3)
    [3.0, 4.61]
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2 or not mask.any():
        raise MeasurementError(
            f"Feret diameters need a non-empty 2-D mask, got shape {mask.shape} with "
            f"{int(mask.sum())} pixels."
        )
    # Interior pixels cannot be hull vertices.
    boundary = mask & ~ndi.binary_erosion(mask, border_value=0)
    points = np.column_stack(np.nonzero(boundary)).astype(float)
    try:
        hull = points[ConvexHull(points).vertices]
    except QhullError:
        # All pixel centres on one line (a single pixel, a row, a column or a diagonal run).
        spans = points - points[0]
        return 1.0, float(np.hypot(spans[:, 0], spans[:, 1]).max()) + 1.0

    diffs = hull[:, None, :] - hull[None, :, :]
    feret_max = float(np.sqrt((diffs**2).sum(axis=-1)).max())

    # Rotating calipers: the minimum width is attained with one caliper flush with a hull edge.
    edges = np.roll(hull, -1, axis=0) - hull
    lengths = np.hypot(edges[:, 0], edges[:, 1])
    normals = np.column_stack([-edges[:, 1], edges[:, 0]]) / lengths[:, None]
    heights = np.abs(normals @ hull.T - (normals * hull).sum(axis=1)[:, None])
    feret_min = float(heights.max(axis=1).min())
    # Centre-to-centre widths miss half a pixel on each side.
    feret_min, feret_max = feret_min + 1.0, feret_max + 1.0
    return feret_min, feret_max


def empty_particle_table() -> pd.DataFrame:
    """A particle table without rows: the columns and dtypes of :func:`measure_particles`."""
    return pd.DataFrame({name: pd.Series(dtype=_DTYPES[name]) for name in PARTICLE_COLUMNS})


def measure_particles(
    particles: Sequence[Particle],
    pixel_size_nm: float,
    image: str = "",
    frame: int | None = None,
) -> pd.DataFrame:
    """Measure every particle; one row each, columns :data:`PARTICLE_COLUMNS`.

    ``particle_id`` counts from 1 in the order of `particles`, so it equals the particle's value
    in :attr:`nanomorph.separate.Separation.labels`. See the module docstring for each column.

    Parameters
    ----------
    particles : sequence of Particle
        Particles from :func:`nanomorph.separate.separate`.
    pixel_size_nm : float
        Pixel size in nm (> 0).
    image : str, optional
        Image name written into the ``image`` column.
    frame : int or None, optional
        Frame index written into the ``frame`` column (nullable integer; missing if None).

    Returns
    -------
    pandas.DataFrame
        One row per particle with the dtypes of the module's column table; an empty, typed frame
        when there are no particles.

    Raises
    ------
    MeasurementError
        If the pixel size is not positive or a particle's mask is empty or not 2-D.

    Examples
    --------
    >>> p = Particle(mask=np.ones((10, 10), bool), offset=(5, 0))
    >>> row = measure_particles([p], pixel_size_nm=0.5).iloc[0]
    >>> float(row.feret_min_nm), float(row.centroid_x_nm), float(row.centroid_y_nm)
    (5.0, 2.5, 5.0)
    """
    try:
        px = float(pixel_size_nm)
    except (TypeError, ValueError):
        px = math.nan
    if not (math.isfinite(px) and px > 0):
        raise MeasurementError(f"pixel_size_nm must be a positive number, got {pixel_size_nm!r}.")
    if not particles:
        return empty_particle_table()

    rows = []
    for number, particle in enumerate(particles, start=1):
        mask = np.asarray(particle.mask, dtype=bool)
        if mask.ndim != 2 or not mask.any():
            raise MeasurementError(
                f"Particle {number} has an empty or non-2-D mask of shape {mask.shape}."
            )
        row0, col0 = (int(v) for v in particle.offset)
        props = regionprops(mask.astype(np.uint8))[0]
        area_px = float(props.area)
        perimeter_px = crofton_perimeter(ndi.binary_fill_holes(mask))
        feret_min, feret_max = feret_diameters_px(mask)
        centroid_row, centroid_col = props.centroid
        r0, c0, r1, c1 = props.bbox
        rows.append(
            {
                "image": image,
                "frame": frame,
                "particle_id": number,
                "area_nm2": area_px * px**2,
                "equivalent_diameter_nm": math.sqrt(4.0 * area_px / math.pi) * px,
                "feret_min_nm": feret_min * px,
                "feret_max_nm": feret_max * px,
                "aspect_ratio": feret_max / feret_min,
                "perimeter_nm": perimeter_px * px,
                "circularity": 4.0 * math.pi * area_px / perimeter_px**2,
                # Where the overlap test computed it on these pixels already, it is not redone.
                "convexity": (
                    convexity(mask) if particle.convexity is None else particle.convexity
                ),
                "centroid_x_nm": (col0 + centroid_col + 0.5) * px,
                "centroid_y_nm": (row0 + centroid_row + 0.5) * px,
                "bbox_x0_px": col0 + c0,
                "bbox_y0_px": row0 + r0,
                "bbox_x1_px": col0 + c1,
                "bbox_y1_px": row0 + r1,
                "separated": bool(particle.separated),
                "nonconvex": bool(particle.nonconvex),
                "touches_edge": bool(particle.touches_edge),
            }
        )
    table = pd.DataFrame(rows, columns=list(PARTICLE_COLUMNS))
    return table.astype(_DTYPES)
