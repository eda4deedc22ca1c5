"""Input preparation shared by training and inference.

Training and inference must see images prepared the same way, so both call the functions here and
the settings travel with the model in ``config.json`` (:class:`PreprocessConfig`).

The three rules:

normalisation
    Robust per-image scaling: the ``low_percentile`` and ``high_percentile`` intensities map to -1
    and +1, and values are clipped to ``±clip``.  Hot pixels, saturated areas and arbitrary
    detector gain/offset therefore do not change what the network sees.
polarity
    ``"both"``: the network was trained on dark-on-bright (bright field) and bright-on-dark (HAADF)
    images, so inputs are passed as they are.  A model trained on one polarity (``"dark"`` or
    ``"bright"``) has inputs of the other polarity inverted when the caller says so.
support flattening (optional, off unless ``flatten_sigma_px`` is set)
    After normalisation, intensity variations broader than a Gaussian of ``flatten_sigma_px``
    (on the working grid) are scaled down to ``flatten_keep`` of their size and the image is
    normalised again: a bright, cloudy oxide support or an illumination gradient then no longer
    decides how bright a small particle looks to the network, while everything narrower than
    the Gaussian, the particles included, keeps its contrast.  Particles as wide as the
    Gaussian or wider lose part of theirs, so it is for images of particles much smaller than
    ``flatten_sigma_px`` (the shipped model is trained with it: its model card, "This version").
resampling
    Images whose pixels are finer than ``min_working_pixel_size_nm`` are block-averaged by the
    integer factor ``floor(min_working_pixel_size_nm / pixel_size_nm)`` so that large particles stay
    within the network's receptive field; the probability map is interpolated back to the input
    grid.  A 1 nm particle still spans at least ``1 / min_working_pixel_size_nm`` pixels.
    When the caller declares the typical particle diameter, the factor is raised further to
    ``floor(diameter_px / target_particle_px)`` where that is larger, so that large particles are
    seen at about the size the network finds them best (an inference rule only; training keeps
    the simulator's sizes; :func:`downsample_factor`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage

POLARITIES = ("both", "dark", "bright")


class PreprocessError(ValueError):
    """An image or a preprocessing setting that cannot be used."""


def check_flattening(sigma_px: float | None, keep: float) -> float | None:
    """Validate support-flattening settings; return the width, or None when it is off.

    Raises
    ------
    PreprocessError
        If the width is negative or not finite, or ``keep`` is outside [0, 1].
    """
    if not 0.0 <= float(keep) <= 1.0:
        raise PreprocessError(f"flatten_keep must be between 0 and 1, got {keep!r}")
    if sigma_px is None:
        return None
    sigma = float(sigma_px)
    if not (math.isfinite(sigma) and sigma >= 0):
        raise PreprocessError(
            f"flatten_sigma_px must be a non-negative number of pixels, got {sigma_px!r}"
        )
    return sigma if sigma > 0 else None


@dataclass(frozen=True)
class PreprocessConfig:
    """Preprocessing settings stored in a model folder's ``config.json``.

    Parameters
    ----------
    low_percentile, high_percentile : float
        Intensity percentiles mapped to -1 and +1.
    clip : float
        Normalised values are clipped to ``[-clip, clip]``.
    polarity : {"both", "dark", "bright"}
        Particle polarity the network was trained on ("dark": dark particles on a bright
        background, as in bright-field TEM; "bright": HAADF-STEM; "both": either).
    min_working_pixel_size_nm : float
        Images with a finer pixel size are downsampled by an integer factor (see module notes).
    max_downsample_factor : int
        Upper bound of that factor.
    flatten_sigma_px : float, optional
        Support flattening (see module notes): the width, in working-grid pixels, of the
        Gaussian that defines the support's smooth background; None (the default) or 0 is off.
    flatten_keep : float
        Fraction of that background left in the image (0 removes it, 1 leaves it).
    """

    low_percentile: float = 1.0
    high_percentile: float = 99.0
    clip: float = 3.0
    polarity: str = "both"
    min_working_pixel_size_nm: float = 0.1
    max_downsample_factor: int = 16
    flatten_sigma_px: float | None = None
    flatten_keep: float = 0.3
    notes: dict[str, str] = field(
        default_factory=lambda: {
            "normalisation": "percentiles low/high -> -1/+1, clipped to +-clip, per image",
            "polarity": "both: trained on bright-field and HAADF, with random inversion",
            "resampling": "block mean by floor(min_working_pixel_size_nm / pixel_size_nm) when "
            ">= 2; probability interpolated back bilinearly",
            "support_flattening": "when flatten_sigma_px is set: after normalisation, image - "
            "(1 - flatten_keep) * gaussian(image, flatten_sigma_px), normalised again",
        }
    )

    def to_dict(self) -> dict[str, Any]:
        """Return the settings as a JSON-serialisable dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> PreprocessConfig:
        """Build settings from a dict, ignoring unknown keys.

        Parameters
        ----------
        values : dict
            As written by :meth:`to_dict`.

        Returns
        -------
        PreprocessConfig
        """
        known = {k: v for k, v in values.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def normalize_image(
    image: np.ndarray, low_percentile: float = 1.0, high_percentile: float = 99.0, clip: float = 3.0
) -> np.ndarray:
    """Scale an image robustly so that the given percentiles map to -1 and +1.

    Parameters
    ----------
    image : ndarray
        2-D image of any numeric dtype.
    low_percentile, high_percentile : float
        Percentiles (0–100) mapped to -1 and +1.
    clip : float
        Output values are clipped to ``[-clip, clip]``.

    Returns
    -------
    ndarray
        float32 image of the same shape.

    Raises
    ------
    PreprocessError
        If the image is not 2-D or contains no finite value.
    """
    image = np.asarray(image)
    if image.ndim != 2:
        raise PreprocessError(f"expected a 2-D image, got shape {image.shape}")
    data = image.astype(np.float32, copy=False)
    finite = np.isfinite(data)
    if not finite.all():
        if not finite.any():
            raise PreprocessError("the image contains no finite pixel value")
        data = np.where(finite, data, np.float32(np.median(data[finite])))
    # Percentiles of a subsample are as good as of the whole image and much cheaper at 4096².
    step = max(1, int(math.sqrt(data.size / 262_144)))
    low, high = np.percentile(data[::step, ::step], [low_percentile, high_percentile])
    half_range = (high - low) / 2.0
    if half_range <= 0:
        # Almost all pixels equal: fall back to the full range.
        low, high = float(data.min()), float(data.max())
        half_range = (high - low) / 2.0
    # Differences at float32 rounding level are not contrast; amplifying them would invent texture.
    if half_range <= 1e-5 * max(1.0, abs(float(low + high) / 2.0)):
        return np.zeros(data.shape, dtype=np.float32)
    out = (data - np.float32((low + high) / 2.0)) / np.float32(half_range)
    return np.clip(out, -clip, clip).astype(np.float32, copy=False)


def flatten_support(image: np.ndarray, sigma_px: float, keep: float = 0.3) -> np.ndarray:
    """Scale down intensity variations broader than a Gaussian of ``sigma_px``.

    Parameters
    ----------
    image : ndarray
        Normalised 2-D image (as from :func:`normalize_image`).
    sigma_px : float
        Standard deviation of the Gaussian that defines the smooth background, in pixels.
    keep : float
        Fraction of the background left: ``image - background + keep * background``.

    Returns
    -------
    ndarray
        float32 image of the same shape (not yet normalised again).
    """
    data = np.asarray(image, dtype=np.float32)
    background = ndimage.gaussian_filter(data, float(sigma_px), mode="reflect")
    return (data - (1.0 - np.float32(keep)) * background).astype(np.float32, copy=False)


def normalize_for_network(image: np.ndarray, config: PreprocessConfig) -> np.ndarray:
    """The network's view of an image already on its working grid: the one rule for training
    and inference.

    Percentile normalisation (:func:`normalize_image`), then, when the model's settings ask for
    it, support flattening (:func:`flatten_support`) and a second normalisation, so that the
    network sees the same value range either way.

    Parameters
    ----------
    image : ndarray
        2-D image on the working grid (after any block averaging).
    config : PreprocessConfig
        The model's preprocessing settings.

    Returns
    -------
    ndarray
        float32 network input (before any polarity inversion).
    """
    low, high, clip = config.low_percentile, config.high_percentile, config.clip
    normalised = normalize_image(image, low, high, clip)
    sigma = check_flattening(config.flatten_sigma_px, config.flatten_keep)
    if sigma is None:
        return normalised
    return normalize_image(flatten_support(normalised, sigma, config.flatten_keep), low, high, clip)


def apply_polarity(
    image: np.ndarray, model_polarity: str, image_polarity: str = "auto"
) -> np.ndarray:
    """Invert a normalised image when its polarity differs from the model's.

    Parameters
    ----------
    image : ndarray
        Normalised image (zero-centred, as from :func:`normalize_image`).
    model_polarity : {"both", "dark", "bright"}
        Polarity the model was trained on.
    image_polarity : {"auto", "dark", "bright"}
        Polarity of the particles in ``image``; "auto" leaves the image as it is.

    Returns
    -------
    ndarray
        The image, negated when it must be.

    Raises
    ------
    PreprocessError
        If a polarity name is unknown.
    """
    if model_polarity not in POLARITIES:
        raise PreprocessError(f"unknown model polarity {model_polarity!r}; expected {POLARITIES}")
    if image_polarity not in ("auto", "dark", "bright"):
        raise PreprocessError(
            f"unknown image polarity {image_polarity!r}; expected 'auto', 'dark' or 'bright'"
        )
    if model_polarity == "both" or image_polarity == "auto" or image_polarity == model_polarity:
        return image
    return -image


def downsample_factor(
    pixel_size_nm: float,
    config: PreprocessConfig,
    particle_diameter_nm: float | None = None,
    target_particle_px: float | None = None,
) -> int:
    """Integer factor by which an image is block-averaged before the network sees it.

    The factor keeps the working grid no finer than ``min_working_pixel_size_nm``.  With a
    declared particle diameter it is raised, where that is larger, to
    ``floor(particle_diameter_nm / pixel_size_nm / target_particle_px)``: particles several
    times wider than ``target_particle_px`` are then seen at between one and two times that width.
    It never upsamples (that is :func:`upsample_factor`'s).

    Parameters
    ----------
    pixel_size_nm : float
        Pixel size of the input image in nm.
    config : PreprocessConfig
        Holds ``min_working_pixel_size_nm`` and ``max_downsample_factor``.
    particle_diameter_nm : float, optional
        The typical particle diameter the user declares for the image; None: not declared.
    target_particle_px : float, optional
        Width on the working grid that a declared diameter is brought down to; required with
        ``particle_diameter_nm``.

    Returns
    -------
    int
        1 (no resampling) or more, at most ``config.max_downsample_factor``.

    Raises
    ------
    PreprocessError
        If the pixel size, the declared diameter or the target is not a positive finite number.
    """
    if not (np.isfinite(pixel_size_nm) and pixel_size_nm > 0):
        raise PreprocessError(f"pixel_size_nm must be a positive number, got {pixel_size_nm!r}")
    factor = int(math.floor(config.min_working_pixel_size_nm / pixel_size_nm + 1e-9))
    if particle_diameter_nm is not None:
        diameter = check_particle_diameter(particle_diameter_nm)
        if target_particle_px is None or not (
            math.isfinite(target_particle_px) and target_particle_px > 0
        ):
            raise PreprocessError(
                "target_particle_px must be a positive number of pixels, "
                f"got {target_particle_px!r}"
            )
        by_size = int(math.floor(diameter / pixel_size_nm / target_particle_px + 1e-9))
        factor = max(factor, by_size)
    return int(min(max(factor, 1), config.max_downsample_factor))


def upsample_factor(
    pixel_size_nm: float,
    config: PreprocessConfig,
    particle_diameter_nm: float | None,
    small_particle_px: float,
) -> int:
    """Integer factor by which an image is enlarged before the network sees it (1: not at all).

    Particles a few pixels across are outlined better on the image enlarged twice (bicubic),
    the network's probability then averaged back onto the image's grid; larger ones are not
    (model card, "A declared particle diameter"). So only a declared diameter narrower than
    ``small_particle_px`` pixels of the working grid (:func:`downsample_factor`'s grid without a
    declared diameter) gives 2; no diameter, or a larger one, gives 1.

    Raises
    ------
    PreprocessError
        If the pixel size, the declared diameter or ``small_particle_px`` is not a positive
        finite number.
    """
    factor = downsample_factor(pixel_size_nm, config)
    diameter = check_particle_diameter(particle_diameter_nm)
    if not (math.isfinite(small_particle_px) and small_particle_px > 0):
        raise PreprocessError(
            f"small_particle_px must be a positive number of pixels, got {small_particle_px!r}"
        )
    if diameter is None:
        return 1
    return 2 if diameter / (pixel_size_nm * factor) < small_particle_px - 1e-9 else 1


def enlarge(image: np.ndarray, factor: int) -> np.ndarray:
    """Enlarge an image ``factor`` times by cubic-spline interpolation (1: unchanged).

    Each pixel becomes a ``factor``×``factor`` block of the result, so that :func:`block_mean`
    by the same factor brings a map of the result back onto the image's grid.
    """
    if int(factor) != factor or factor < 1:
        raise PreprocessError(f"an image is enlarged a whole number of times, not {factor!r}")
    image = np.asarray(image, dtype=np.float32)
    if factor == 1:
        return image
    return ndimage.zoom(image, factor, order=3, mode="nearest", grid_mode=True).astype(
        np.float32, copy=False
    )


def check_particle_diameter(particle_diameter_nm: float | None) -> float | None:
    """A declared typical particle diameter in nm, checked (None: not declared).

    Raises
    ------
    PreprocessError
        If it is given but not a positive finite number.
    """
    if particle_diameter_nm is None:
        return None
    try:
        diameter = float(particle_diameter_nm)
    except (TypeError, ValueError):
        diameter = float("nan")
    if not (math.isfinite(diameter) and diameter > 0):
        raise PreprocessError(
            f"particle_diameter_nm must be a positive number of nm, got {particle_diameter_nm!r}"
        )
    return diameter


def block_mean(image: np.ndarray, factor: int) -> np.ndarray:
    """Downsample by averaging ``factor``×``factor`` blocks (edge-padded to a multiple).

    Parameters
    ----------
    image : ndarray
        2-D image.
    factor : int
        Block size; 1 returns the image unchanged.

    Returns
    -------
    ndarray
        float32 image of shape ``ceil(shape / factor)``.
    """
    if factor == 1:
        return np.asarray(image, dtype=np.float32)
    height, width = image.shape
    pad_h, pad_w = (-height) % factor, (-width) % factor
    padded = np.pad(np.asarray(image, dtype=np.float32), ((0, pad_h), (0, pad_w)), mode="edge")
    blocks = padded.reshape(padded.shape[0] // factor, factor, padded.shape[1] // factor, factor)
    return blocks.mean(axis=(1, 3), dtype=np.float32)


def upsample_to(probability: np.ndarray, shape: tuple[int, int], factor: int) -> np.ndarray:
    """Interpolate a map made by :func:`block_mean` back onto the original pixel grid.

    Parameters
    ----------
    probability : ndarray
        2-D map on the downsampled grid.
    shape : tuple of int
        Shape of the original image.
    factor : int
        The factor used for downsampling.

    Returns
    -------
    ndarray
        float32 map of ``shape``.
    """
    if factor == 1:
        return probability.astype(np.float32, copy=False)
    # Block centres sit at (k + 0.5) * factor - 0.5 in original pixel coordinates.
    rows = (np.arange(shape[0], dtype=np.float64) + 0.5) / factor - 0.5
    cols = (np.arange(shape[1], dtype=np.float64) + 0.5) / factor - 0.5
    out = np.empty(shape, dtype=np.float32)
    # Row by row bands keep the coordinate arrays small for 4096² images.
    band = 256
    for r0 in range(0, shape[0], band):
        rr, cc = np.meshgrid(rows[r0 : r0 + band], cols, indexing="ij")
        out[r0 : r0 + band] = ndimage.map_coordinates(
            probability.astype(np.float32, copy=False), [rr, cc], order=1, mode="nearest"
        )
    return out


def prepare_image(
    image: np.ndarray,
    pixel_size_nm: float,
    config: PreprocessConfig,
    image_polarity: str = "auto",
    particle_diameter_nm: float | None = None,
    target_particle_px: float | None = None,
    enlarge_by: int = 1,
) -> tuple[np.ndarray, int]:
    """Resample, normalise and orient an image for the network.

    Parameters
    ----------
    image : ndarray
        2-D micrograph.
    pixel_size_nm : float
        Its pixel size in nm.
    config : PreprocessConfig
        The model's preprocessing settings.
    image_polarity : {"auto", "dark", "bright"}
        Particle polarity of ``image`` if known.
    particle_diameter_nm, target_particle_px : float, optional
        A declared typical particle diameter and the working-grid width it is brought down to
        (:func:`downsample_factor`).
    enlarge_by : int
        Enlarge the (block-averaged) image this many times before normalising it
        (:func:`enlarge`, :func:`upsample_factor`); the network's map of it is brought back with
        :func:`block_mean` by the same factor, before :func:`upsample_to`.

    Returns
    -------
    prepared : ndarray
        float32 network input.
    factor : int
        Downsampling factor used (1 for none); pass it to :func:`upsample_to`.

    Raises
    ------
    PreprocessError
        If the image, pixel size, polarity or declared diameter cannot be used.
    """
    image = np.asarray(image)
    if image.ndim != 2:
        raise PreprocessError(f"expected a 2-D image, got shape {image.shape}")
    factor = downsample_factor(pixel_size_nm, config, particle_diameter_nm, target_particle_px)
    small = enlarge(block_mean(image, factor), enlarge_by)
    prepared = apply_polarity(normalize_for_network(small, config), config.polarity, image_polarity)
    return prepared, factor


def downsample_mask(mask: np.ndarray, factor: int) -> np.ndarray:
    """Downsample a label mask consistently with :func:`block_mean` (majority of each block).

    Parameters
    ----------
    mask : ndarray
        2-D boolean mask.
    factor : int
        Block size.

    Returns
    -------
    ndarray
        bool mask of shape ``ceil(shape / factor)``.
    """
    if factor == 1:
        return np.asarray(mask, dtype=bool)
    return block_mean(mask.astype(np.float32), factor) >= 0.5
