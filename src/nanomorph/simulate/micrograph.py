"""`simulate_micrograph`: one synthetic micrograph with its exact ground truth."""

from __future__ import annotations

import dataclasses
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
        ``shape_weights={"sphere": 1.0}``, ``dose=1e5``), plus ``n_particles``.

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
    if len(shape) != 2 or min(shape) < 8:
        raise SimulationParameterError(f"shape must be two sizes of at least 8 px, got {shape!r}")
    shape = (int(shape[0]), int(shape[1]))
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
    params["mixture"] = hard
    support, film = make_support(g_image, params, shape)
    scene = build_scene(g_scene, params, shape, support)
    ideal = _visible_image(g_image, params, scene, shape, support, film)
    blurred = probe_blur(
        ideal,
        params["psf_sigma_px"],
        params["psf_tail_fraction"],
        params["psf_tail_sigma_px"],
        params["psf_aspect"],
        g_detector,
    )
    image = record(
        blurred,
        g_detector,
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


def _visible_image(
    rng: np.random.Generator,
    params: dict[str, Any],
    scene: Any,
    shape: tuple[int, int],
    support: np.ndarray,
    film: np.ndarray,
) -> np.ndarray:
    """The ideal image, with the particles made at least as visible as a person labels them.

    Supports, residue and HAADF saturation can bury metal particles in background structure
    of the same scale; such particles would never be hand-labelled in a real micrograph, and
    training on them teaches the network to guess. The particles' own signal (the image minus
    the same image without metal) is therefore compared with the background's structure at the
    particle scale (the background minus its blur over one median diameter); where the median
    particle's signal is weaker than ``visibility_min`` times that structure, the particle
    signal is amplified to reach it. Labels are untouched.
    """
    state = rng.bit_generator.state
    ideal = form_image(rng, params, scene, shape, support, film)
    if not scene.mask.any() or params.get("visibility_min", 0) <= 0:
        return ideal
    after = rng.bit_generator.state
    rng.bit_generator.state = state
    bare = dataclasses.replace(scene, metal_nm=np.zeros_like(scene.metal_nm))
    background = form_image(rng, params, bare, shape, support, film)
    rng.bit_generator.state = after
    signal = ideal - background
    d_px = max(params["diameter_median_nm"] / params["pixel_size_nm"], 1.0)
    structure = background - ndimage.gaussian_filter(background, d_px)
    texture = float(np.std(structure[~scene.mask])) + 1e-6
    strength = float(np.median(np.abs(signal[scene.mask])))
    gain = params["visibility_min"] * texture / max(strength, 1e-9)
    if gain <= 1.0:
        return ideal
    params["visibility_gain"] = float(min(gain, 20.0))
    return np.clip(background + params["visibility_gain"] * signal, 0.0, None).astype(np.float32)
