"""Scenes without particles that a segmenter must leave empty (hard negatives).

On real micrographs the network's false particles come from three things a plain simulator shows
only beside particles: the grain of amorphous carbon in high-resolution bright field, textured
oxide or carbon supports, and grey organic residue and contamination.  A training pool with a
share of scenes that hold only these teaches the network that texture alone is not a particle.

All of them are bright field: each image is normalised on its own, so in a particle-free HAADF
scene the brightest support grains or residue are stretched to a particle's brightness, and
such a scene would teach the network to miss bright particles on a dark field.
"""

from __future__ import annotations

import numpy as np

from nanomorph.simulate.micrograph import SimulatedMicrograph, simulate_micrograph
from nanomorph.simulate.scenarios import _logu

#: Kinds of particle-free scene and how often each is drawn.
NEGATIVE_KINDS = {"carbon_film": 0.6, "textured_support": 0.2, "residue": 0.2}

#: The ``scenario`` of every particle-free scene (kept apart in per-scenario metrics).
NEGATIVE_SCENARIO = "negative"


def simulate_negative(
    seed: int | np.random.SeedSequence,
    shape: tuple[int, int] = (512, 512),
    kind: str | None = None,
) -> SimulatedMicrograph:
    """Simulate a micrograph of support and distractors only, with an empty mask.

    Parameters
    ----------
    seed : int or numpy.random.SeedSequence
        The same seed (and arguments) gives the same scene.
    shape : tuple of int
        Height and width in pixels.
    kind : str, optional
        One of `NEGATIVE_KINDS`: ``"carbon_film"`` (bright-field amorphous carbon at
        lattice-resolving pixel sizes, 0.02–0.1 nm/px, its grain strong), ``"textured_support"``
        (grainy oxide or thick carbon), ``"residue"`` (organic residue and contamination blobs
        over much of the field); all bright field. None draws one by `NEGATIVE_KINDS`.

    Returns
    -------
    SimulatedMicrograph
        ``scenario`` is `NEGATIVE_SCENARIO`, ``params["negative_kind"]`` the kind; the mask
        is all False and the particle table empty.

    Raises
    ------
    ValueError
        If ``kind`` is not one of `NEGATIVE_KINDS`.

    Examples
    --------
    >>> sim = simulate_negative(0, shape=(64, 64), kind="residue")
    >>> bool(sim.mask.any()), len(sim.particles)
    (False, 0)
    """
    seq = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(int(seed))
    kind_seq, scene_seq = seq.spawn(2)
    rng = np.random.default_rng(kind_seq)
    if kind is None:
        kind = str(rng.choice(list(NEGATIVE_KINDS), p=list(NEGATIVE_KINDS.values())))
    elif kind not in NEGATIVE_KINDS:
        raise ValueError(f"unknown negative kind {kind!r}; expected one of {tuple(NEGATIVE_KINDS)}")
    u = rng.uniform
    pixel_size_nm = None
    settings: dict = {"n_particles": 0, "modality": "bf"}
    if kind == "carbon_film":
        pixel_size_nm = _logu(rng, 0.02, 0.1)
        settings.update(
            speckle_scale_nm=_logu(rng, 0.3, 1.5),
            speckle_amplitude=u(0.05, 0.45),
            speckle_bandwidth=u(0.25, 0.6),
        )
    elif kind == "textured_support":
        settings.update(
            support_strength=_logu(rng, 0.1, 0.8),
            support_grain_cover=u(0.5, 2.5),
            support_fractal_weight=u(0.1, 1.0),
        )
    else:
        settings.update(
            residue_fraction=u(0.2, 0.6),
            residue_strength=u(0.05, 0.3),
            contamination_count=int(rng.integers(5, 30)),
            contamination_strength=u(0.1, 0.35),
        )
    sim = simulate_micrograph(scene_seq, shape, pixel_size_nm=pixel_size_nm, **settings)
    sim.params["negative_kind"] = kind
    sim.params["drawn_scenario"] = sim.scenario
    sim.scenario = NEGATIVE_SCENARIO
    return sim
