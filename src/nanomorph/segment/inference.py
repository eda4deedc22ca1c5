"""Tiled, batched network inference for images of any size.

The image is reflect-padded, cut into overlapping square tiles, and the tiles' particle
probabilities are blended with a separable Hann window, so seams between tiles vanish and memory
stays bounded by one tile batch plus two image-sized accumulators (about 200 MB for 4096²).
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Iterator
from contextlib import nullcontext
from typing import Any

import numpy as np
import torch

from nanomorph.segment.preprocess import (
    PreprocessConfig,
    block_mean,
    check_flattening,
    check_particle_diameter,
    downsample_factor,
    prepare_image,
    upsample_factor,
    upsample_to,
)

logger = logging.getLogger(__name__)

# Every encoder stage halves the size; DeepLabV3+ needs inputs divisible by 16, U-Net by 32.
SIZE_MULTIPLE = 32

# Width on the working grid that a declared particle diameter is brought down to, and the IoU
# at which the image's own grid takes over the outline of a particle the coarse pass found
# (config.json -> inference -> target_particle_px / scale_agreement override them): chosen on
# simulated validation scenes (model card, "A declared particle diameter").
TARGET_PARTICLE_PX = 24.0
SCALE_AGREEMENT = 0.85
# Below this declared width on the working grid the network sees the image enlarged twice
# (config.json -> inference -> small_particle_px overrides it): chosen on the same validation
# scenes (model card, "A declared particle diameter").
SMALL_PARTICLE_PX = 10.0


class InferenceError(ValueError):
    """An inference setting or input that cannot be used."""


# 8-connectivity, as the particles of nanomorph.morphology.
_REGION_STRUCTURE = np.ones((3, 3), dtype=bool)


def keep_confident_regions(
    probability: np.ndarray, threshold: float, min_peak_probability: float | None = None
) -> np.ndarray:
    """Particle mask: pixels at or above `threshold`, in regions the network is sure of somewhere.

    The outline stays where `threshold` puts it; a connected region whose highest probability
    stays below `min_peak_probability` is dropped whole (hysteresis thresholding, as Canny's
    edge linking). The network's false regions (carbon grain, support texture, residue) are
    mostly such lukewarm ones, while a real particle is nearly always certain in its centre.

    Parameters
    ----------
    probability : numpy.ndarray
        Per-pixel particle probability.
    threshold : float
        Probability at or above which a pixel belongs to a particle region.
    min_peak_probability : float, optional
        Highest probability a region must reach to be kept; None, or a value not above
        `threshold`, keeps every region.

    Returns
    -------
    numpy.ndarray
        bool mask of the shape of `probability`.
    """
    from scipy import ndimage as ndi

    probability = np.asarray(probability)
    mask = probability >= threshold
    if min_peak_probability is None or min_peak_probability <= threshold:
        return mask
    labels, n = ndi.label(mask, structure=_REGION_STRUCTURE)
    if n == 0:
        return mask
    # A region is kept when any of its pixels reaches the peak level; counting those pixels
    # per label is exact and, on images with thousands of regions, several times faster than
    # each region's maximum.
    keep = np.bincount(labels[probability >= min_peak_probability], minlength=n + 1) > 0
    keep[0] = False
    return keep[labels]


def combine_scales(
    fine: np.ndarray,
    coarse: np.ndarray,
    factor: int,
    threshold: float,
    min_peak_probability: float | None = None,
    agreement: float = SCALE_AGREEMENT,
) -> np.ndarray:
    """One probability from two passes: the coarse one says where particles are, the fine one
    draws their outlines wherever it sees the same particle.

    The coarse pass (the image block-averaged so that large particles look as small as the
    network finds them best) misses fewer large particles and invents fewer specks, but its
    outlines are only as good as its grid.  So the result is the coarse probability, except
    around each confident coarse region (grown by `factor` pixels) whose fine-pass mask matches
    it with an IoU of at least `agreement`: there the fine probability, and its outline, is used.
    Fine-pass regions away from every confident coarse region are dropped with the coarse
    pass's background.

    Parameters
    ----------
    fine, coarse : numpy.ndarray
        Particle probabilities of the same image on its own working grid and on the coarser
        one, both interpolated back to the image's pixels.
    factor : int
        The coarse grid's block size in image pixels: how far around a coarse region the fine
        pass may draw its outline.
    threshold, min_peak_probability : float
        The model's levels (:func:`keep_confident_regions`), which decide the coarse regions
        and both masks compared.
    agreement : float
        Lowest IoU of the two passes' masks of a region for the fine outline to be used.

    Returns
    -------
    numpy.ndarray
        float32 probability of the shape of `fine`.
    """
    from scipy import ndimage as ndi

    if np.shape(fine) != np.shape(coarse):
        raise InferenceError(f"fine {np.shape(fine)} and coarse {np.shape(coarse)} maps differ")
    combined = np.array(coarse, dtype=np.float32)
    regions, n = ndi.label(
        keep_confident_regions(coarse, threshold, min_peak_probability),
        structure=_REGION_STRUCTURE,
    )
    if n == 0:
        return combined
    fine_mask = np.asarray(fine) >= threshold
    reach = 2 * int(factor) + 1
    # Each region's neighbourhood; where two meet, the larger label wins, which only decides
    # whose comparison a pixel of a narrow gap belongs to.
    grown = ndi.grey_dilation(regions, size=(reach, reach))
    # Per region, counted at once over the whole image instead of region by region (thousands
    # of regions on a large image): the fine mask within its neighbourhood, the region itself,
    # and both.
    seen = np.bincount(grown[fine_mask].ravel(), minlength=n + 1)
    region_size = np.bincount(regions.ravel(), minlength=n + 1)
    both = np.bincount(regions[fine_mask & (grown == regions)].ravel(), minlength=n + 1)
    union = seen + region_size - both
    iou = np.divide(both, union, out=np.zeros(n + 1), where=union > 0)
    agrees = iou >= agreement
    agrees[0] = False
    use_fine = agrees[grown]
    combined[use_fine] = np.asarray(fine, dtype=np.float32)[use_fine]
    return combined


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Choose the torch device: "auto" picks CUDA when available, else the CPU.

    Parameters
    ----------
    device : str or torch.device
        "auto", "cpu", "cuda" or "cuda:N".

    Returns
    -------
    torch.device

    Raises
    ------
    InferenceError
        If CUDA is requested but not available.
    """
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise InferenceError(f"device {device!r} was requested but no CUDA device is available")
    if device not in ("cpu",) and not str(device).startswith("cuda"):
        raise InferenceError(f"unknown device {device!r}; expected 'auto', 'cpu' or 'cuda'")
    return torch.device(device)


PRECISIONS = ("auto", "bf16", "fp32")


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bfloat16 convolutions in hardware.

    On a CPU without AVX-512 (most laptops, and AVX2-only servers) oneDNN emulates bfloat16, and
    autocast makes inference about 6x and a training step about 14x slower than float32
    (measured on a 2-core AMD EPYC with AVX2 only; on one with AVX-512 bf16 it halves the time).
    """
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    if device.type != "cpu":
        return False
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a torch build without the oneDNN query
        return False


def resolve_precision(precision: str, device: torch.device) -> str:
    """The precision actually used: "auto" is bf16 where the hardware has it, else fp32.

    Parameters
    ----------
    precision : {"auto", "bf16", "fp32"}
    device : torch.device

    Returns
    -------
    {"bf16", "fp32"}

    Raises
    ------
    InferenceError
        If ``precision`` is not one of the three.
    """
    if precision not in PRECISIONS:
        raise InferenceError(f"unknown precision {precision!r}; expected 'auto', 'bf16' or 'fp32'")
    if precision == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    return precision


def autocast_context(device: torch.device, precision: str) -> Any:
    """Autocast context for ``precision`` ("auto", "bf16" or "fp32") on ``device``.

    Parameters
    ----------
    device : torch.device
    precision : {"auto", "bf16", "fp32"}

    Returns
    -------
    context manager
    """
    if resolve_precision(precision, device) == "fp32":
        return nullcontext()
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def hann_window_2d(height: int, width: int | None = None, floor: float = 1e-3) -> np.ndarray:
    """Separable Hann blending weights for a tile, strictly positive.

    Parameters
    ----------
    height : int
        Tile height in pixels.
    width : int, optional
        Tile width in pixels (default: ``height``).
    floor : float
        Minimum weight, so that a pixel covered only by a tile edge still gets that tile's value.

    Returns
    -------
    ndarray
        float32 array of shape (height, width).
    """

    def hann(n: int) -> np.ndarray:
        # Sampled at pixel centres so that no weight is exactly zero.
        x = (np.arange(n, dtype=np.float64) + 0.5) / n
        return np.sin(np.pi * x) ** 2

    width = height if width is None else width
    return np.maximum(np.outer(hann(height), hann(width)), floor).astype(np.float32)


def tile_origins(length: int, tile_size: int, overlap: int) -> list[int]:
    """Start positions of tiles covering ``length`` pixels with at least ``overlap`` overlap.

    Parameters
    ----------
    length : int
        Extent to cover (already at least ``tile_size``).
    tile_size, overlap : int
        Tile side and minimum overlap in pixels.

    Returns
    -------
    list of int
        Sorted origins; the last tile ends exactly at ``length``.
    """
    if length <= tile_size:
        return [0]
    stride = tile_size - overlap
    n = math.ceil((length - tile_size) / stride) + 1
    # Spread the tiles evenly instead of leaving a thin last strip.
    return [round(i * (length - tile_size) / (n - 1)) for i in range(n)]


@dataclasses.dataclass(frozen=True)
class TileLayout:
    """How :func:`predict_tiled` covers an image: its padding and the tiles the network sees."""

    #: Half the overlap, reflected around the image so that border pixels get context.
    margin: int
    #: Tile side in pixels (a multiple of 32; smaller than the setting for small images).
    tile_height: int
    tile_width: int
    #: The padded image the tiles cover.
    padded_height: int
    padded_width: int
    #: Top-left corner of every tile, row by row.
    origins: tuple[tuple[int, int], ...]

    @property
    def tile_pixels(self) -> int:
        """Pixels of all tiles together: what the network computes on."""
        return len(self.origins) * self.tile_height * self.tile_width


def check_tile_size(tile_size: int, overlap: int) -> int:
    """``tile_size`` if tiles of that side can overlap by ``overlap`` pixels.

    Raises
    ------
    InferenceError
        If ``tile_size`` is not a positive multiple of 32 (the network's stride) or ``overlap``
        not in [0, tile_size).
    """
    if tile_size % SIZE_MULTIPLE or tile_size <= 0:
        raise InferenceError(f"tile_size must be a positive multiple of 32, got {tile_size}")
    if overlap < 0:
        raise InferenceError(f"overlap must be at least 0, got {overlap}")
    if overlap >= tile_size:
        raise InferenceError(
            f"tile_size must be larger than the tiles' overlap ({overlap} px), got {tile_size}"
        )
    return tile_size


def tile_layout(height: int, width: int, tile_size: int = 512, overlap: int = 64) -> TileLayout:
    """The tiles :func:`predict_tiled` cuts a ``height`` × ``width`` image into.

    Raises
    ------
    InferenceError
        If ``tile_size`` is not a positive multiple of 32 or ``overlap`` not in [0, tile_size).
    """
    check_tile_size(tile_size, overlap)
    margin = overlap // 2
    # Small images: one tile just big enough (multiple of 32) instead of padding to tile_size.
    need_h = max(height + 2 * margin, 1)
    need_w = max(width + 2 * margin, 1)
    tile_h = min(tile_size, math.ceil(need_h / SIZE_MULTIPLE) * SIZE_MULTIPLE)
    tile_w = min(tile_size, math.ceil(need_w / SIZE_MULTIPLE) * SIZE_MULTIPLE)
    padded_h, padded_w = max(need_h, tile_h), max(need_w, tile_w)
    origins = tuple(
        (r, c)
        for r in tile_origins(padded_h, tile_h, overlap)
        for c in tile_origins(padded_w, tile_w, overlap)
    )
    return TileLayout(margin, tile_h, tile_w, padded_h, padded_w, origins)


def _batches(items: list[tuple[int, int]], size: int) -> Iterator[list[tuple[int, int]]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def predict_tiled(
    model: torch.nn.Module,
    image: np.ndarray,
    tile_size: int = 512,
    overlap: int = 64,
    batch_size: int = 4,
    device: str | torch.device = "cpu",
    precision: str = "auto",
    channels_last: bool = True,
) -> np.ndarray:
    """Particle probability of a prepared (normalised) image by overlapping tiles.

    Parameters
    ----------
    model : torch.nn.Module
        Network mapping (N, 1, H, W) to (N, 1, H, W) particle logits; already on ``device``.
    image : ndarray
        2-D float32 image prepared by :func:`nanomorph.segment.preprocess.prepare_image`.
    tile_size : int
        Tile side in pixels (a multiple of 32); smaller images are padded up to it.
    overlap : int
        Minimum overlap between neighbouring tiles in pixels; the image border is also padded by
        half of it so that border pixels get context.
    batch_size : int
        Tiles per forward pass.
    device : str or torch.device
        Where the model lives.
    precision : {"auto", "bf16", "fp32"}
        bf16 autocast halves the time where the hardware computes bfloat16 natively and changes
        probabilities by ~1e-3; "auto" uses it only there (:func:`resolve_precision`).
    channels_last : bool
        Use the channels-last memory format (faster convolutions on CPU).

    Returns
    -------
    ndarray
        float32 probabilities in [0, 1], same shape as ``image``.

    Raises
    ------
    InferenceError
        If the image is not 2-D or the tiling settings are inconsistent.
    """
    if image.ndim != 2:
        raise InferenceError(f"expected a 2-D image, got shape {image.shape}")
    height, width = image.shape
    layout = tile_layout(height, width, tile_size, overlap)
    device = resolve_device(device)
    margin, tile_h, tile_w = layout.margin, layout.tile_height, layout.tile_width
    padded_h, padded_w = layout.padded_height, layout.padded_width
    pad = ((margin, padded_h - height - margin), (margin, padded_w - width - margin))
    # numpy's "reflect" repeats the reflection when the pad exceeds the image (tiny inputs).
    padded = np.pad(image.astype(np.float32, copy=False), pad, mode="reflect")

    window = hann_window_2d(tile_h, tile_w)
    accumulated = np.zeros((padded_h, padded_w), dtype=np.float32)
    weights = np.zeros((padded_h, padded_w), dtype=np.float32)
    origins = list(layout.origins)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model.eval()
    with torch.inference_mode(), autocast_context(device, precision):
        for batch in _batches(origins, batch_size):
            tiles = np.stack([padded[r : r + tile_h, c : c + tile_w] for r, c in batch])
            x = torch.from_numpy(tiles[:, None]).to(device).contiguous(memory_format=memory_format)
            prob = torch.sigmoid(model(x).float())[:, 0].cpu().numpy()
            for (r, c), p in zip(batch, prob, strict=True):
                accumulated[r : r + tile_h, c : c + tile_w] += p * window
                weights[r : r + tile_h, c : c + tile_w] += window
    out = accumulated[margin : margin + height, margin : margin + width]
    out /= weights[margin : margin + height, margin : margin + width]
    return np.clip(out, 0.0, 1.0)


#: Views averaged by test-time augmentation: the image and its three flips. The network was
#: trained with flips, so each view is an equally valid reading of the micrograph; averaging their
#: probabilities (each flipped back) smooths the noisy outline decisions that cost most of the IoU.
FLIP_VIEWS = ((False, False), (True, False), (False, True), (True, True))


def predict_flips(model: torch.nn.Module, image: np.ndarray, **tiling: Any) -> np.ndarray:
    """Mean particle probability over the image and its vertical, horizontal and double flips.

    Parameters
    ----------
    model : torch.nn.Module
        As for :func:`predict_tiled`.
    image : ndarray
        2-D float32 prepared image.
    **tiling
        Passed to :func:`predict_tiled` (tile_size, overlap, batch_size, device, precision,
        channels_last).

    Returns
    -------
    ndarray
        float32 probabilities in [0, 1], same shape as ``image``; four times the work of one
        :func:`predict_tiled`.
    """
    total = np.zeros(np.shape(image), dtype=np.float32)
    for flip_rows, flip_cols in FLIP_VIEWS:
        view = image[::-1] if flip_rows else image
        view = view[:, ::-1] if flip_cols else view
        p = predict_tiled(model, np.ascontiguousarray(view), **tiling)
        p = p[::-1] if flip_rows else p
        total += p[:, ::-1] if flip_cols else p
    return total / len(FLIP_VIEWS)


@dataclasses.dataclass(frozen=True)
class InferenceSettings:
    """A model folder's ``config.json`` → ``inference``, with defaults for keys a model lacks."""

    tile_size: int = 512
    overlap: int = 64
    batch_size: int = 4
    target_particle_px: float = TARGET_PARTICLE_PX
    scale_agreement: float = SCALE_AGREEMENT
    small_particle_px: float = SMALL_PARTICLE_PX

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> InferenceSettings:
        """Read the settings from a model's whole ``config.json``."""
        values = config.get("inference", {})
        defaults = cls()
        return cls(
            tile_size=int(values.get("tile_size", defaults.tile_size)),
            overlap=int(values.get("overlap", defaults.overlap)),
            batch_size=int(values.get("batch_size", defaults.batch_size)),
            target_particle_px=float(values.get("target_particle_px", defaults.target_particle_px)),
            scale_agreement=float(values.get("scale_agreement", defaults.scale_agreement)),
            small_particle_px=float(values.get("small_particle_px", defaults.small_particle_px)),
        )


def scale_passes(
    pixel_size_nm: float,
    preprocess: PreprocessConfig,
    particle_diameter_nm: float | None,
    target_particle_px: float,
) -> tuple[float | None, ...]:
    """The diameter each network pass of :meth:`NetworkSegmenter.predict_proba` is given.

    One pass, given the declared diameter (or None), where that diameter does not ask for a
    grid coarser than the image's own working grid; two where it does: the image's own grid
    (None) and the coarser one (the diameter), combined by :func:`combine_scales`.
    """
    fine = downsample_factor(pixel_size_nm, preprocess)
    coarse = downsample_factor(pixel_size_nm, preprocess, particle_diameter_nm, target_particle_px)
    return (particle_diameter_nm,) if coarse == fine else (None, particle_diameter_nm)


def network_megapixels(
    shape: tuple[int, int],
    pixel_size_nm: float,
    config: dict[str, Any],
    particle_diameter_nm: float | None = None,
    test_time_flips: bool = False,
    tile_size: int | None = None,
) -> float:
    """Megapixels of tiles the network computes on to segment one image: its inference cost.

    What :meth:`NetworkSegmenter.predict_proba` does with a model of this ``config.json``,
    counted without running it: every pass a declared diameter asks for, each on its grid
    (block-averaged, or enlarged for small particles) and cut into tiles
    (:func:`tile_layout`), four times with test-time flips. The time of a segmentation is close
    to proportional to it (the README's benchmarks), so the workflow sizes its jobs' time
    limits with it.

    Parameters
    ----------
    shape : (int, int)
        The micrograph's height and width in pixels.
    pixel_size_nm : float
        Its pixel size in nm.
    config : dict
        The model folder's ``config.json``.
    particle_diameter_nm, test_time_flips
        As for :class:`NetworkSegmenter`.
    tile_size : int, optional
        Overrides the model's tile size, as the workflow's ``tile_size`` does.

    Raises
    ------
    InferenceError
        If the shape, pixel size, diameter or tiling cannot be used.
    """
    height, width = (int(n) for n in shape)
    if height < 1 or width < 1:
        raise InferenceError(f"an image has at least one pixel each way, not shape {shape}")
    preprocess = PreprocessConfig.from_dict(config.get("preprocess", {}))
    settings = InferenceSettings.from_config(config)
    tile = settings.tile_size if tile_size is None else int(tile_size)
    try:
        diameter = check_particle_diameter(particle_diameter_nm)
        pixels = 0
        for passed in scale_passes(
            pixel_size_nm, preprocess, diameter, settings.target_particle_px
        ):
            factor = downsample_factor(
                pixel_size_nm, preprocess, passed, settings.target_particle_px
            )
            enlarge_by = upsample_factor(
                pixel_size_nm, preprocess, passed, settings.small_particle_px
            )
            grid = [math.ceil(n / factor) * enlarge_by for n in (height, width)]
            pixels += tile_layout(*grid, tile, settings.overlap).tile_pixels
    except ValueError as error:  # PreprocessError is one
        raise InferenceError(str(error)) from None
    views = len(FLIP_VIEWS) if test_time_flips else 1
    return views * pixels / 1e6


class NetworkSegmenter:
    """A trained network with its preprocessing: micrograph in, particle probability or mask out.

    Build it with :func:`nanomorph.segment.load_segmenter`.  Calling the object is the same as
    :meth:`segment`, so it can be used wherever a ``(image, pixel_size_nm) -> mask`` callable is
    expected (like :func:`nanomorph.segment.threshold.segment_threshold`).

    Parameters
    ----------
    model : torch.nn.Module
        The network (moved to ``device`` here).
    config : dict
        The model folder's ``config.json``.
    device : str or torch.device
        "auto", "cpu" or "cuda".
    precision : {"auto", "bf16", "fp32"}
        Autocast precision used for inference; "auto" is bf16 only where the hardware has it.
    test_time_flips : bool
        Average the probabilities of the image and its three flips (:func:`predict_flips`):
        four times the inference time for a small, consistent gain (see the model card).
    min_peak_probability : float, optional
        Drop particle regions whose highest probability stays below this
        (:func:`keep_confident_regions`); None uses the model's ``config.json`` value (chosen
        on the validation split), and a value not above the threshold keeps every region.
    flatten_support_px : float, optional
        Override the model's support flattening (:func:`nanomorph.segment.preprocess.
        flatten_support`): the Gaussian width in working-grid pixels, 0 for off; None uses the
        model's ``config.json`` value.  A width the model was not trained with is a deliberate
        mismatch between training and inference (see the model card).
    particle_diameter_nm : float, optional
        The typical particle diameter of the images, as the user knows it (None: not declared).
        Where the particles are at least twice ``target_particle_px`` (the model's
        ``config.json`` → ``inference``, else `TARGET_PARTICLE_PX`) across on the working grid,
        the network also sees the image block-averaged so that they are about that size
        (:func:`nanomorph.segment.preprocess.downsample_factor`), where it finds large particles
        best; that pass decides where the particles are and the image's own grid draws the
        outlines where it agrees (:func:`combine_scales`).  Where they are narrower than
        ``small_particle_px`` (``config.json`` → ``inference``, else `SMALL_PARTICLE_PX`), the
        network sees the image enlarged twice instead of as it is
        (:func:`nanomorph.segment.preprocess.upsample_factor`), which outlines particles a few
        pixels across better.  A call to :meth:`segment` or :meth:`predict_proba` may declare
        another diameter.
    tile_size : int, optional
        Override the model's tile side in pixels (a multiple of 32, larger than the model's
        overlap); None uses the model's ``config.json`` value.  The network's context and the
        number of tiles each pixel is blended from change with it, and so do the masks (the
        model card's "Tile size at inference").
    """

    def __init__(
        self,
        model: torch.nn.Module,
        config: dict[str, Any],
        device: str | torch.device = "auto",
        precision: str = "auto",
        test_time_flips: bool = False,
        min_peak_probability: float | None = None,
        flatten_support_px: float | None = None,
        particle_diameter_nm: float | None = None,
        tile_size: int | None = None,
    ) -> None:
        self.device = resolve_device(device)
        self.config = config
        preprocess = PreprocessConfig.from_dict(config.get("preprocess", {}))
        self.trained_flatten_support_px = check_flattening(
            preprocess.flatten_sigma_px, preprocess.flatten_keep
        )
        if flatten_support_px is not None:
            sigma = check_flattening(flatten_support_px, preprocess.flatten_keep)
            preprocess = dataclasses.replace(preprocess, flatten_sigma_px=sigma)
        self.preprocess = preprocess
        inference = InferenceSettings.from_config(config)
        self.overlap = inference.overlap
        self.tile_size = check_tile_size(
            inference.tile_size if tile_size is None else int(tile_size), self.overlap
        )
        self.batch_size = inference.batch_size
        self.target_particle_px = inference.target_particle_px
        self.scale_agreement = inference.scale_agreement
        self.small_particle_px = inference.small_particle_px
        try:
            self.particle_diameter_nm = check_particle_diameter(particle_diameter_nm)
        except ValueError as exc:
            raise InferenceError(str(exc)) from None
        self.threshold = float(config.get("threshold", 0.5))
        if min_peak_probability is None:
            min_peak_probability = config.get("min_peak_probability")
        if min_peak_probability is not None:
            min_peak_probability = float(min_peak_probability)
            if not 0.0 <= min_peak_probability <= 1.0:
                raise InferenceError(
                    f"min_peak_probability must be between 0 and 1, got {min_peak_probability}"
                )
            if min_peak_probability <= self.threshold:
                min_peak_probability = None
        self.min_peak_probability = min_peak_probability
        self.precision = resolve_precision(precision, self.device)
        self.test_time_flips = bool(test_time_flips)
        self.channels_last = self.device.type == "cpu"
        memory_format = torch.channels_last if self.channels_last else torch.contiguous_format
        self.model = model.to(self.device).to(memory_format=memory_format).eval()

    @property
    def name(self) -> str:
        """Model name from its config."""
        return str(self.config.get("name", "unnamed"))

    def describe(self) -> dict[str, Any]:
        """What metadata.json records about the segmentation: enough to reproduce it."""
        return {
            "model": self.name,
            "model_folder": self.config.get("folder"),
            "weights_sha256": self.config.get("weights_sha256"),
            "architecture": self.config.get("architecture"),
            "encoder": self.config.get("encoder"),
            "trained_with_nanomorph": self.config.get("nanomorph_version"),
            "device": str(self.device),
            "precision": self.precision,
            "tile_size": self.tile_size,
            "overlap": self.overlap,
            "threshold": self.threshold,
            "min_peak_probability": self.min_peak_probability,
            "flatten_support_px": self.preprocess.flatten_sigma_px,
            "flatten_support_keep": self.preprocess.flatten_keep,
            "trained_with_flatten_support_px": self.trained_flatten_support_px,
            "test_time_flips": self.test_time_flips,
            "particle_diameter_nm": self.particle_diameter_nm,
            "target_particle_px": self.target_particle_px,
            "scale_agreement": self.scale_agreement,
            "small_particle_px": self.small_particle_px,
        }

    def network_megapixels(
        self,
        shape: tuple[int, int],
        pixel_size_nm: float,
        particle_diameter_nm: float | None = None,
    ) -> float:
        """Megapixels of tiles the network computes on for an image of this shape and pixel size.

        :func:`network_megapixels` with this segmenter's settings (its tile size, test-time
        flips, and its declared diameter where the call declares none).
        """
        if particle_diameter_nm is None:
            particle_diameter_nm = self.particle_diameter_nm
        config = {**self.config, "preprocess": self.preprocess.to_dict()}
        return network_megapixels(
            shape,
            pixel_size_nm,
            config,
            particle_diameter_nm,
            test_time_flips=self.test_time_flips,
            tile_size=self.tile_size,
        )

    def predict_proba(
        self,
        image: np.ndarray,
        pixel_size_nm: float,
        polarity: str = "auto",
        particle_diameter_nm: float | None = None,
    ) -> np.ndarray:
        """Per-pixel particle probability.

        Parameters
        ----------
        image : ndarray
            2-D micrograph (any numeric dtype).
        pixel_size_nm : float
            Pixel size in nm.
        polarity : {"auto", "dark", "bright"}
            Particle polarity if known; only used by models trained on one polarity.
        particle_diameter_nm : float, optional
            Typical particle diameter of this image; None uses the segmenter's own
            (:attr:`particle_diameter_nm`, which may be None: not declared).

        Returns
        -------
        ndarray
            float32 in [0, 1], same shape as ``image``.

        Raises
        ------
        ValueError
            If the image is not 2-D, or the pixel size or a declared diameter is not positive.
        """
        if particle_diameter_nm is None:
            particle_diameter_nm = self.particle_diameter_nm
        passes = scale_passes(
            pixel_size_nm, self.preprocess, particle_diameter_nm, self.target_particle_px
        )
        if len(passes) == 1:
            # One pass: on the image's own working grid, enlarged where the declared particles
            # are only a few pixels across (predict_on_grid).
            return self.predict_on_grid(image, pixel_size_nm, polarity, particle_diameter_nm)
        fine = self.predict_on_grid(image, pixel_size_nm, polarity, None)
        coarse = self.predict_on_grid(image, pixel_size_nm, polarity, particle_diameter_nm)
        return combine_scales(
            fine,
            coarse,
            downsample_factor(
                pixel_size_nm, self.preprocess, particle_diameter_nm, self.target_particle_px
            ),
            self.threshold,
            self.min_peak_probability,
            self.scale_agreement,
        )

    def predict_on_grid(
        self,
        image: np.ndarray,
        pixel_size_nm: float,
        polarity: str,
        particle_diameter_nm: float | None,
    ) -> np.ndarray:
        """One pass of the network on the working grid a declared diameter asks for.

        That grid is coarser for large declared particles, twice as fine (the image enlarged)
        for very small ones, and the image's own working grid otherwise or when none is
        declared. :meth:`predict_proba` combines a coarser pass with the pass on the image's own
        grid (``particle_diameter_nm=None``); here each is on its own, for measuring them.

        Returns
        -------
        ndarray
            float32 in [0, 1], interpolated back to the shape of ``image``.
        """
        enlarge_by = upsample_factor(
            pixel_size_nm, self.preprocess, particle_diameter_nm, self.small_particle_px
        )
        prepared, factor = prepare_image(
            image,
            pixel_size_nm,
            self.preprocess,
            polarity,
            particle_diameter_nm=particle_diameter_nm,
            target_particle_px=self.target_particle_px,
            enlarge_by=enlarge_by,
        )
        predict = predict_flips if self.test_time_flips else predict_tiled
        probability = predict(
            self.model,
            prepared,
            tile_size=self.tile_size,
            overlap=self.overlap,
            batch_size=self.batch_size,
            device=self.device,
            precision=self.precision,
            channels_last=self.channels_last,
        )
        # enlarge() makes each working-grid pixel a block, so this is the working grid again.
        probability = block_mean(probability, enlarge_by)
        return upsample_to(probability, np.shape(image), factor)

    def segment(
        self,
        image: np.ndarray,
        pixel_size_nm: float,
        polarity: str = "auto",
        particle_diameter_nm: float | None = None,
    ) -> np.ndarray:
        """Particle mask: probability at or above the model's threshold, in confident regions.

        Regions whose highest probability stays below :attr:`min_peak_probability` are dropped
        (:func:`keep_confident_regions`).

        Parameters
        ----------
        image : ndarray
            2-D micrograph.
        pixel_size_nm : float
            Pixel size in nm.
        polarity : {"auto", "dark", "bright"}
            As for :meth:`predict_proba`.
        particle_diameter_nm : float, optional
            As for :meth:`predict_proba`.

        Returns
        -------
        ndarray
            bool mask, same shape as ``image``.
        """
        return keep_confident_regions(
            self.predict_proba(image, pixel_size_nm, polarity, particle_diameter_nm),
            self.threshold,
            self.min_peak_probability,
        )

    __call__ = segment

    def __repr__(self) -> str:
        return f"NetworkSegmenter(name={self.name!r}, device={str(self.device)!r})"
