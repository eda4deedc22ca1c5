"""Everything in a micrograph that is not a metal particle, as projected-thickness-like maps.

All maps are float32 images of the full field, in arbitrary thickness units (nm of the material
they stand for); the physics module turns them into intensity. Random fields are made in Fourier
space (one FFT per field), so a 512 x 512 background costs a few milliseconds.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def _freq_radius(shape: tuple[int, int]) -> np.ndarray:
    fy = np.fft.fftfreq(shape[0])[:, None]
    fx = np.fft.rfftfreq(shape[1])[None, :]
    return np.sqrt(fx * fx + fy * fy)


def _filtered_noise(
    rng: np.random.Generator, shape: tuple[int, int], spectrum: np.ndarray
) -> np.ndarray:
    white = rng.standard_normal(shape).astype(np.float32)
    field = np.fft.irfft2(np.fft.rfft2(white) * spectrum, s=shape).astype(np.float32)
    sd = float(field.std())
    return field / sd if sd > 0 else field


def bandpass_noise(
    rng: np.random.Generator, shape: tuple[int, int], scale_px: float, width: float = 0.5
) -> np.ndarray:
    """Zero-mean, unit-variance noise with its power around the spatial period ``scale_px``.

    Amorphous carbon seen at focus looks like this: a speckle whose grain is the 0.3–1 nm period
    passed best by the contrast transfer function.
    """
    f = _freq_radius(shape)
    f0 = 1.0 / max(scale_px, 2.0)
    spec = np.exp(-0.5 * (np.log(np.maximum(f, 1e-6) / f0) / width) ** 2)
    spec[0, 0] = 0.0
    return _filtered_noise(rng, shape, spec)


def fractal_noise(
    rng: np.random.Generator, shape: tuple[int, int], beta: float, cutoff_px: float
) -> np.ndarray:
    """Zero-mean, unit-variance noise with a power-law spectrum ``f**-beta`` above ``cutoff_px``.

    Used for support thickness: grainy oxide and thick carbon look like this at large scale.
    """
    f = _freq_radius(shape)
    fc = 1.0 / max(cutoff_px, 1.0)
    spec = (np.maximum(f, fc)) ** (-beta / 2.0)
    spec[0, 0] = 0.0
    return _filtered_noise(rng, shape, spec)


def smooth_field(rng: np.random.Generator, shape: tuple[int, int], scale_px: float) -> np.ndarray:
    """Unit-variance noise smoothed at ``scale_px`` (a Gaussian low-pass)."""
    f = _freq_radius(shape)
    spec = np.exp(-0.5 * (f * 2 * np.pi * scale_px) ** 2)
    spec[0, 0] = 0.0
    return _filtered_noise(rng, shape, spec)


def soft_blobs(
    rng: np.random.Generator,
    shape: tuple[int, int],
    n: int,
    radius_px: tuple[float, float],
    softness: tuple[float, float],
    aspect_max: float = 1.8,
) -> np.ndarray:
    """Sum of ``n`` soft-edged elliptical bumps of height about 1.

    Each bump is ``1 / (1 + exp((rho - 1) / s))`` in its own elliptical radius ``rho``, with a
    softness ``s`` (relative to the radius) drawn from ``softness``: contamination spots and
    residue have edges much softer than a metal particle's.
    """
    h, w = shape
    out = np.zeros(shape, np.float32)
    for _ in range(n):
        r = float(np.exp(rng.uniform(np.log(radius_px[0]), np.log(radius_px[1]))))
        s = rng.uniform(*softness)
        a = rng.uniform(1.0, aspect_max)
        th = rng.uniform(0, np.pi)
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        ext = r * a * (1 + 6 * s) + 2
        r0, r1 = int(max(cy - ext, 0)), int(min(cy + ext + 1, h))
        c0, c1 = int(max(cx - ext, 0)), int(min(cx + ext + 1, w))
        if r1 <= r0 or c1 <= c0:
            continue
        y = np.arange(r0, r1)[:, None] + 0.5 - cy
        x = np.arange(c0, c1)[None, :] + 0.5 - cx
        u = (x * np.cos(th) + y * np.sin(th)) / (r * a**0.5)
        v = (-x * np.sin(th) + y * np.cos(th)) * a**0.5 / r
        rho = np.sqrt(u * u + v * v)
        bump = 1.0 / (1.0 + np.exp(np.clip((rho - 1.0) / s, -30, 30)))
        out[r0:r1, c0:c1] += (bump * rng.uniform(0.5, 1.0)).astype(np.float32)
    return out


def residue_patches(
    rng: np.random.Generator,
    shape: tuple[int, int],
    scale_px: float,
    fraction: float,
    softness: float,
) -> np.ndarray:
    """Irregular soft-edged patches covering about ``fraction`` of the field (organic residue)."""
    g = smooth_field(rng, shape, scale_px)
    thr = float(np.quantile(g, 1.0 - fraction))
    return (1.0 / (1.0 + np.exp(-np.clip((g - thr) / max(softness, 1e-3), -30, 30)))).astype(
        np.float32
    )


def hole_mask(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """A vacuum region (1) with a wavy film edge; the film (0) covers at least half the field."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if rng.random() < 0.5:
        # edge of a large round hole
        rad = rng.uniform(0.6, 2.0) * max(h, w)
        ang = rng.uniform(0, 2 * np.pi)
        dist = rng.uniform(0.2, 0.45) * max(h, w) + rad
        cy, cx = h / 2 + dist * np.sin(ang), w / 2 + dist * np.cos(ang)
        signed = rad - np.hypot(yy - cy, xx - cx)
    else:
        ang = rng.uniform(0, 2 * np.pi)
        off = rng.uniform(0.15, 0.4) * max(h, w)
        signed = (xx - w / 2) * np.cos(ang) + (yy - h / 2) * np.sin(ang) - off
    wiggle = smooth_field(rng, shape, max(h, w) / 12.0) * rng.uniform(1.0, 0.04 * max(h, w) + 1)
    return ((signed + wiggle) > 0).astype(np.float32)


def illumination(rng: np.random.Generator, shape: tuple[int, int], strength: float) -> np.ndarray:
    """A smooth multiplicative illumination field around 1 (ramp plus a broad bump)."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    yy = yy / h - 0.5
    xx = xx / w - 0.5
    ang = rng.uniform(0, 2 * np.pi)
    ramp = xx * np.cos(ang) + yy * np.sin(ang)
    cy, cx = rng.uniform(-0.7, 0.7, size=2)
    bump = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * rng.uniform(0.3, 1.0) ** 2))
    field = 1.0 + strength * (
        rng.uniform(-1, 1) * ramp + rng.uniform(-0.5, 0.5) * (bump - bump.mean())
    )
    return np.clip(field, 0.2, None).astype(np.float32)


def gaussian(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur that is a no-op below 0.05 px (float32 in, float32 out)."""
    if sigma < 0.05:
        return image
    return ndimage.gaussian_filter(image, sigma, mode="reflect", truncate=3.0)


def grain_aggregate(
    rng: np.random.Generator,
    shape: tuple[int, int],
    radius_px: float,
    cover: float,
    clump: float,
) -> np.ndarray:
    """Projected thickness of clumped spherical support grains, peak about 1 per grain.

    Oxide and carbon-black supports are aggregates of roughly spherical primary grains; seen in
    projection they pile up into bright (HAADF) or dark (BF) clouds with vacuum gaps. Grains
    of three sizes are splatted as impulses and convolved with the projected-sphere profile in
    Fourier space, so the cost does not depend on how many grains there are.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of randomness.
    shape : tuple of int
        Field size in pixels.
    radius_px : float
        Typical grain radius in pixels.
    cover : float
        Grain count as if every grain had `radius_px`, over the field area; with the three
        grain sizes the summed area comes out about 1.3 × cover (above 1: grains overlap a lot).
    clump : float
        0: grains spread uniformly; 1: grains gathered in a few aggregates.

    Returns
    -------
    numpy.ndarray
        float32 thickness map in units of one grain diameter.
    """
    h, w = shape
    radius_px = max(radius_px, 1.5)
    n = int(np.clip(cover * h * w / (np.pi * radius_px**2), 1, 5000))
    n_agg = max(1, int(n / rng.uniform(4, 40)))
    centres = rng.uniform([0, 0], [h, w], size=(n_agg, 2))
    which = rng.integers(0, n_agg, size=n)
    spread = radius_px * np.sqrt(n / n_agg) * rng.uniform(0.6, 1.5)
    clumped = centres[which] + rng.normal(0, spread, size=(n, 2))
    uniform = rng.uniform([0, 0], [h, w], size=(n, 2))
    pick = rng.random(n) < clump
    pos = np.where(pick[:, None], clumped, uniform)
    iy = np.mod(np.round(pos[:, 0]).astype(int), h)
    ix = np.mod(np.round(pos[:, 1]).astype(int), w)
    size_class = rng.integers(0, 3, size=n)
    dy = np.minimum(np.arange(h), h - np.arange(h))[:, None].astype(np.float32)
    dx = np.minimum(np.arange(w), w - np.arange(w))[None, :].astype(np.float32)
    rho2 = dy * dy + dx * dx
    spectrum = np.zeros((h, w // 2 + 1), np.complex64)
    for k, factor in enumerate((0.6, 1.0, 1.6)):
        sel = size_class == k
        if not sel.any():
            continue
        r = radius_px * factor
        imp = np.zeros(shape, np.float32)
        np.add.at(imp, (iy[sel], ix[sel]), 1.0)
        kernel = np.sqrt(np.maximum(1.0 - rho2 / (r * r), 0.0)).astype(np.float32) * factor
        spectrum += np.fft.rfft2(imp) * np.fft.rfft2(kernel)
    return np.fft.irfft2(spectrum, s=shape).astype(np.float32)


def platelet_aggregate(
    rng: np.random.Generator,
    shape: tuple[int, int],
    half_length_px: float,
    cover: float,
    clump: float,
) -> np.ndarray:
    """Projected thickness of a pile of flat platelets and rods, as gamma-alumina supports look.

    Alumina crystallites are thin plates and needles, not spheres: seen in projection they are
    flat-topped polygons with sharp edges, and where two cross the thickness adds, so
    crossings are brighter (HAADF) or darker (BF) patches with straight edges. A third of the
    crystallites lie edge-on and project as narrow, thicker rods.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of randomness.
    shape : tuple of int
        Field size in pixels.
    half_length_px : float
        Typical half-length of a crystallite's long side in pixels.
    cover : float
        Crystallite count as if each covered 4/3 half_length_px² over the field area; with the
        drawn sizes and shapes the summed area comes out about 1.5 × cover (above 1: they
        pile up).
    clump : float
        0: crystallites spread uniformly; 1: gathered in a few aggregates.

    Returns
    -------
    numpy.ndarray
        float32 thickness map, about 1 per face-on plate.
    """
    h, w = shape
    half_length_px = max(half_length_px, 2.0)
    # kept as the unit of `cover` the trained experiments used, though the drawn crystallites
    # average about 2 half_length_px² (so their summed area is ~1.5x cover)
    mean_area = 4 * half_length_px**2 / 3.0
    n = int(np.clip(cover * h * w / mean_area, 1, 3000))
    n_agg = max(1, int(n / rng.uniform(4, 40)))
    centres = rng.uniform([0, 0], [h, w], size=(n_agg, 2))
    spread = half_length_px * np.sqrt(n / n_agg) * rng.uniform(0.6, 1.5)
    field = np.zeros(shape, np.float32)
    for _ in range(n):
        if rng.random() < clump:
            cy, cx = centres[rng.integers(n_agg)] + rng.normal(0, spread, size=2)
        else:
            cy, cx = rng.uniform([0, 0], [h, w])
        a = half_length_px * rng.uniform(0.5, 1.8)
        if rng.random() < 1 / 3:  # edge-on: a narrow rod, thicker than a plate is
            b = max(0.8, a * rng.uniform(0.06, 0.2))
            thickness = rng.uniform(1.0, 2.0)
        else:
            b = a / rng.uniform(1.0, 4.0)
            thickness = rng.uniform(0.3, 1.0)
        corner = b * rng.uniform(0.0, 0.8)  # crystallites are seldom sharp-cornered
        angle = rng.uniform(0, np.pi)
        reach = np.hypot(a, b) + 1
        y0, y1 = max(int(cy - reach), 0), min(int(cy + reach) + 2, h)
        x0, x1 = max(int(cx - reach), 0), min(int(cx + reach) + 2, w)
        if y0 >= y1 or x0 >= x1:
            continue
        yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        c, s = np.cos(angle), np.sin(angle)
        u = (xx - cx) * c + (yy - cy) * s
        v = -(xx - cx) * s + (yy - cy) * c
        # signed distance outside the rounded rectangle; the clip gives a one-pixel
        # anti-aliased edge
        qu, qv = np.abs(u) - a + corner, np.abs(v) - b + corner
        outside = (
            np.hypot(np.maximum(qu, 0), np.maximum(qv, 0))
            + np.minimum(np.maximum(qu, qv), 0)
            - corner
        )
        field[y0:y1, x0:x1] += thickness * np.clip(0.5 - outside, 0.0, 1.0)
    return field
