"""Random imaging conditions per scenario.

`draw_params` returns a flat dict of every randomised scalar (and the shape weights); the renderer
reads only this dict and the random generator, so a caller can override any entry.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nanomorph.simulate.shapes import SHAPES

SCENARIOS = ("isolated", "overlapping", "ultrasmall_low_contrast", "haadf", "faceted", "mixed")

# The training mixture leans on the cases a plain simulator gets wrong on real micrographs.
MIXTURE_WEIGHTS = {
    "isolated": 0.10,
    "overlapping": 0.16,
    "ultrasmall_low_contrast": 0.18,
    "haadf": 0.24,
    "faceted": 0.10,
    "mixed": 0.22,
}


class UnknownScenarioError(ValueError):
    """A scenario name that is not in `SCENARIOS`."""


def _logu(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def _shape_weights(rng: np.random.Generator, family: str) -> dict[str, float]:
    if family == "round":
        w = {"sphere": 1.0, "ellipsoid": 0.4, "blob": 0.5, "icosahedron": 0.2, "cuboctahedron": 0.2}
    elif family == "faceted":
        w = {
            "cube": 1.0,
            "octahedron": 0.8,
            "cuboctahedron": 0.8,
            "truncated_octahedron": 0.8,
            "tetrahedron": 0.3,
            "icosahedron": 0.5,
            "decahedron": 0.6,
            "plate": 0.4,
            "rod": 0.3,
        }
        # one image usually has one dominant habit
        dominant = rng.choice(list(w))
        w[str(dominant)] *= rng.uniform(2.0, 10.0)
    else:  # any
        w = {s: float(rng.uniform(0.1, 1.0)) for s in SHAPES}
        w["sphere"] += 1.0
        w["blob"] += 0.5
    total = sum(w.values())
    return {k: round(v / total, 4) for k, v in w.items()}


def draw_params(
    rng: np.random.Generator,
    scenario: str,
    shape: tuple[int, int],
    pixel_size_nm: float | None = None,
    hard: bool = False,
    fixed: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Draw the imaging conditions of one micrograph.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of randomness.
    scenario : str
        One of `SCENARIOS`.
    shape : tuple of int
        Image height and width in pixels (limits the particle size in pixels).
    pixel_size_nm : float, optional
        Fix the pixel size; particle sizes in nm then follow from sizes in pixels.
    hard : bool
        Turn on the distractors more often (residue, textured support, low dose), as in the
        training mixture.
    fixed : dict, optional
        Settings chosen by the caller (``modality``, ``diameter_median_nm``); the settings that
        depend on them (support strength, contrast, dose floor) are drawn to match.

    Returns
    -------
    dict
        Every randomised setting, by name.

    Raises
    ------
    UnknownScenarioError
        If ``scenario`` is not one of `SCENARIOS`.
    """
    if scenario not in SCENARIOS:
        raise UnknownScenarioError(f"unknown scenario {scenario!r}; expected one of {SCENARIOS}")
    p: dict[str, Any] = {"scenario": scenario}
    u = rng.uniform
    max_px = min(shape) / 3.0
    low = scenario == "ultrasmall_low_contrast"
    # --- sizes: (nm range, px range) of the median particle
    nm_rng, px_rng = {
        "isolated": ((2.0, 80.0), (6.0, 80.0)),
        "overlapping": ((2.0, 60.0), (6.0, 60.0)),
        "ultrasmall_low_contrast": ((1.0, 3.0), (3.0, 14.0)),
        "haadf": ((1.0, 40.0), (4.0, 50.0)),
        "faceted": ((3.0, 100.0), (10.0, 120.0)),
        "mixed": ((1.0, 100.0), (3.0, 150.0)),
    }[scenario]
    px_hi = min(px_rng[1], max_px)
    if pixel_size_nm is None:
        d_nm = _logu(rng, *nm_rng)
        lo = max(px_rng[0], d_nm / 10.0)
        hi = max(min(px_hi, d_nm / 0.02), lo)
        if scenario == "faceted" and rng.random() < 0.4:
            # lattice-resolving pixel sizes (<= 0.1 nm) so the fringes show
            lo = max(lo, min(d_nm / 0.1, hi))
        d_px = _logu(rng, lo, hi) if hi > lo else lo
        px = d_nm / d_px
    else:
        px = float(pixel_size_nm)
        d_px = _logu(rng, px_rng[0], max(px_hi, px_rng[0] * 1.01))
        d_nm = float(np.clip(d_px * px, 0.8, 150.0))
    fixed = fixed or {}
    if "diameter_median_nm" in fixed:
        d_nm = float(fixed["diameter_median_nm"])
        if pixel_size_nm is None:
            px = float(np.clip(d_nm / d_px, 0.02, 10.0))
        d_px = d_nm / px
    p["pixel_size_nm"] = float(px)
    p["diameter_median_nm"] = float(d_nm)
    p["diameter_cv"] = float(u(0.03, 0.35) if scenario != "mixed" else u(0.1, 0.5))
    p["second_mode_fraction"] = (
        float(u(0.15, 0.5)) if scenario == "mixed" and rng.random() < 0.6 else 0.0
    )
    p["second_mode_ratio"] = float(_logu(rng, 1.8, 5.0) * (1 if rng.random() < 0.5 else -1))
    family = {
        "isolated": "round" if rng.random() < 0.7 else "any",
        "overlapping": "round" if rng.random() < 0.6 else "any",
        "ultrasmall_low_contrast": "round",
        "haadf": "round" if rng.random() < 0.7 else "any",
        "faceted": "faceted",
        "mixed": "any",
    }[scenario]
    p["shape_weights"] = _shape_weights(rng, family)
    # --- arrangement
    if scenario == "isolated":
        p["coverage_fraction"] = float(u(0.02, 0.15))
        p["cluster_fraction"] = 0.0
        p["overlap_allowed"] = False
    elif scenario == "overlapping":
        p["coverage_fraction"] = float(u(0.12, 0.4))
        p["cluster_fraction"] = float(u(0.4, 1.0))
        p["overlap_allowed"] = True
    else:
        p["coverage_fraction"] = float(u(0.02, 0.12) if low else u(0.03, 0.3))
        p["cluster_fraction"] = float(u(0.0, 0.6) if rng.random() < 0.6 else 0.0)
        p["overlap_allowed"] = bool(rng.random() < 0.5)
    p["cluster_overlap_max"] = float(u(0.0, 0.35))
    p["max_particles"] = int(max(20, 300 * shape[0] * shape[1] / 256**2))
    # --- modality and contrast
    p_haadf = {
        "isolated": 0.2,
        "overlapping": 0.4,
        "ultrasmall_low_contrast": 0.35,
        "haadf": 1.0,
        "faceted": 0.3,
        "mixed": 0.5,
    }[scenario]
    p["modality"] = "haadf" if rng.random() < p_haadf else "bf"
    p["modality"] = fixed.get("modality", p["modality"])
    # particle contrast of a median particle on thin film: BF 1 - exp(-d / mfp)
    contrast = u(0.05, 0.2) if low else (u(0.04, 0.6) if scenario == "mixed" else u(0.12, 0.65))
    p["mean_free_path_nm"] = float(-d_nm / np.log(1 - contrast))
    p["diffraction_contrast_spread"] = float(u(0.0, 0.5) if p["modality"] == "bf" else u(0.0, 0.15))
    p["haadf_saturation"] = float(u(1.5, 6.0))
    p["twin_probability"] = float(u(0.0, 0.5) if p["modality"] == "bf" else u(0.0, 0.15))
    p["internal_texture"] = float(u(0.0, 0.35) if rng.random() < 0.5 else 0.0)
    # supported particles are often flatter than they are wide (wetting): thinner, less contrast
    p["height_factor"] = float(u(0.5, 1.0) if rng.random() < 0.4 else 1.0)
    # --- support, film and distractors (thickness in units of the median particle's thickness)
    texture_p = {"haadf": 0.95, "mixed": 0.7}.get(scenario, 0.45 if hard else 0.3)
    if rng.random() < texture_p:
        # HAADF supports (oxide, thick carbon) can outshine small particles: up to 3x
        lo, hi = (0.15, 3.0) if p["modality"] == "haadf" else (0.05, 0.8)
        if hard and p["modality"] == "haadf" and rng.random() < 0.35:
            # Thick oxide grains (real Pd/silica, Cu/silica): the particles are faint bumps on
            # grains several times brighter than they are.
            lo, hi = 2.0, 8.0
        p["support_strength"] = float(_logu(rng, lo, hi))
    else:
        p["support_strength"] = 0.0
    # Ultrasmall particles usually sit on thin film, but in the training mixture half of them sit
    # on a full-strength support (real Pd, Pt, Ru on cloudy oxide).
    if low and not (hard and rng.random() < 0.5):
        p["support_strength"] *= 0.5
    grains = rng.random() < (0.7 if p["modality"] == "haadf" else 0.4)
    p["support_grain_nm"] = float(d_nm * _logu(rng, 2.0, 20.0))
    p["support_grain_cover"] = float(u(0.3, 2.5)) if grains else 0.0
    p["support_clumping"] = float(u(0.3, 1.0))
    p["support_fractal_weight"] = float(u(0.1, 1.0) if grains else 1.0)
    p["on_support"] = bool(grains and rng.random() < 0.7)
    p["support_scale_nm"] = float(_logu(rng, 3.0, 60.0))
    p["support_beta"] = float(u(2.5, 4.0))
    p["support_baseline"] = float(u(0.05, 1.0) if p["modality"] == "haadf" else u(0.0, 0.5))
    # Blur of a HAADF support's grains and texture (Gaussian sigma in median particle
    # diameters): the probe's shallow depth of field. Not drawn here, so the other draws stay
    # as they were; a training pool sets it per image (nanomorph.segment.train).
    p["support_defocus_blur"] = 0.0
    # Support grains as flat platelets and rods (alumina) instead of spheres; not drawn here
    # either, for the same reason (a training pool sets it per image).
    p["support_platelets"] = False
    # grain of the amorphous-carbon texture: the spatial period the contrast transfer passes
    # best, ~sqrt(wavelength * defocus): 0.3 nm near focus to ~2 nm at micrometre defocus
    p["speckle_scale_nm"] = float(_logu(rng, 0.3, 2.0))
    # amorphous carbon in bright field: a worm-like phase-contrast texture, strong near focus
    # (kept below the particle contrast, or the texture would hide the particles entirely)
    p["speckle_amplitude"] = float(
        min(u(0.02, 0.3), 0.9 * contrast) if p["modality"] == "bf" else u(0.0, 0.03)
    )
    p["speckle_bandwidth"] = float(u(0.25, 0.6))  # narrow: worm-like; wide: granular
    speckle_px = p["speckle_scale_nm"] / px
    if hard and p["modality"] == "bf" and d_px >= 6 * speckle_px and rng.random() < 0.3:
        # High-resolution bright field of particles on thick amorphous carbon (real Pt/C): the
        # carbon grain, a few pixels across, is stronger than the particle's mean contrast; only
        # the particle's extent, many grains wide, tells it apart.
        p["speckle_amplitude"] = float(min(contrast * u(0.8, 2.0), 0.45))
    p["hole"] = bool(rng.random() < (0.2 if not hard else 0.3))
    contam_p = 0.7 if hard or scenario in ("mixed", "haadf") else 0.4
    p["contamination_count"] = int(rng.integers(1, 25)) if rng.random() < contam_p else 0
    # kept below half a median particle's mean thickness: grey, never as dark as the metal
    p["contamination_strength"] = float(u(0.08, 0.35))
    p["contamination_size_ratio"] = float(_logu(rng, 0.6, 4.0))
    p["residue_fraction"] = float(u(0.05, 0.4)) if rng.random() < contam_p * 0.7 else 0.0
    p["residue_strength"] = float(u(0.04, 0.3))
    p["residue_scale_nm"] = float(_logu(rng, 2.0, 40.0))
    p["halo_strength"] = float(u(0.05, 0.4)) if rng.random() < 0.3 else 0.0
    p["halo_width_px"] = float(u(1.0, 4.0))
    # --- lattice and phase contrast
    fringe_p = 0.8 if scenario == "faceted" else 0.5
    p["lattice_fringe_probability"] = float(fringe_p if rng.random() < 0.8 else 0.0)
    p["lattice_fringe_amplitude"] = float(u(0.1, 0.6))
    p["fresnel_amplitude"] = float(
        (u(-0.8, 2.0) if rng.random() < 0.8 else 0.0) if p["modality"] == "bf" else 0.0
    )
    p["fresnel_sigma_px"] = float(u(0.7, 3.0))
    p["illumination_strength"] = float(u(0.0, 0.5))
    # --- detector
    # blur = instrument resolution (nm, matters at lattice-resolving pixel sizes) combined with
    # extra blur in pixels (defocus, drift, detector, downsampled exports)
    extra_px = _logu(rng, 0.3, 3.0) if rng.random() < 0.85 else u(0.0, 0.3)
    if px < 0.15:  # atomic-resolution images are recorded sharp
        extra_px = min(extra_px, _logu(rng, 0.2, 1.2))
    p["resolution_nm"] = float(_logu(rng, 0.02, 0.12))
    # ... but the median particle stays resolved: no wider than a third of its diameter
    p["psf_sigma_px"] = float(min(np.hypot(p["resolution_nm"] / px, extra_px), d_px / 3))
    p["psf_aspect"] = float(u(1.0, 1.6) if rng.random() < 0.25 else 1.0)  # astigmatism, drift
    p["psf_tail_fraction"] = float(u(0.0, 0.3)) if p["modality"] == "haadf" else float(u(0.0, 0.1))
    p["psf_tail_sigma_px"] = float(u(3.0, 12.0))
    p["dose"] = float(_logu(rng, 2.0, 150.0) if low else _logu(rng, 3.0, 3000.0))
    if hard and rng.random() < 0.3:
        p["dose"] = float(_logu(rng, 1.0, 15.0))
    p["read_noise"] = float(u(0.0, 3.0))
    # Dose floor: the median particle must stay detectable (matched-filter SNR >= snr_min,
    # counting shot noise on the local background and read noise); a simulator that draws
    # invisible particles teaches the network to guess.
    # The matched filter integrates over at most a 5×5 neighbourhood: a large particle at a
    # per-pixel SNR of 0.1 is "detectable" over its whole area but invisible to a person.
    area_px = min(np.pi / 4 * d_px**2, 25.0)
    height = p["height_factor"]
    if p["modality"] == "bf":
        mean_t = 2 / 3 * d_nm * height
        film = p["support_baseline"] * d_nm + 0.5 * p["support_strength"] * d_nm
        background = float(np.exp(-film / p["mean_free_path_nm"]))
        signal = background * (1 - np.exp(-mean_t / p["mean_free_path_nm"]))
    else:
        signal = 2 / 3 * height
        background = 0.02 + p["support_baseline"] + p["support_strength"]
    p["snr_min"] = float(u(7.0, 12.0) if low else (u(5.0, 10.0) if hard else u(6.0, 14.0)))
    snr2 = p["snr_min"] ** 2
    a = signal**2 * area_px
    dose_floor = (
        snr2 * background + np.sqrt(snr2**2 * background**2 + 4 * a * snr2 * p["read_noise"] ** 2)
    ) / (2 * a)
    p["dose"] = float(max(p["dose"], dose_floor))
    p["detector_sigma_px"] = float(u(0.0, 1.2))
    p["row_noise"] = float(u(0.0, 0.03)) if p["modality"] == "haadf" else 0.0
    p["output_dtype"] = str(rng.choice(["uint8", "uint16", "float32"], p=[0.5, 0.3, 0.2]))
    p["jpeg_quality"] = int(rng.integers(50, 96)) if rng.random() < 0.35 else None
    p["gain"] = float(_logu(rng, 0.2, 20.0))
    p["offset"] = float(u(0.0, 500.0))
    p["clip_fraction"] = float(u(0.0, 0.005))
    # Particle signal vs background structure at the particle scale (see micrograph.py): what
    # a person would still label; below it the particle signal is amplified.
    p["visibility_min"] = float(u(1.5, 4.0) if hard or low else u(2.0, 5.0))
    # Rose criterion per particle: signal over the shot noise averaged on the particle
    p["particle_snr_min"] = float(u(4.5, 6.5) if hard or low else u(5.0, 7.0))
    return p
