"""Training the segmentation network on simulated micrographs.

The image pool is generated once (``out_dir/cache/``, one ``.npz`` per image seed) and split
60/20/20 into training, validation and test images by the image seed (``seed % 5``: 0–2 train,
3 validation, 4 test).  Training tiles are cut from the training images with random scale,
rotation (any angle or multiples of 90°), flips, gamma, brightness gradient, contrast, blur, noise
and polarity inversion, then normalised by exactly the function inference uses.  The loss is
BCE + soft Dice, optimised with AdamW under linear warm-up and cosine decay.  Every ``val_every``
steps the model is scored on the validation images with the tiled inference code; the best
particle IoU is written as a model folder (``out_dir/model``), and a resumable checkpoint
(``out_dir/checkpoint.pt``: weights, optimiser, scheduler, step, RNG states) is saved.
``out_dir/log.jsonl`` logs loss and metrics.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from nanomorph.segment.inference import (
    autocast_context,
    keep_confident_regions,
    predict_flips,
    predict_tiled,
    resolve_device,
    resolve_precision,
)
from nanomorph.segment.metrics import confusion_matrix, match_instances, pixel_metrics
from nanomorph.segment.model import (
    DEFAULT_MODEL_NAME,
    build_model,
    default_config,
    save_model_folder,
)
from nanomorph.segment.preprocess import (
    PreprocessConfig,
    PreprocessError,
    block_mean,
    check_flattening,
    downsample_factor,
    downsample_mask,
    normalize_for_network,
)

logger = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")


class TrainingError(ValueError):
    """A training setting or training data that cannot be used."""


@dataclass
class TrainingSample:
    """One micrograph with its exact particle mask."""

    image: np.ndarray
    mask: np.ndarray
    pixel_size_nm: float
    scenario: str = ""


#: A source of training images: image seed -> sample.  Must be deterministic in the seed.
SampleSource = Callable[[int], TrainingSample]


#: Extra seed word of the particle-free scenes' random stream ("NEG"), apart from the image seed's.
_NEGATIVE_STREAM = 0x4E4547


def is_negative_seed(seed: int, negative_fraction: float) -> bool:
    """Whether image seed `seed` is a particle-free scene in a pool with `negative_fraction`.

    Decided by the seed alone, so the other seeds give the same images whatever the fraction.
    """
    return bool(np.random.default_rng([seed, _NEGATIVE_STREAM]).random() < negative_fraction)


#: Extra seed word of the defocused-support draw ("DOF"), apart from the image seed's stream.
_DEFOCUS_STREAM = 0x444F46

#: Range of the support blur drawn for a defocused-support image, in median particle
#: diameters (Gaussian sigma; log-uniform): from grains softened to grains melted into haze.
SUPPORT_DEFOCUS_RANGE = (0.3, 3.0)


def support_defocus_of_seed(seed: int, support_defocus_fraction: float) -> float:
    """The support blur of image seed `seed` in a pool with `support_defocus_fraction` (0: none).

    Drawn from a stream of its own, so every other setting of the image is the same whatever
    the fraction; the blur applies where the image is HAADF with a support
    (``support_defocus_blur`` of :func:`nanomorph.simulate.simulate_micrograph`).
    """
    from nanomorph.simulate.scenarios import _logu

    if not support_defocus_fraction:
        return 0.0
    rng = np.random.default_rng([seed, _DEFOCUS_STREAM])
    if rng.random() >= support_defocus_fraction:
        return 0.0
    return _logu(rng, *SUPPORT_DEFOCUS_RANGE)


#: Extra seed word of the platelet-support draw ("PLT").
_PLATELET_STREAM = 0x504C54


def platelets_of_seed(seed: int, platelet_support_fraction: float) -> bool:
    """Whether image seed `seed`, in a pool with `platelet_support_fraction`, has an alumina-like
    support of flat platelets and rods instead of spherical grains (where it has grains:
    ``support_platelets`` of :func:`nanomorph.simulate.simulate_micrograph`).

    Decided by a stream of its own, so the other seeds give the same images whatever the fraction.
    """
    if not platelet_support_fraction:
        return False
    rng = np.random.default_rng([seed, _PLATELET_STREAM])
    return bool(rng.random() < platelet_support_fraction)


def _check_pool_fraction(
    name: str, value: float, sample_source: Any, below_one: bool = False
) -> None:
    """Refuse a share of the simulated pool outside [0, 1] (or [0, 1)), or with a custom source."""
    if not (math.isfinite(value) and 0 <= value and (value < 1 if below_one else value <= 1)):
        raise TrainingError(f"{name} must be in [0, {'1)' if below_one else '1]'}, got {value}")
    if value and sample_source is not None:
        raise TrainingError(f"{name} applies to the simulated pool, not a sample_source")


def _check_loss_weighting(name: str, value: float, zero_allowed: bool) -> None:
    """Refuse a loss-weighting setting that is not a finite number >= 0 (or > 0)."""
    if not (math.isfinite(value) and (value >= 0 if zero_allowed else value > 0)):
        raise TrainingError(
            f"{name} must be a number {'>=' if zero_allowed else '>'} 0, got {value}"
        )


def simulated_sample(
    seed: int,
    shape: tuple[int, int] = (384, 384),
    negative_fraction: float = 0.0,
    support_defocus_fraction: float = 0.0,
    platelet_support_fraction: float = 0.0,
) -> TrainingSample:
    """A simulated micrograph from :func:`nanomorph.simulate.simulate_micrograph`.

    Parameters
    ----------
    seed : int
        Image seed.
    shape : tuple of int
        Image shape in pixels.
    negative_fraction : float
        Share of image seeds (:func:`is_negative_seed`) that give a scene without particles
        (:func:`nanomorph.simulate.negatives.simulate_negative`: carbon grain, textured support,
        residue) instead.
    support_defocus_fraction : float
        Share of image seeds (:func:`support_defocus_of_seed`) whose support, where the image
        is HAADF, is blurred as out of the probe's focus.
    platelet_support_fraction : float
        Share of image seeds (:func:`platelets_of_seed`) whose support grains are flat
        platelets and rods (alumina) instead of spheres.

    Returns
    -------
    TrainingSample
    """
    from nanomorph.simulate import simulate_micrograph
    from nanomorph.simulate.negatives import simulate_negative

    if is_negative_seed(seed, negative_fraction):
        sim = simulate_negative(np.random.SeedSequence([seed, _NEGATIVE_STREAM]), shape=shape)
    else:
        blur = support_defocus_of_seed(seed, support_defocus_fraction)
        sim = simulate_micrograph(
            seed,
            shape=shape,
            support_defocus_blur=blur,
            support_platelets=platelets_of_seed(seed, platelet_support_fraction),
        )
    return TrainingSample(
        image=np.asarray(sim.image, dtype=np.float32),
        mask=np.asarray(sim.mask, dtype=bool),
        pixel_size_nm=float(sim.pixel_size_nm),
        scenario=str(sim.scenario),
    )


def split_of_seed(seed: int) -> str:
    """Data split of an image seed: 60 % train, 20 % validation, 20 % test."""
    remainder = seed % 5
    return "train" if remainder < 3 else "validation" if remainder == 3 else "test"


def split_seeds(seed: int, n_images: int) -> dict[str, list[int]]:
    """The image seeds of a training run (its ``seed`` and ``n_images``), by split."""
    image_seeds = [seed * n_images + i for i in range(n_images)]
    return {name: [s for s in image_seeds if split_of_seed(s) == name] for name in SPLITS}


@dataclass
class AugmentConfig:
    """Ranges of the random augmentations applied to training tiles."""

    scale_range: tuple[float, float] = (0.7, 1.4)
    arbitrary_rotation_probability: float = 0.5
    gamma_range: tuple[float, float] = (0.67, 1.5)
    gamma_probability: float = 0.5
    gradient_amplitude: float = 0.3
    gradient_probability: float = 0.5
    blur_sigma_px: tuple[float, float] = (0.0, 1.5)
    blur_probability: float = 0.3
    noise_std_range: tuple[float, float] = (0.0, 0.3)
    noise_probability: float = 0.5
    invert_probability: float = 0.5
    #: Share of tiles whose contrast is scaled by a smooth random gain field (0: none); see
    #: `local_contrast_field`.
    local_contrast_probability: float = 0.0
    #: Width range (Gaussian sigma, tile pixels) of the gain field's variations.
    local_contrast_sigma_px: tuple[float, float] = (16.0, 64.0)
    #: Range of the standard deviation of the field's natural logarithm.
    local_contrast_log_std: tuple[float, float] = (0.2, 0.7)


@dataclass
class TrainConfig:
    """Every training setting; stored in the checkpoint and in the model's ``config.json``."""

    steps: int = 3000
    tile_size: int = 256
    batch_size: int = 8
    seed: int = 0
    n_images: int = 500
    image_shape: tuple[int, int] = (384, 384)
    arch: str = "deeplabv3plus"
    encoder: str = "resnet18"
    #: Further smp architecture arguments (e.g. ``decoder_channels``); None: smp's defaults.
    arch_options: dict[str, Any] | None = None
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_fraction: float = 0.05
    final_lr_fraction: float = 0.01
    dice_weight: float = 1.0
    #: Extra cross-entropy weight of the pixels at a particle's outline (0: every pixel alike).
    edge_weight: float = 0.0
    #: Width (Gaussian sigma, working-grid pixels) of the band that `edge_weight` emphasises.
    edge_sigma_px: float = 1.5
    #: Extra cross-entropy weight of small particles and the pixels around them (0: none).
    small_particle_weight: float = 0.0
    #: Equivalent diameter (working-grid pixels) below which `small_particle_weight` applies.
    small_particle_diameter_px: float = 16.0
    #: Share of the pool that is particle-free scenes (hard negatives; see `simulated_sample`).
    negative_fraction: float = 0.0
    #: Share of the pool whose HAADF supports are out of focus (see `simulated_sample`).
    support_defocus_fraction: float = 0.0
    #: Share of the pool whose support grains are platelets (see `simulated_sample`).
    platelet_support_fraction: float = 0.0
    val_every: int = 250
    log_every: int = 10
    precision: str = "auto"
    model_name: str = DEFAULT_MODEL_NAME
    data_source: str = "nanomorph.simulate.simulate_micrograph"
    #: Model folder whose weights the run starts from (fine-tuning); None: random weights.
    init_from: str | None = None
    init_weights_sha256: str | None = None
    #: True when only the encoder came from `init_from` (another architecture's model).
    init_encoder_only: bool = False
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)


#: Default value of every TrainConfig field (checkpoints written before a field existed).
TRAIN_DEFAULTS: dict[str, Any] = {
    f.name: f.default for f in fields(TrainConfig) if f.default is not MISSING
}

#: Default of every TrainConfig field that is itself a group of settings (augmentation,
#: preprocessing), as the dict a checkpoint holds: a setting added to a group later is absent from
#: older checkpoints, which were made with its default.
NESTED_TRAIN_DEFAULTS: dict[str, dict[str, Any]] = {
    f.name: asdict(f.default_factory())
    for f in fields(TrainConfig)
    if f.default_factory is not MISSING
}

#: Settings a resumed run may change: how often it validates and logs, its arithmetic, its name
#: and where its initial model lies (its weights are checked by ``init_weights_sha256``). Every
#: other setting shapes the data, the optimisation or the network, so a checkpoint made with
#: another value is refused rather than continued under a mixture of two recipes.
RESUMABLE_CHANGES = frozenset({"val_every", "log_every", "precision", "model_name", "init_from"})

# ----------------------------------------------------------------------------------------------
# The image pool


def _cache_path(cache_dir: Path, seed: int) -> Path:
    return cache_dir / f"image_{seed:07d}.npz"


def _write_cached_sample(path: Path, sample: TrainingSample) -> None:
    image = np.asarray(sample.image, dtype=np.float64)
    low, high = float(image.min()), float(image.max())
    scaled = (image - low) / (high - low) if high > low else np.zeros_like(image)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(
        tmp,
        # 16-bit is finer than any simulated noise and halves the cache and the memory pool.
        image=np.round(scaled * 65535).astype(np.uint16),
        mask=np.asarray(sample.mask, dtype=bool),
        pixel_size_nm=np.float64(sample.pixel_size_nm),
        scenario=np.str_(sample.scenario),
    )
    tmp.replace(path)


def _generate_one(source: SampleSource, cache_dir: Path, seed: int) -> None:
    path = _cache_path(cache_dir, seed)
    if not path.exists():
        _write_cached_sample(path, source(seed))


def build_image_cache(
    cache_dir: str | Path,
    seeds: Sequence[int],
    source: SampleSource,
    n_workers: int = 1,
    progress: bool = True,
) -> Path:
    """Generate (once) one ``.npz`` per image seed.

    Parameters
    ----------
    cache_dir : str or Path
        Folder of the cache; images already there are reused.
    seeds : sequence of int
        Image seeds.
    source : callable
        seed -> :class:`TrainingSample`; must be picklable when ``n_workers > 1``.
    n_workers : int
        Processes generating images in parallel.
    progress : bool
        Show a progress bar.

    Returns
    -------
    Path
        The cache folder.
    """
    from tqdm.auto import tqdm

    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    todo = [s for s in seeds if not _cache_path(cache_dir, s).exists()]
    if not todo:
        return cache_dir
    job = partial(_generate_one, source, cache_dir)
    bar = tqdm(total=len(todo), desc="simulating training images", disable=not progress)
    if n_workers > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(n_workers) as pool:
            for _ in pool.map(job, todo, chunksize=4):
                bar.update()
    else:
        for seed in todo:
            job(seed)
            bar.update()
    bar.close()
    return cache_dir


@dataclass
class PoolImage:
    """A cached image on the network's working grid (resampling rule applied)."""

    seed: int
    image: np.ndarray  # float16 in [0, 1]
    mask: np.ndarray  # bool
    scenario: str


def load_pool(
    cache_dir: str | Path, seeds: Sequence[int], preprocess: PreprocessConfig
) -> list[PoolImage]:
    """Load cached images and apply the resampling rule of ``preprocess``.

    Parameters
    ----------
    cache_dir : str or Path
        Made by :func:`build_image_cache`.
    seeds : sequence of int
        Image seeds to load.
    preprocess : PreprocessConfig
        Resampling settings (the same as at inference).

    Returns
    -------
    list of PoolImage

    Raises
    ------
    TrainingError
        If a cached image is missing.
    """
    pool = []
    for seed in seeds:
        path = _cache_path(Path(cache_dir), seed)
        if not path.exists():
            raise TrainingError(f"cached training image {path} is missing")
        with np.load(path) as data:
            factor = downsample_factor(float(data["pixel_size_nm"]), preprocess)
            image = block_mean(data["image"].astype(np.float32) / 65535.0, factor)
            mask = downsample_mask(data["mask"], factor)
            pool.append(PoolImage(seed, image.astype(np.float16), mask, str(data["scenario"])))
    return pool


# ----------------------------------------------------------------------------------------------
# Augmentation


def _random_crop(
    image: np.ndarray, mask: np.ndarray, tile: int, rng: np.random.Generator, aug: AugmentConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Cut a tile with random scale, rotation and flips in one affine resampling."""
    height, width = image.shape
    scale = math.exp(rng.uniform(*np.log(aug.scale_range)))
    if rng.random() < aug.arbitrary_rotation_probability:
        angle = rng.uniform(0, 2 * math.pi)
    else:
        angle = rng.integers(4) * math.pi / 2
    flip = np.diag([rng.choice([-1.0, 1.0]), rng.choice([-1.0, 1.0])])
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    centre = np.array([rng.uniform(0, width), rng.uniform(0, height)])  # (x, y) in pixels
    # Output offsets (normalised tile coords * tile/2 px) -> rotated, flipped, scaled source
    # offsets -> source normalised coordinates (align_corners=False convention).
    linear = np.diag([2.0 / width, 2.0 / height]) @ rotation @ flip * (tile / 2.0) / scale
    offset = (2.0 * centre) / np.array([width, height]) - 1.0
    theta = torch.tensor(np.concatenate([linear, offset[:, None]], axis=1), dtype=torch.float32)
    grid = F.affine_grid(theta[None], [1, 1, tile, tile], align_corners=False)
    stacked = torch.from_numpy(np.stack([image.astype(np.float32), mask.astype(np.float32)]))
    warped = F.grid_sample(
        stacked[None], grid, mode="bilinear", padding_mode="reflection", align_corners=False
    )[0].numpy()
    return warped[0], warped[1] >= 0.5


def _gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    from scipy import ndimage

    return ndimage.gaussian_filter(image, sigma, mode="reflect")


def local_contrast_field(
    tile: np.ndarray, sigma_px: float, log_std: float, rng: np.random.Generator
) -> np.ndarray:
    """Scale a tile's local contrast by a smooth random gain, region by region.

    The tile's deviation from its local mean (a Gaussian of ``sigma_px``) is multiplied by
    ``exp(log_std * z)``, where ``z`` is white noise smoothed at ``sigma_px`` and scaled to unit
    standard deviation: in one part of the tile particles, support texture and noise all stand
    out more, in another less, while the local mean stays. A network trained on such tiles
    cannot rely on how strong a particle's contrast is compared with the rest of the image,
    which is what makes small particles on a bright, cloudy HAADF support look like support to
    it (model card, "Background flattening, tried and not adopted").

    Parameters
    ----------
    tile : ndarray
        2-D float32 tile.
    sigma_px : float
        Width of the local mean and of the gain field's variations, in pixels.
    log_std : float
        Standard deviation of the natural logarithm of the gain.
    rng : numpy.random.Generator
        Random source.

    Returns
    -------
    ndarray
        float32 tile of the same shape.
    """
    local_mean = _gaussian_blur(tile, sigma_px)
    field_ = _gaussian_blur(rng.standard_normal(tile.shape).astype(np.float32), sigma_px)
    field_ /= np.float32(field_.std() or 1.0)
    gain = np.exp(np.float32(log_std) * field_)
    return (local_mean + (tile - local_mean) * gain).astype(np.float32, copy=False)


def augment_intensity(tile: np.ndarray, rng: np.random.Generator, aug: AugmentConfig) -> np.ndarray:
    """Random gamma, local contrast, brightness gradient, contrast, blur, noise and inversion
    of a [0, 1] tile.

    Parameters
    ----------
    tile : ndarray
        2-D float32 tile scaled to about [0, 1].
    rng : numpy.random.Generator
        Random source.
    aug : AugmentConfig
        Augmentation ranges.

    Returns
    -------
    ndarray
        float32 tile (not normalised).
    """
    out = tile.astype(np.float32, copy=True)
    if rng.random() < aug.gamma_probability:
        out = np.clip(out, 0, 1) ** np.float32(math.exp(rng.uniform(*np.log(aug.gamma_range))))
    # Drawn only when enabled, so that recipes without it keep their random stream (and the
    # shipped model's training command its exact images and weights).
    if aug.local_contrast_probability > 0 and rng.random() < aug.local_contrast_probability:
        sigma = math.exp(rng.uniform(*np.log(aug.local_contrast_sigma_px)))
        out = local_contrast_field(out, sigma, rng.uniform(*aug.local_contrast_log_std), rng)
    if rng.random() < aug.gradient_probability:
        # Uneven illumination: a random linear ramp (plain brightness/contrast changes are undone
        # by the normalisation, a ramp is not).
        yy, xx = np.mgrid[0 : out.shape[0], 0 : out.shape[1]].astype(np.float32)
        direction = rng.uniform(0, 2 * math.pi)
        ramp = math.cos(direction) * xx / out.shape[1] + math.sin(direction) * yy / out.shape[0]
        out = out + np.float32(rng.uniform(-1, 1) * aug.gradient_amplitude) * ramp
    out = out * np.float32(rng.uniform(0.7, 1.4)) + np.float32(rng.uniform(-0.2, 0.2))
    if rng.random() < aug.blur_probability:
        out = _gaussian_blur(out, rng.uniform(*aug.blur_sigma_px))
    if rng.random() < aug.noise_probability:
        spread = float(np.percentile(out, 99) - np.percentile(out, 1)) or 1.0
        std = rng.uniform(*aug.noise_std_range) * spread
        out = out + rng.normal(0.0, std, out.shape).astype(np.float32)
    if rng.random() < aug.invert_probability:
        out = -out
    return out.astype(np.float32, copy=False)


def make_batch(
    pool: Sequence[PoolImage],
    batch_size: int,
    tile: int,
    rng: np.random.Generator,
    aug: AugmentConfig,
    preprocess: PreprocessConfig,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of augmented, normalised training tiles and their masks.

    Parameters
    ----------
    pool : sequence of PoolImage
        Training images.
    batch_size, tile : int
        Batch size and tile side.
    rng : numpy.random.Generator
        Random source.
    aug : AugmentConfig
        Augmentation ranges.
    preprocess : PreprocessConfig
        Normalisation settings (the same as at inference).

    Returns
    -------
    images, masks : torch.Tensor
        float32 tensors of shape (batch_size, 1, tile, tile).
    """
    images, masks = [], []
    for _ in range(batch_size):
        item = pool[int(rng.integers(len(pool)))]
        crop, crop_mask = _random_crop(item.image, item.mask, tile, rng, aug)
        crop = augment_intensity(crop, rng, aug)
        images.append(normalize_for_network(crop, preprocess))
        masks.append(crop_mask)
    x = torch.from_numpy(np.stack(images)[:, None])
    y = torch.from_numpy(np.stack(masks)[:, None].astype(np.float32))
    return x, y


def outline_weights(mask: np.ndarray, edge_weight: float, sigma_px: float) -> np.ndarray:
    """Per-pixel loss weights that emphasise a mask's outlines.

    A pixel at distance ``d`` from the outline (half a pixel beyond the centre of the nearest
    pixel of the other class, on either side) gets ``1 + edge_weight * exp(-d**2 / (2
    sigma_px**2))``.  The same on both sides, so it does not move where the loss puts the
    outline; it makes a misplaced outline cost as much on a particle of a few pixels, which is
    nearly all outline, as the many interior pixels of a large particle earn.

    Parameters
    ----------
    mask : ndarray of bool
        2-D particle mask.
    edge_weight : float
        Extra weight at the outline (0: all ones).
    sigma_px : float
        Width of the emphasised band in pixels.

    Returns
    -------
    ndarray of float32
        Weights >= 1, of the mask's shape.
    """
    from scipy import ndimage

    mask = np.asarray(mask, dtype=bool)
    if edge_weight <= 0 or mask.all() or not mask.any():
        return np.ones(mask.shape, dtype=np.float32)
    distance = np.where(
        mask, ndimage.distance_transform_edt(mask), ndimage.distance_transform_edt(~mask)
    )
    band = np.exp(-((distance - 0.5) ** 2) / (2.0 * sigma_px**2))
    return (1.0 + edge_weight * band).astype(np.float32)


def small_particle_weights(
    mask: np.ndarray, weight: float, diameter_px: float, band_px: float = 3.0
) -> np.ndarray:
    """Per-pixel loss weights that make small particles count as much as large ones.

    Each connected particle region of equivalent diameter ``d`` (pixels) gets the factor
    ``1 + weight * clip(diameter_px / d - 1, 0, 1)``: 1 for regions of `diameter_px` and more,
    ``1 + weight`` for those of half that and less, in between linearly in ``1/d``. The factor
    covers the region and the background within `band_px` of it (the nearest region's, where two
    are that close), because a small particle's errors are as often the rim around it and the gap
    to its neighbour as its own pixels. Everything else keeps weight 1. Pixel-wise losses favour
    large particles, which hold most pixels, whereas a particle count, its mean diameter and the
    instance recall count each particle once.

    Parameters
    ----------
    mask : ndarray of bool
        2-D particle mask.
    weight : float
        Extra weight of the smallest particles (0: all ones).
    diameter_px : float
        Equivalent diameter in pixels from which on a particle gets no extra weight.
    band_px : float
        How far around a region its factor reaches into the background.

    Returns
    -------
    ndarray of float32
        Weights >= 1, of the mask's shape.
    """
    from scipy import ndimage

    mask = np.asarray(mask, dtype=bool)
    if weight <= 0 or not mask.any():
        return np.ones(mask.shape, dtype=np.float32)
    labels, n = ndimage.label(mask, structure=np.ones((3, 3)))
    area = np.bincount(labels.ravel(), minlength=n + 1).astype(np.float64)
    diameter = np.sqrt(4.0 * np.maximum(area, 1.0) / np.pi)
    factor = 1.0 + weight * np.clip(diameter_px / diameter - 1.0, 0.0, 1.0)
    factor[0] = 1.0
    distance, (rows, cols) = ndimage.distance_transform_edt(labels == 0, return_indices=True)
    nearest = labels[rows, cols]
    weights = np.where(distance <= band_px, factor[nearest], 1.0)
    return weights.astype(np.float32)


def loss_weights(masks: torch.Tensor, settings: TrainConfig) -> torch.Tensor | None:
    """The batch's per-pixel cross-entropy weights of `settings` (None: every pixel alike)."""
    if settings.edge_weight <= 0 and settings.small_particle_weight <= 0:
        return None
    weights = []
    for tile in masks:
        mask = tile[0].numpy() > 0.5
        w = outline_weights(mask, settings.edge_weight, settings.edge_sigma_px)
        if settings.small_particle_weight > 0:
            w = w * small_particle_weights(
                mask, settings.small_particle_weight, settings.small_particle_diameter_px
            )
        weights.append(w)
    return torch.from_numpy(np.stack(weights)[:, None])


# ----------------------------------------------------------------------------------------------
# Loss, schedule, validation


def bce_dice_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    dice_weight: float = 1.0,
    pixel_weight: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Binary cross-entropy plus soft Dice loss over the whole batch.

    Parameters
    ----------
    logits, target : torch.Tensor
        Particle logits and 0/1 targets of equal shape.
    dice_weight : float
        Weight of the Dice term.
    pixel_weight : torch.Tensor, optional
        Per-pixel weights of the cross-entropy (e.g. :func:`outline_weights`), normalised by
        their sum so the loss keeps its scale; the Dice term is not weighted.

    Returns
    -------
    loss : torch.Tensor
        Scalar.
    parts : dict
        ``bce`` and ``dice`` values.
    """
    logits = logits.float()
    if pixel_weight is None:
        bce = F.binary_cross_entropy_with_logits(logits, target)
    else:
        per_pixel = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
        bce = (per_pixel * pixel_weight).sum() / pixel_weight.sum()
    prob = torch.sigmoid(logits)
    dice = 1.0 - (2.0 * (prob * target).sum() + 1.0) / (prob.sum() + target.sum() + 1.0)
    return bce + dice_weight * dice, {"bce": float(bce.detach()), "dice": float(dice.detach())}


def lr_factor(step: int, total_steps: int, warmup_fraction: float, final_fraction: float) -> float:
    """Learning-rate multiplier: linear warm-up, then cosine decay to ``final_fraction``."""
    warmup = max(1, int(total_steps * warmup_fraction))
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
    return final_fraction + (1 - final_fraction) * 0.5 * (1 + math.cos(math.pi * progress))


def pool_probabilities(
    model: torch.nn.Module,
    images: Sequence[PoolImage],
    preprocess: PreprocessConfig,
    device: torch.device,
    precision: str,
    tile_size: int = 512,
    test_time_flips: bool = False,
):
    """Yield ``(item, probability)`` for pool images, with the inference code's tiling.

    ``test_time_flips`` averages the image and its three flips, as the segmenter's option does.
    """
    predict = predict_flips if test_time_flips else predict_tiled
    for item in images:
        x = normalize_for_network(item.image.astype(np.float32), preprocess)
        prob = predict(
            model,
            x,
            tile_size=tile_size,
            overlap=64,
            device=device,
            precision=precision,
            channels_last=device.type == "cpu",
        )
        yield item, prob


def score_images(
    model: torch.nn.Module,
    images: Sequence[PoolImage],
    preprocess: PreprocessConfig,
    device: torch.device,
    precision: str,
    tile_size: int = 512,
    threshold: float = 0.5,
    min_peak_probability: float | None = None,
) -> dict[str, Any]:
    """Pixel metrics of a model on pool images, overall and per scenario.

    Parameters
    ----------
    model : torch.nn.Module
        The network.
    images : sequence of PoolImage
        Validation or test images (on the working grid).
    preprocess : PreprocessConfig
        Normalisation settings.
    device : torch.device
        Where the model lives.
    precision : {"auto", "bf16", "fp32"}
        Inference precision.
    tile_size : int
        Inference tile size.
    threshold : float
        Probability at or above which a pixel is a particle.
    min_peak_probability : float, optional
        Drop regions whose highest probability stays below it (:func:`keep_confident_regions`).

    Returns
    -------
    dict
        :func:`nanomorph.segment.metrics.pixel_metrics` of all images, plus ``by_scenario``.
    """
    total = np.zeros((2, 2), dtype=np.int64)
    by_scenario: dict[str, np.ndarray] = {}
    for item, prob in pool_probabilities(model, images, preprocess, device, precision, tile_size):
        cm = confusion_matrix(
            item.mask, keep_confident_regions(prob, threshold, min_peak_probability)
        )
        total += cm
        by_scenario[item.scenario] = by_scenario.get(item.scenario, 0) + cm
    result = pixel_metrics(total)
    result["n_images"] = len(images)
    result["threshold"] = threshold
    result["min_peak_probability"] = min_peak_probability
    result["by_scenario"] = {k: pixel_metrics(v) for k, v in sorted(by_scenario.items())}
    return result


def _negative_scene_record(scores: dict[str, Any]) -> dict[str, float]:
    """The share of particle-free scenes' pixels taken for particles (their IoU is always 0)."""
    from nanomorph.simulate.negatives import NEGATIVE_SCENARIO

    negative = scores["by_scenario"].get(NEGATIVE_SCENARIO)
    if negative is None:
        return {}
    return {"negative_false_particle_fraction": 1.0 - negative["class_accuracy"]["background"]}


#: Probability thresholds tried when tuning on the validation split.
THRESHOLD_CANDIDATES = tuple(round(t, 2) for t in np.arange(0.25, 0.80, 0.05))


#: Thresholds whose validation IoU is this close to the best count as equally good outlines.
THRESHOLD_IOU_TOLERANCE = 0.005


def tune_threshold(
    model: torch.nn.Module,
    images: Sequence[PoolImage],
    preprocess: PreprocessConfig,
    device: torch.device,
    precision: str,
    candidates: Sequence[float] = THRESHOLD_CANDIDATES,
    iou_tolerance: float = THRESHOLD_IOU_TOLERANCE,
) -> tuple[float, dict[str, float], dict[str, float]]:
    """The probability threshold with the best particle IoU and unbiased particle sizes.

    A network trained with a Dice term is not calibrated, so 0.5 is not necessarily where its
    particle outlines are best placed; the threshold is chosen on the validation split (never
    the test split) and stored in the model's ``config.json``, as StarDist stores its thresholds.
    IoU is flat near its optimum, while particle sizes are not: for the shipped model the
    validation IoU was 0.735 at both 0.35 and 0.40 and 0.732 at 0.5, while matched particle
    areas were 3 % too large at 0.35 and unbiased at 0.40. Sizes are what users measure, so
    among the thresholds within ``iou_tolerance`` of the best IoU the one whose matched
    particles (connected components of the true and predicted masks, IoU ≥ 0.5) have a median
    predicted/true area closest to 1 is chosen. Missed and false particles do not enter that
    ratio; IoU already counts them.

    Returns
    -------
    (threshold, {threshold: particle IoU}, {threshold: median predicted/true area of matches})
    """
    pairs = (
        (item.mask, prob)
        for item, prob in pool_probabilities(model, images, preprocess, device, precision)
    )
    return threshold_scores(pairs, candidates, iou_tolerance)


def threshold_scores(
    pairs: Iterable[tuple[np.ndarray, np.ndarray]],
    candidates: Sequence[float] = THRESHOLD_CANDIDATES,
    iou_tolerance: float = THRESHOLD_IOU_TOLERANCE,
) -> tuple[float, dict[str, float], dict[str, float]]:
    """:func:`tune_threshold` on ``(true mask, probability)`` pairs already computed."""
    from skimage.measure import label

    totals = {t: np.zeros((2, 2), dtype=np.int64) for t in candidates}
    ratios: dict[float, list[float]] = {t: [] for t in candidates}
    for mask, prob in pairs:
        true_labels = label(mask, connectivity=2)
        true_areas = np.bincount(true_labels.ravel())
        for t in candidates:
            predicted = prob >= t
            totals[t] += confusion_matrix(mask, predicted)
            predicted_labels = label(predicted, connectivity=2)
            predicted_areas = np.bincount(predicted_labels.ravel())
            for true_id, predicted_id, _ in match_instances(true_labels, predicted_labels).pairs:
                ratios[t].append(predicted_areas[predicted_id] / true_areas[true_id])
    ious = {float(t): float(pixel_metrics(cm)["particle_iou"]) for t, cm in totals.items()}
    area_ratios = {float(t): float(np.median(r)) if r else float("nan") for t, r in ratios.items()}
    return choose_threshold(ious, area_ratios, iou_tolerance), ious, area_ratios


#: Levels tried for the probability a region must reach somewhere (:func:`keep_confident_regions`).
PEAK_CANDIDATES = (0.7, 0.8, 0.85, 0.9, 0.95, 0.98)


#: Levels whose validation F1 is this close to the best count as equally good.
PEAK_F1_TOLERANCE = 0.005


def min_peak_probability_scores(
    pairs: Iterable[tuple[np.ndarray, np.ndarray]],
    threshold: float,
    candidates: Sequence[float] = PEAK_CANDIDATES,
    f1_tolerance: float = PEAK_F1_TOLERANCE,
) -> tuple[float | None, dict[float, dict[str, float]]]:
    """The highest probability a network region must reach to count as a particle.

    The network's false regions (carbon grain, support texture, residue) are mostly lukewarm
    throughout, while a real particle is nearly always certain in its centre, so dropping the
    regions that never reach a level removes false particles and keeps the outlines of the rest
    where the tuned `threshold` puts them. The level is chosen, like the threshold, on the
    validation split: particles are the connected components of the true and the kept mask,
    matched at IoU ≥ 0.5, and among the levels within `f1_tolerance` of the best F1 the lowest
    (the one that drops least) wins. `threshold` itself is the level that drops nothing.

    Parameters
    ----------
    pairs : iterable of (numpy.ndarray, numpy.ndarray)
        True mask and particle probability of each validation image.
    threshold : float
        The model's tuned probability threshold.
    candidates : sequence of float
        Levels to try (those not above `threshold` are skipped).
    f1_tolerance : float
        F1 this close to the best counts as equally good.

    Returns
    -------
    (level, scores)
        The chosen level (None: drop nothing) and, per level tried, the particles' ``precision``,
        ``recall`` and ``f1`` with the counts ``tp``, ``fp`` and ``fn``.
    """
    from skimage.measure import label

    levels = [float(threshold), *sorted(float(c) for c in candidates if c > threshold)]
    counts = {level: np.zeros(3, dtype=np.int64) for level in levels}
    for mask, prob in pairs:
        true_labels = label(mask, connectivity=2)
        for level in levels:
            kept = keep_confident_regions(prob, threshold, level)
            matching = match_instances(true_labels, label(kept, connectivity=2))
            counts[level] += (matching.tp, matching.fp, matching.fn)
    scores: dict[float, dict[str, float]] = {}
    for level, (tp, fp, fn) in counts.items():
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0
        scores[level] = {
            "precision": float(precision),
            "recall": float(recall),
            "f1": float(f1),
            "tp": int(tp),
            "fp": int(fp),
            "fn": int(fn),
        }
    best = max(v["f1"] for v in scores.values())
    chosen = min(level for level in levels if scores[level]["f1"] >= best - f1_tolerance)
    return (None if chosen <= threshold else chosen), scores


def min_peak_probability_record(
    level: float | None, scores: dict[float, dict[str, float]], precision: str
) -> dict[str, Any]:
    """What ``config.json`` keeps about the choice of ``min_peak_probability``."""
    return {
        "split": "validation",
        "rule": (
            "connected regions of the true and kept masks matched at IoU >= 0.5; among the "
            f"levels within {PEAK_F1_TOLERANCE} of the best F1, the lowest (the threshold "
            "itself drops nothing)"
        ),
        "chosen": level,
        "precision_of_inference": precision,
        "by_level": {f"{k:g}": v for k, v in scores.items()},
    }


def choose_threshold(
    ious: dict[float, float],
    area_ratios: dict[float, float],
    iou_tolerance: float = THRESHOLD_IOU_TOLERANCE,
) -> float:
    """Among thresholds within ``iou_tolerance`` of the best IoU, the least area-biased one.

    Ties go to the higher IoU, then to the threshold nearest 0.5.
    """
    best_iou = max(ious.values())
    near = [t for t in ious if ious[t] >= best_iou - iou_tolerance]

    def area_bias(t: float) -> float:
        ratio = area_ratios.get(t, float("nan"))
        return abs(float(np.log(ratio))) if ratio > 0 and np.isfinite(ratio) else float("inf")

    return float(min(near, key=lambda t: (area_bias(t), -ious[t], abs(t - 0.5))))


def finalize_model(
    model_dir: Path,
    cache_dir: Path,
    split: dict[str, list[int]],
    preprocess: PreprocessConfig,
    device: torch.device,
    precision: str,
    extra_metrics: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Tune the threshold of the best model on validation, then score it on the test split.

    Rewrites the model folder with the tuned ``threshold`` and ``min_peak_probability`` in
    ``config.json`` and the test metrics in ``metrics.json``; returns the test scores.
    """
    from nanomorph.segment.model import load_model

    best_model, config = load_model(model_dir)
    best_model = best_model.to(device)
    val_pool = load_pool(cache_dir, split["validation"], preprocess)
    # One inference pass over the validation split serves both choices.
    val_pairs = [
        (item.mask, prob)
        for item, prob in pool_probabilities(best_model, val_pool, preprocess, device, precision)
    ]
    threshold, ious, area_ratios = threshold_scores(val_pairs)
    min_peak, peak_scores = min_peak_probability_scores(val_pairs, threshold)
    del val_pairs
    config["threshold"] = threshold
    config["min_peak_probability"] = min_peak
    config["min_peak_probability_tuning"] = min_peak_probability_record(
        min_peak, peak_scores, precision
    )
    config["threshold_tuning"] = {
        "split": "validation",
        "rule": (
            f"among thresholds within {THRESHOLD_IOU_TOLERANCE} of the best particle IoU, "
            "the one whose matched particles have a median predicted/true area closest to 1"
        ),
        "particle_iou": ious,
        "median_matched_area_ratio": area_ratios,
    }
    test_pool = load_pool(cache_dir, split["test"], preprocess)
    test_scores = score_images(
        best_model,
        test_pool,
        preprocess,
        device,
        precision,
        threshold=threshold,
        min_peak_probability=min_peak,
    )
    existing = json.loads((model_dir / "metrics.json").read_text())
    metrics = {
        **(extra_metrics or {}),
        "test": test_scores,
        "validation": existing.get("validation", {}),
        "n_images": {name: len(seeds) for name, seeds in split.items()},
    }
    config.pop("folder", None)
    save_model_folder(best_model, model_dir, config, metrics)
    return test_scores


def _append_log(path: Path, record: dict[str, Any]) -> None:
    with path.open("a") as handle:
        handle.write(json.dumps(record) + "\n")


# ----------------------------------------------------------------------------------------------
# The training loop


def _initial_model(
    init_from: str | Path, arch: str, encoder: str, encoder_only: bool = False
) -> tuple[torch.nn.Module, Path, str, PreprocessConfig]:
    """The model a fine-tuning run starts from, its folder, weights sha256 and preprocessing.

    With `encoder_only` any architecture with the same encoder will do: only its encoder's
    weights are used.
    """
    from nanomorph.segment.model import (
        ModelNotFoundError,
        find_model_folder,
        load_model,
        weights_sha256,
    )

    try:
        folder = find_model_folder(init_from)
        model, config = load_model(folder)
    except ModelNotFoundError as error:
        raise TrainingError(f"cannot start from {init_from}: {error}") from None
    if encoder_only and config.get("encoder") != encoder:
        raise TrainingError(
            f"cannot take the encoder of {folder}: it is {config.get('encoder')}, the run "
            f"trains {encoder}"
        )
    if not encoder_only and (config.get("architecture"), config.get("encoder")) != (arch, encoder):
        raise TrainingError(
            f"cannot start from {folder}: it is {config.get('architecture')}/"
            f"{config.get('encoder')}, the run trains {arch}/{encoder}"
        )
    sha256 = weights_sha256(folder)
    preprocess = PreprocessConfig.from_dict(config.get("preprocess", {}))
    return model, folder.resolve(), sha256, preprocess


def with_flattening(
    preprocess: PreprocessConfig, flatten_support_px: float | None
) -> PreprocessConfig:
    """`preprocess` with its support-flattening sigma replaced (0: off; None: unchanged).

    Only the flattening changes, so a fine-tuning run keeps the rest of its initial model's
    normalisation and resampling.
    """
    if flatten_support_px is None:
        return preprocess
    try:
        sigma = check_flattening(flatten_support_px, preprocess.flatten_keep)
    except PreprocessError as error:
        raise TrainingError(f"flatten_support_px: {error}") from None
    return replace(preprocess, flatten_sigma_px=sigma)


def train(
    out_dir: str | Path,
    steps: int = 3000,
    tile_size: int = 256,
    batch_size: int = 8,
    seed: int = 0,
    n_images: int = 500,
    image_shape: tuple[int, int] = (384, 384),
    arch: str = "deeplabv3plus",
    encoder: str = "resnet18",
    lr: float = 1e-3,
    weight_decay: float = 1e-4,
    val_every: int = 250,
    log_every: int = 10,
    precision: str = "auto",
    device: str = "auto",
    n_threads: int | None = 2,
    n_workers: int = 1,
    resume: bool = True,
    progress: bool = True,
    model_name: str = DEFAULT_MODEL_NAME,
    sample_source: SampleSource | None = None,
    augment: AugmentConfig | None = None,
    preprocess: PreprocessConfig | None = None,
    stop_after_steps: int | None = None,
    init_from: str | Path | None = None,
    flatten_support_px: float | None = None,
    edge_weight: float = 0.0,
    edge_sigma_px: float = 1.5,
    small_particle_weight: float = 0.0,
    small_particle_diameter_px: float = 16.0,
    arch_options: dict[str, Any] | None = None,
    init_encoder_from: str | Path | None = None,
    negative_fraction: float = 0.0,
    support_defocus_fraction: float = 0.0,
    platelet_support_fraction: float = 0.0,
) -> dict[str, Any]:
    """Train the segmentation network on simulated micrographs.

    Parameters
    ----------
    out_dir : str or Path
        Run folder: ``cache/`` (image pool), ``checkpoint.pt`` (resumable state), ``log.jsonl``
        (loss and metrics), ``model/`` (the best model folder, ready for ``resources/models``).
    steps : int
        Optimiser steps in total.
    tile_size, batch_size : int
        Training tile side (a multiple of 32) and tiles per step.
    seed : int
        Seeds the image pool (image seeds ``seed * n_images ... + n_images - 1``), the weights and
        the augmentation.
    n_images : int
        Images in the pool, split 60/20/20 into train/validation/test by image seed.
    image_shape : tuple of int
        Shape of each simulated image (larger than the tile, so crops vary).
    arch, encoder : str
        Network (see :func:`nanomorph.segment.model.build_model`).
    lr, weight_decay : float
        AdamW peak learning rate and weight decay.
    val_every, log_every : int
        Steps between validations (and checkpoints) and between log lines.
    precision : {"auto", "bf16", "fp32"}
        Autocast precision for forward passes; "auto" is bf16 only where the hardware computes
        it natively (emulated bf16 makes a CPU training step about 14x slower).
    device : {"auto", "cpu", "cuda"}
        Where to train.
    n_threads : int or None
        ``torch.set_num_threads`` value (None leaves it).
    n_workers : int
        Processes simulating the pool.
    resume : bool
        Continue from ``out_dir/checkpoint.pt`` when present. A checkpoint made with other
        settings is refused (:class:`TrainingError`), except for those in `RESUMABLE_CHANGES`.
    progress : bool
        Show progress bars.
    model_name : str
        Name written into the model folder's config.
    sample_source : callable, optional
        seed -> :class:`TrainingSample`; default: :func:`simulated_sample` with ``image_shape``.
    augment : AugmentConfig, optional
        Augmentation ranges.
    preprocess : PreprocessConfig, optional
        Normalisation, polarity and resampling settings shared with inference.
    stop_after_steps : int, optional
        Save a checkpoint and return after this many steps in this call (a later call with
        ``resume=True`` continues); the schedule still spans ``steps``.
    init_from : str or Path, optional
        Model folder or name to start from instead of random weights (fine-tuning: a new
        schedule of ``steps`` steps from that model). Its architecture and encoder must be
        ``arch`` and ``encoder``; its preprocessing is used unless ``preprocess`` is given. The
        folder and the sha256 of its weights are recorded in the new model's config.
    flatten_support_px : float, optional
        Train with the support flattened at this Gaussian sigma in working-grid pixels (0: not
        flattened), replacing only ``flatten_sigma_px`` of the preprocessing otherwise used
        (``preprocess``, else the initial model's, else the default). None changes nothing.
    edge_weight, edge_sigma_px : float
        Extra cross-entropy weight of the pixels at the outlines, in a band of Gaussian width
        `edge_sigma_px` (:func:`outline_weights`); 0 weights every pixel alike.
    small_particle_weight, small_particle_diameter_px : float
        Extra cross-entropy weight of particles smaller than `small_particle_diameter_px`
        (equivalent diameter, working-grid pixels) and of the background around them
        (:func:`small_particle_weights`); 0 weights every pixel alike. Multiplies the outline
        weighting where both are given.
    arch_options : dict, optional
        Further arguments of the architecture (:func:`~nanomorph.segment.model.build_model`),
        e.g. ``{"decoder_channels": [128, 64, 32, 16, 8]}``.
    init_encoder_from : str or Path, optional
        Like `init_from`, but only the encoder's weights are taken, from a model of any
        architecture with the same encoder (a new decoder trained on a trained encoder); the
        decoder starts from random weights. Not together with `init_from`.
    negative_fraction : float
        Share of the pool's image seeds that are scenes without particles (carbon grain,
        textured support, residue: :func:`simulated_sample`), in [0, 1). Only with the default
        ``sample_source``.
    support_defocus_fraction : float
        Share of the pool's image seeds whose support, where the image is HAADF, is blurred as
        out of the probe's focus (:func:`support_defocus_of_seed`), in [0, 1]. Only with the
        default ``sample_source``.
    platelet_support_fraction : float
        Share of the pool's image seeds whose support grains are flat platelets and rods, as
        alumina's are, instead of spheres (:func:`platelets_of_seed`), in [0, 1]. Only with the
        default ``sample_source``.

    Returns
    -------
    dict
        ``finished`` (False when stopped early), ``steps`` done, ``model_dir``, ``best_step``,
        ``best_val_particle_iou`` and, when finished, ``test`` metrics of the best model on the
        test split.

    Raises
    ------
    TrainingError
        If the settings are inconsistent or a checkpoint belongs to a different run.
    """
    from tqdm.auto import tqdm

    for name, value in (
        ("steps", steps),
        ("batch_size", batch_size),
        ("val_every", val_every),
        ("log_every", log_every),
    ):
        if value < 1:
            raise TrainingError(f"{name} must be at least 1, got {value}")
    if tile_size % 32:
        raise TrainingError(f"tile_size must be a multiple of 32, got {tile_size}")
    if n_images < 5:
        raise TrainingError(f"n_images must be at least 5 for a 60/20/20 split, got {n_images}")
    _check_loss_weighting("edge_weight", edge_weight, zero_allowed=True)
    _check_loss_weighting("edge_sigma_px", edge_sigma_px, zero_allowed=False)
    _check_loss_weighting("small_particle_weight", small_particle_weight, zero_allowed=True)
    _check_loss_weighting(
        "small_particle_diameter_px", small_particle_diameter_px, zero_allowed=False
    )
    _check_pool_fraction("negative_fraction", negative_fraction, sample_source, below_one=True)
    _check_pool_fraction("support_defocus_fraction", support_defocus_fraction, sample_source)
    _check_pool_fraction("platelet_support_fraction", platelet_support_fraction, sample_source)
    if init_from is not None and init_encoder_from is not None:
        raise TrainingError("give init_from (whole model) or init_encoder_from, not both")
    if n_threads:
        torch.set_num_threads(n_threads)
    init_model, init_folder, init_sha256 = None, None, None
    encoder_only = init_encoder_from is not None
    if init_from is not None or encoder_only:
        init_model, init_folder, init_sha256, init_preprocess = _initial_model(
            init_encoder_from if encoder_only else init_from, arch, encoder, encoder_only
        )
        preprocess = preprocess or init_preprocess
    preprocess = with_flattening(preprocess or PreprocessConfig(), flatten_support_px)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    settings = TrainConfig(
        steps=steps,
        tile_size=tile_size,
        batch_size=batch_size,
        seed=seed,
        n_images=n_images,
        image_shape=tuple(image_shape),
        arch=arch,
        encoder=encoder,
        arch_options=dict(arch_options) if arch_options else None,
        lr=lr,
        weight_decay=weight_decay,
        val_every=val_every,
        log_every=log_every,
        precision=precision,
        edge_weight=float(edge_weight),
        edge_sigma_px=float(edge_sigma_px),
        small_particle_weight=float(small_particle_weight),
        small_particle_diameter_px=float(small_particle_diameter_px),
        negative_fraction=float(negative_fraction),
        support_defocus_fraction=float(support_defocus_fraction),
        platelet_support_fraction=float(platelet_support_fraction),
        model_name=model_name,
        augment=augment or AugmentConfig(),
        preprocess=preprocess,
        init_from=None if init_folder is None else str(init_folder),
        init_weights_sha256=init_sha256,
        init_encoder_only=encoder_only,
    )
    if sample_source is None:
        sample_source = partial(
            simulated_sample,
            shape=tuple(image_shape),
            negative_fraction=float(negative_fraction),
            support_defocus_fraction=float(support_defocus_fraction),
            platelet_support_fraction=float(platelet_support_fraction),
        )
    else:
        settings.data_source = getattr(sample_source, "__name__", repr(sample_source))
    device_ = resolve_device(device)
    precision = settings.precision = resolve_precision(precision, device_)

    # Image pool and split.
    split = split_seeds(seed, n_images)
    image_seeds = sorted(s for seeds in split.values() for s in seeds)
    cache_dir = out_dir / "cache" / f"{image_shape[0]}x{image_shape[1]}"
    if negative_fraction:
        cache_dir = cache_dir.with_name(f"{cache_dir.name}_negatives{negative_fraction:g}")
    if support_defocus_fraction:
        cache_dir = cache_dir.with_name(f"{cache_dir.name}_defocus{support_defocus_fraction:g}")
    if platelet_support_fraction:
        cache_dir = cache_dir.with_name(f"{cache_dir.name}_platelets{platelet_support_fraction:g}")
    build_image_cache(cache_dir, image_seeds, sample_source, n_workers=n_workers, progress=progress)
    train_pool = load_pool(cache_dir, split["train"], settings.preprocess)
    val_pool = load_pool(cache_dir, split["validation"], settings.preprocess)

    # Model, optimiser, schedule.
    torch.manual_seed(seed)
    try:
        model = build_model(arch, encoder, arch_options=settings.arch_options)
    except ValueError as error:
        raise TrainingError(str(error)) from None
    if encoder_only:
        model.encoder.load_state_dict(init_model.encoder.state_dict())
    elif init_model is not None:
        model.load_state_dict(init_model.state_dict())
    model = model.to(device_)
    if device_.type == "cpu":
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        partial(
            lr_factor,
            total_steps=steps,
            warmup_fraction=settings.warmup_fraction,
            final_fraction=settings.final_lr_fraction,
        ),
    )
    rng = np.random.default_rng([seed, 1])
    step, best_iou, best_step = 0, -1.0, -1
    checkpoint_path = out_dir / "checkpoint.pt"
    log_path = out_dir / "log.jsonl"
    model_dir = out_dir / "model"
    settings_dict = asdict(settings)
    if resume and checkpoint_path.exists():
        state = torch.load(checkpoint_path, map_location=device_, weights_only=False)
        saved = state["settings"]
        for key in settings_dict:
            if key in RESUMABLE_CHANGES:
                continue
            # Checkpoints from before a setting existed were made with its default.
            saved_value = saved.get(key, TRAIN_DEFAULTS.get(key))
            if key in NESTED_TRAIN_DEFAULTS and isinstance(saved_value, dict):
                saved_value = {**NESTED_TRAIN_DEFAULTS[key], **saved_value}
            if saved_value != settings_dict[key]:
                raise TrainingError(
                    f"checkpoint {checkpoint_path} was made with {key}={saved.get(key)!r}, not "
                    f"{settings_dict[key]!r}; use another out_dir or resume=False"
                )
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        rng.bit_generator.state = state["numpy_rng"]
        torch.set_rng_state(state["torch_rng"])
        step, best_iou, best_step = state["step"], state["best_iou"], state["best_step"]
        logger.info("resumed from %s at step %d", checkpoint_path, step)
    elif log_path.exists():
        log_path.unlink()

    def save_checkpoint() -> None:
        tmp = checkpoint_path.with_suffix(".tmp")
        torch.save(
            {
                "step": step,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "numpy_rng": rng.bit_generator.state,
                "torch_rng": torch.get_rng_state(),
                "best_iou": best_iou,
                "best_step": best_step,
                "settings": settings_dict,
            },
            tmp,
        )
        tmp.replace(checkpoint_path)

    def model_config() -> dict[str, Any]:
        config = default_config(
            model_name, arch, encoder, settings.preprocess, settings.arch_options
        )
        # The preprocessing settings sit at the top level of the config; no second copy.
        training = {k: v for k, v in settings_dict.items() if k != "preprocess"}
        config["training"] = {**training, "best_step": best_step}
        return config

    model.train()
    start, first_step = time.perf_counter(), step
    bar = tqdm(total=steps, initial=step, desc="training", disable=not progress)
    running: list[float] = []
    while step < steps:
        x, y = make_batch(
            train_pool, batch_size, tile_size, rng, settings.augment, settings.preprocess
        )
        pixel_weight = loss_weights(y, settings)
        if pixel_weight is not None:
            pixel_weight = pixel_weight.to(device_)
        x, y = x.to(device_), y.to(device_)
        if device_.type == "cpu":
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast_context(device_, precision):
            logits = model(x)
        loss, parts = bce_dice_loss(logits, y, settings.dice_weight, pixel_weight)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        step += 1
        running.append(float(loss.detach()))
        bar.update()
        if step % log_every == 0 or step == steps:
            record = {
                "kind": "train",
                "step": step,
                "loss": float(np.mean(running)),
                **parts,
                "lr": scheduler.get_last_lr()[0],
                "elapsed_s": round(time.perf_counter() - start, 2),
            }
            _append_log(log_path, record)
            bar.set_postfix(loss=f"{record['loss']:.3f}")
            running = []
        if step % val_every == 0 or step == steps:
            scores = score_images(model, val_pool, settings.preprocess, device_, precision)
            model.train()
            iou = scores["particle_iou"]
            _append_log(
                log_path,
                {
                    "kind": "validation",
                    "step": step,
                    "particle_iou": iou,
                    "particle_dice": scores["particle_dice"],
                    "global_accuracy": scores["global_accuracy"],
                    "by_scenario": {k: v["particle_iou"] for k, v in scores["by_scenario"].items()},
                    **_negative_scene_record(scores),
                },
            )
            if iou > best_iou:
                best_iou, best_step = iou, step
                save_model_folder(model, model_dir, model_config(), {"validation": scores})
            bar.set_postfix(loss=f"{float(loss.detach()):.3f}", val_iou=f"{iou:.3f}")
            save_checkpoint()
        if stop_after_steps is not None and step - first_step >= stop_after_steps and step < steps:
            save_checkpoint()
            break
    bar.close()
    if step < steps:
        return {
            "finished": False,
            "steps": step,
            "model_dir": str(model_dir),
            "best_step": best_step,
            "best_val_particle_iou": best_iou,
        }

    # Final: tune the threshold on validation, score the best model on the held-out test split.
    test_scores = finalize_model(
        model_dir,
        cache_dir,
        split,
        settings.preprocess,
        device_,
        precision,
        extra_metrics={"best_step": best_step},
    )
    _append_log(
        log_path,
        {"kind": "test", "step": best_step, "particle_iou": test_scores["particle_iou"]},
    )
    return {
        "finished": True,
        "steps": step,
        "model_dir": str(model_dir),
        "best_step": best_step,
        "best_val_particle_iou": best_iou,
        "test": test_scores,
    }
