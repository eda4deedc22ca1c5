"""Classical segmentation: smoothing and an automatic global threshold.

This is the baseline the network must beat and a fallback for clean, high-contrast images. It
has no notion of what a particle looks like: contamination, support texture and uneven
illumination all end up in the mask if they are as dark (or bright) as the particles.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy import ndimage as ndi
from skimage.filters import threshold_otsu

Polarity = Literal["dark", "bright", "auto"]
POLARITIES = ("dark", "bright", "auto")


def infer_polarity(image: np.ndarray, threshold: float | None = None) -> Literal["dark", "bright"]:
    """Guess whether particles are darker (bright field) or brighter (HAADF) than the background.

    Particles rarely cover more than half of a micrograph, so the class on the minority side of
    the Otsu threshold is taken to be the particles.

    Parameters
    ----------
    image
        2-D grey image.
    threshold
        A threshold already computed on the image (Otsu when omitted).

    Returns
    -------
    ``"dark"`` when the pixels below the threshold are the minority, else ``"bright"``.
    """
    image = np.asarray(image, dtype=np.float32)
    if threshold is None:
        threshold = float(threshold_otsu(image))
    below = float(np.mean(image < threshold))
    return "dark" if below < 0.5 else "bright"


def segment_threshold(
    image: np.ndarray,
    pixel_size_nm: float | None = None,
    polarity: Polarity = "auto",
    smoothing_px: float = 1.0,
) -> np.ndarray:
    """Segment particles by Gaussian smoothing and Otsu's threshold.

    Parameters
    ----------
    image
        2-D grey micrograph.
    pixel_size_nm
        Unused by the threshold itself (it works in pixels); accepted so that every segmenter has
        the same signature ``(image, pixel_size_nm) -> mask``.
    polarity
        ``"dark"`` for dark particles on a bright background (bright-field TEM), ``"bright"`` for
        bright particles on a dark background (HAADF-STEM), ``"auto"`` to decide per image with
        :func:`infer_polarity`.
    smoothing_px
        Standard deviation of the Gaussian applied before thresholding, in pixels. One pixel
        suppresses shot noise without rounding off particles of a few pixels.

    Returns
    -------
    Boolean mask, True on particles, same shape as ``image``.

    Raises
    ------
    ValueError
        If the image is not 2-D, is constant, or ``polarity`` is unknown.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.ones((32, 32), np.float32); img[10:20, 10:20] = 0.2
    >>> int(segment_threshold(img, polarity="dark", smoothing_px=0).sum())
    100
    """
    if polarity not in POLARITIES:
        raise ValueError(f"polarity must be one of {POLARITIES}, got {polarity!r}")
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 2:
        raise ValueError(f"expected a 2-D image, got shape {image.shape}")
    smoothed = ndi.gaussian_filter(image, smoothing_px) if smoothing_px > 0 else image
    if float(smoothed.max()) == float(smoothed.min()):
        raise ValueError("the image is constant: there is nothing to threshold")
    threshold = float(threshold_otsu(smoothed))
    if polarity == "auto":
        polarity = infer_polarity(smoothed, threshold)
    return smoothed < threshold if polarity == "dark" else smoothed > threshold
