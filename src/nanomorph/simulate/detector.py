"""Detector and recording: blur, shot noise, read noise, gain/offset, bit depth, JPEG."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image
from scipy import ndimage

from nanomorph.simulate.backgrounds import gaussian


def probe_blur(
    image: np.ndarray,
    sigma_px: float,
    tail_fraction: float,
    tail_sigma_px: float,
    aspect: float = 1.0,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Blur by a Gaussian core plus a broad Gaussian tail (probe tails, lens aberrations).

    ``aspect`` > 1 stretches the core along one image axis (astigmatism, drift).
    """
    if aspect > 1.0 and sigma_px >= 0.05:
        sig = (sigma_px * aspect, sigma_px / aspect)
        if rng is not None and rng.random() < 0.5:
            sig = sig[::-1]
        core = ndimage.gaussian_filter(image, sig, mode="reflect", truncate=3.0)
    else:
        core = gaussian(image, sigma_px)
    if tail_fraction <= 0:
        return core
    return (1 - tail_fraction) * core + tail_fraction * gaussian(image, tail_sigma_px)


def record(
    intensity: np.ndarray,
    rng: np.random.Generator,
    *,
    dose: float,
    read_noise: float,
    detector_sigma_px: float,
    row_noise: float,
    gain: float,
    offset: float,
    output_dtype: str,
    jpeg_quality: int | None,
    clip_fraction: float,
) -> np.ndarray:
    """Turn a noise-free intensity (about 1 where the beam is unobstructed) into a recorded image.

    Parameters
    ----------
    intensity : numpy.ndarray
        Expected signal per pixel in units of the reference intensity (float32, >= 0).
    rng : numpy.random.Generator
        Source of the noise.
    dose : float
        Expected counts per pixel at intensity 1 (low: a few counts, very noisy).
    read_noise : float
        Standard deviation of additive Gaussian noise, in counts.
    detector_sigma_px : float
        Blur applied after the noise (scintillator/MTF): makes the noise correlated.
    row_noise : float
        Relative standard deviation of a per-row gain (scan lines in STEM).
    gain, offset : float
        Linear map from counts to recorded values.
    output_dtype : {"uint8", "uint16", "float32"}
        Bit depth of the recorded image; 8-bit images are stretched to 0..255.
    jpeg_quality : int or None
        When given, the 8-bit image is JPEG-compressed at this quality (50–95) and decoded.
    clip_fraction : float
        Fraction of pixels allowed to saturate at each end when stretching to 8 bits.

    Returns
    -------
    numpy.ndarray
        The recorded image as float32 (values of the chosen bit depth).

    Raises
    ------
    ValueError
        If ``output_dtype`` is not one of the three above.
    """
    if output_dtype not in ("uint8", "uint16", "float32"):
        raise ValueError(f"output_dtype must be uint8, uint16 or float32, got {output_dtype!r}")
    lam = np.clip(intensity, 0, None).astype(np.float64) * dose
    counts = rng.poisson(lam).astype(np.float32)
    if read_noise > 0:
        counts += rng.normal(0, read_noise, size=counts.shape).astype(np.float32)
    if row_noise > 0:
        counts *= (1 + row_noise * rng.standard_normal((counts.shape[0], 1))).astype(np.float32)
    counts = gaussian(counts, detector_sigma_px)
    values = counts * np.float32(gain) + np.float32(offset)
    if output_dtype == "float32" and jpeg_quality is None:
        return values.astype(np.float32)
    if output_dtype == "uint16" and jpeg_quality is None:
        return np.clip(np.round(values), 0, 65535).astype(np.float32)
    lo, hi = np.quantile(values, [clip_fraction, 1 - clip_fraction])
    if hi <= lo:
        hi = lo + 1.0
    u8 = np.clip(np.round((values - lo) / (hi - lo) * 255.0), 0, 255).astype(np.uint8)
    if jpeg_quality is not None:
        buf = io.BytesIO()
        Image.fromarray(u8).save(buf, format="JPEG", quality=int(jpeg_quality))
        buf.seek(0)
        u8 = np.asarray(Image.open(buf).convert("L"))
    return u8.astype(np.float32)
