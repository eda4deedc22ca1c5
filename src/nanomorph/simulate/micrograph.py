"""`simulate_micrograph`: one synthetic micrograph with its exact ground truth."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import ndimage

from nanomorph.simulate.detector import probe_blur, record
from nanomorph.simulate.physics import build_scene, form_image, make_support
from nanomorph.simulate.scenarios import (
    MIXTURE_WEIGHTS,
    SCENARIOS,
    UnknownScenarioError,
    draw_params,
)

PARTICLE_TABLE_COLUMNS = (
    "particle_id",
    "shape",
    "area_nm2",
    "equivalent_diameter_nm",
    "centroid_x_nm",
    "centroid_y_nm",
    "touches_edge",
    "overlaps",
)


class SimulationParameterError(ValueError):
    """An override or argument of `simulate_micrograph` that the simulator cannot use."""


@dataclass
class SimulatedMicrograph:
    """A synthetic micrograph and its exact ground truth.

    Attributes
    ----------
    image : numpy.ndarray
        The recorded image, float32 2-D (values of the simulated bit depth, see
        ``params["output_dtype"]``).
    mask : numpy.ndarray
        bool, True where the projected particle outline covers at least half of the pixel.
    instances : numpy.ndarray
        uint32 particle ids (0 = background); where particles overlap, the upper one.
    particles : pandas.DataFrame
        One row per particle visible in the field (`PARTICLE_TABLE_COLUMNS`); ``area_nm2`` is
        the particle's own projected area inside the field, from its rendered coverage.
    pixel_size_nm : float
        Pixel size in nm.
    modality : str
        ``"bf"`` (dark particles on a bright background) or ``"haadf"`` (bright on dark).
    scenario : str
        The scenario the conditions were drawn from.
    params : dict
        Every randomised setting (see `nanomorph.simulate.scenarios.draw_params`).
    """

    image: np.ndarray
    mask: np.ndarray
    instances: np.ndarray
    particles: pd.DataFrame
    pixel_size_nm: float
    modality: str
    scenario: str
    params: dict[str, Any] = field(default_factory=dict)


def _generators(seed_or_rng: int | np.random.Generator | np.random.SeedSequence) -> list:
    if isinstance(seed_or_rng, np.random.Generator):
        return seed_or_rng.spawn(4)
    if isinstance(seed_or_rng, np.random.SeedSequence):
        seq = seed_or_rng
    else:
        seq = np.random.SeedSequence(int(seed_or_rng))
    return [np.random.default_rng(s) for s in seq.spawn(4)]


def checked_shape(shape: Sequence[int]) -> tuple[int, int]:
    """``shape`` as two ints; `SimulationParameterError` unless it is two sizes of 8 px or more."""
    if len(shape) != 2 or min(shape) < 8:
        raise SimulationParameterError(f"shape must be two sizes of at least 8 px, got {shape!r}")
    return int(shape[0]), int(shape[1])


def simulate_micrograph(
    seed_or_rng: int | np.random.Generator | np.random.SeedSequence,
    shape: tuple[int, int] = (512, 512),
    pixel_size_nm: float | None = None,
    scenario: str | None = None,
    **overrides: Any,
) -> SimulatedMicrograph:
    """Simulate one TEM/STEM micrograph of metal nanoparticles with exact labels.

    Parameters
    ----------
    seed_or_rng : int, numpy.random.SeedSequence or numpy.random.Generator
        Seed: the same seed (and arguments) gives the same micrograph.
    shape : tuple of int
        Height and width in pixels.
    pixel_size_nm : float, optional
        Fix the pixel size (nm); otherwise drawn between 0.02 and 10 nm so particles span
        about 3 to a few hundred pixels.
    scenario : str, optional
        One of `SCENARIOS`; None draws one from the training mixture, which weights the hard
        cases (residue, textured supports, low contrast, HAADF, mixed sizes).
    **overrides
        Replace any drawn setting by name (keys of ``params``, e.g. ``modality="haadf"``,
        ``shape_weights={"sphere": 1.0}``, ``dose=1e5``), plus ``n_particles`` (0: a
        scene without particles, its support and distractors only).

    Returns
    -------
    SimulatedMicrograph
        Image, mask, instance labels, particle table and the settings used.

    Raises
    ------
    SimulationParameterError
        If ``shape`` is not two positive sizes, the pixel size is not positive, or an override
        names no setting.
    UnknownScenarioError
        If ``scenario`` is not one of `SCENARIOS`.

    Examples
    --------
    >>> sim = simulate_micrograph(0, shape=(128, 128), scenario="isolated")
    >>> sim.image.shape, sim.mask.dtype.name
    ((128, 128), 'bool')
    """
    shape = checked_shape(shape)
    if pixel_size_nm is not None and not pixel_size_nm > 0:
        raise SimulationParameterError(f"pixel_size_nm must be positive, got {pixel_size_nm!r}")
    g_params, g_scene, g_image, g_detector = _generators(seed_or_rng)
    hard = scenario is None
    if scenario is None:
        names = list(MIXTURE_WEIGHTS)
        scenario = str(g_params.choice(names, p=list(MIXTURE_WEIGHTS.values())))
    elif scenario not in SCENARIOS:
        raise UnknownScenarioError(f"unknown scenario {scenario!r}; expected one of {SCENARIOS}")
    params = draw_params(g_params, scenario, shape, pixel_size_nm, hard=hard, fixed=overrides)
    params["n_particles"] = None
    unknown = sorted(set(overrides) - set(params))
    if unknown:
        raise SimulationParameterError(
            f"unknown simulation setting(s) {unknown}; known: {sorted(params)}"
        )
    params.update(overrides)
    if params["modality"] not in ("bf", "haadf"):
        raise SimulationParameterError(
            f"modality must be 'bf' or 'haadf', got {params['modality']!r}"
        )
    count = params["n_particles"]
    if count is not None and not (isinstance(count, int | np.integer) and count >= 0):
        raise SimulationParameterError(f"n_particles must be a whole number >= 0, got {count!r}")
    params["mixture"] = hard
    support, film = make_support(g_image, params, shape)
    scene = build_scene(g_scene, params, shape, support)
    parts = _visible_parts(g_image, params, scene, shape, support, film)
    detector_state = g_detector.bit_generator.state
    image = _record(parts.image(), params, g_detector)
    # The analytic floor above cannot see everything a person sees (JPEG, saturation, the
    # 8-bit stretch, neighbours): check each particle in the recorded image and, where it is
    # still below the floor, amplify it and record again with the same noise.
    if parts.gains is not None and params.get("particle_snr_min", 0) > 0:
        for _ in range(2):
            snr = particle_snr(image, scene.instances, scene.mask, params["modality"])
            boost = np.clip(params["particle_snr_min"] / np.maximum(snr, 0.25), 1.0, 4.0)
            boost[~np.isfinite(snr)] = 1.0
            low = boost > 1.05
            if not low.any():
                break
            parts.gains = np.minimum(parts.gains * boost, 20.0)
            g_detector.bit_generator.state = detector_state
            image = _record(parts.image(), params, g_detector)
        present = np.bincount(scene.instances.ravel(), minlength=parts.gains.size)[1:] > 0
        if present.any():
            params["visibility_gain"] = float(np.median(parts.gains[1:][present]))
            params["visibility_gain_max"] = float(parts.gains[1:][present].max())
            params["visibility_amplified_fraction"] = float(np.mean(parts.gains[1:][present] > 1.0))
    # ids renumbered 1..n in drawing order (upper particles have larger ids)
    ranks = [r["rank"] for r in scene.table]
    lut = np.zeros(max(ranks + [int(scene.instances.max(initial=0))]) + 1, np.uint32)
    for new, old in enumerate(ranks, start=1):
        lut[old] = new
    instances = lut[scene.instances]
    rows = [
        {**{k: v for k, v in r.items() if k != "rank"}, "particle_id": i}
        for i, r in enumerate(scene.table, 1)
    ]
    particles = pd.DataFrame(rows, columns=list(PARTICLE_TABLE_COLUMNS))
    particles = particles.astype({"particle_id": "int64", "touches_edge": bool, "overlaps": bool})
    return SimulatedMicrograph(
        image=image.astype(np.float32),
        mask=scene.mask,
        instances=instances,
        particles=particles,
        pixel_size_nm=float(params["pixel_size_nm"]),
        modality=params["modality"],
        scenario=scenario,
        params=params,
    )


@dataclass
class _Parts:
    """The ideal image as background + per-particle gain × particle signal."""

    ideal: np.ndarray
    background: np.ndarray | None = None
    signal: np.ndarray | None = None
    nearest_id: np.ndarray | None = None
    gains: np.ndarray | None = None

    def image(self) -> np.ndarray:
        if self.gains is None:
            return self.ideal
        gain_field = self.gains[self.nearest_id].astype(np.float32)
        return np.clip(self.background + gain_field * self.signal, 0.0, None).astype(np.float32)


def _record(ideal: np.ndarray, params: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
    blurred = probe_blur(
        ideal,
        params["psf_sigma_px"],
        params["psf_tail_fraction"],
        params["psf_tail_sigma_px"],
        params["psf_aspect"],
        rng,
    )
    return record(
        blurred,
        rng,
        dose=params["dose"],
        read_noise=params["read_noise"],
        detector_sigma_px=params["detector_sigma_px"],
        row_noise=params["row_noise"],
        gain=params["gain"],
        offset=params["offset"],
        output_dtype=params["output_dtype"],
        jpeg_quality=params["jpeg_quality"],
        clip_fraction=params["clip_fraction"],
    )


def particle_snr(
    image: np.ndarray, instances: np.ndarray, mask: np.ndarray, modality: str, ring_px: int = 4
) -> np.ndarray:
    """How clearly each particle stands out of its surroundings in a recorded image.

    :func:`nanomorph.measure.contrast_to_surroundings` (the Rose criterion against a ring
    ``ring_px`` wide), signed so that it is positive when the particle has the contrast of its
    modality (dark in bright field, bright in HAADF).

    Returns
    -------
    ndarray
        float, indexed by instance id (index 0 and particles without a ring: NaN).
    """
    from nanomorph.measure import contrast_to_surroundings

    sign = 1.0 if modality == "haadf" else -1.0
    return sign * contrast_to_surroundings(image, instances, mask, ring_px)


def _visible_parts(
    rng: np.random.Generator,
    params: dict[str, Any],
    scene: Any,
    shape: tuple[int, int],
    support: np.ndarray,
    film: np.ndarray,
) -> _Parts:
    """The ideal image, with every particle made at least as visible as a person labels it.

    Supports, residue, HAADF saturation and low doses can bury metal particles; such particles
    would never be hand-labelled in a real micrograph, and training on them teaches the network
    to guess (or, in a test set, scores a segmenter on particles nobody could find). Each
    particle's own signal (the image minus the same image without metal, blurred by the probe)
    is compared, particle by particle, with what hides it:

    * background structure at the particle scale (the background blurred over a quarter of a
      median diameter minus its blur over one diameter), which must be exceeded
      ``visibility_min`` times;
    * shot and read noise averaged over the particle (at most a 5×5 patch), which must be
      exceeded ``particle_snr_min`` times (the Rose criterion).

    A particle below either floor has its signal (including its Fresnel fringes and halo: every
    pixel takes the gain of the nearest particle) amplified to reach it, by at most 20×; the
    caller then checks the recorded image with `particle_snr`. Labels are untouched.
    """
    state = rng.bit_generator.state
    ideal = form_image(rng, params, scene, shape, support, film)
    if not scene.mask.any() or params.get("visibility_min", 0) <= 0:
        return _Parts(ideal)
    after = rng.bit_generator.state
    rng.bit_generator.state = state
    bare = dataclasses.replace(scene, metal_nm=np.zeros_like(scene.metal_nm))
    background = form_image(rng, params, bare, shape, support, film)
    rng.bit_generator.state = after
    signal = ideal - background
    d_px = max(params["diameter_median_nm"] / params["pixel_size_nm"], 1.0)
    # Structure between the scale of a particle and the field: a person sees a particle through
    # grain much finer than itself (carbon speckle averages out over its area), so only the band
    # from a quarter diameter (about a disc average) to one diameter competes with it.
    fine = ndimage.gaussian_filter(background, max(d_px / 4.0, 0.5))
    structure = fine - ndimage.gaussian_filter(background, d_px)
    texture = float(np.std(structure[~scene.mask])) + 1e-6

    ids = np.asarray(scene.instances, dtype=np.int64)
    n_ids = int(ids.max()) + 1
    sigma = float(params.get("psf_sigma_px", 0.0))
    observed = np.abs(ndimage.gaussian_filter(signal, sigma) if sigma > 0.05 else signal)
    flat = ids.ravel()
    count = np.bincount(flat, minlength=n_ids).astype(float)
    strength = np.bincount(flat, weights=observed.ravel(), minlength=n_ids) / np.maximum(count, 1)
    level = np.bincount(flat, weights=background.ravel(), minlength=n_ids) / np.maximum(count, 1)
    dose = float(params["dose"])
    read = float(params.get("read_noise", 0.0))
    shot = np.sqrt(np.clip(level, 0, None) * dose + read**2) / dose
    noise = shot / np.sqrt(np.clip(count, 1, 25))
    required = np.hypot(
        params["visibility_min"] * texture, params.get("particle_snr_min", 0.0) * noise
    )
    gains = np.clip(required / np.maximum(strength, 1e-9), 1.0, 20.0)
    gains[0] = 1.0
    nearest = ndimage.distance_transform_edt(ids == 0, return_distances=False, return_indices=True)
    return _Parts(
        ideal,
        background=background,
        signal=signal,
        nearest_id=ids[nearest[0], nearest[1]],
        gains=gains,
    )


def check_settings(
    overrides: dict[str, Any],
    scenarios: Sequence[str] = SCENARIOS,
    pixel_size_nm: float | None = None,
) -> None:
    """Refuse, before a long run, settings `simulate_micrograph` cannot use.

    A tiny image of every scenario in `scenarios` draws every setting the full-size ones use, so
    an unknown name or a value of the wrong kind fails here and not after hours of images.

    Raises
    ------
    SimulationParameterError
        With the simulator's own message.
    UnknownScenarioError
        If a scenario name is not one of `SCENARIOS`.
    """
    for scenario in scenarios:
        try:
            simulate_micrograph(
                0, (32, 32), pixel_size_nm=pixel_size_nm, scenario=scenario, **overrides
            )
        except (SimulationParameterError, UnknownScenarioError):
            raise
        except (TypeError, ValueError) as exc:  # a value of the wrong kind for its setting
            raise SimulationParameterError(str(exc)) from None
