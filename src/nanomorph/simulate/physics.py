"""Scene layout and image formation: particles, support and distractors to an ideal intensity.

Contrast model (everything in "metal-equivalent thickness", nm):

* bright field: ``I = exp(-(T + S + C) / mfp) * (1 + a * sigma^2 * LoG(T + S + C) / mfp)`` —
  mass-thickness absorption with a mean free path ``mfp``, times a defocus (Fresnel) term from
  the transport-of-intensity equation, whose sign gives a bright (under-focus) or dark
  (over-focus) rim just outside every edge; amorphous carbon adds speckle;
* HAADF: ``I = 1 - exp(-(T + S + C) / (k * d))``: proportional to the projected thickness and
  the scattering power (Z-contrast), saturating for thick crystals.

``T`` is the metal (with per-particle diffraction contrast and lattice fringes), ``S`` the
support/film, ``C`` contamination and residue. Labels come only from the particle coverage,
computed before any blur, so the label edge is the projected particle edge.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from nanomorph.simulate import backgrounds as bg
from nanomorph.simulate.raster import Footprint, clip_to_image, rasterize
from nanomorph.simulate.shapes import make_solid


@dataclass
class Scene:
    """The ground truth of one field: metal thickness and labels, before imaging."""

    metal_nm: np.ndarray  # float32, metal-equivalent projected thickness incl. diffraction contrast
    mask: np.ndarray  # bool
    instances: np.ndarray  # uint32
    table: list[dict[str, Any]]


def _particle_sizes(rng: np.random.Generator, p: dict[str, Any], n: int) -> np.ndarray:
    med = p["diameter_median_nm"]
    sd = np.sqrt(np.log(1 + p["diameter_cv"] ** 2))
    d = med * np.exp(rng.normal(0, sd, size=n))
    if p["second_mode_fraction"] > 0:
        ratio = p["second_mode_ratio"]
        second = rng.random(n) < p["second_mode_fraction"]
        scale = abs(ratio) if ratio > 0 else 1 / abs(ratio)
        d[second] *= scale
    return np.clip(d, 0.8, 150.0)


def _layout(
    rng: np.random.Generator,
    p: dict[str, Any],
    shape: tuple[int, int],
    px: float,
    weight: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Particle centres (x, y in px) and diameters (nm): sparse, random or clustered.

    ``weight`` (0..1 per pixel) makes a free position acceptable with that probability.
    """

    def free_position(k: int) -> np.ndarray:
        for _ in range(8):
            cand = rng.uniform([-r_px[k] * 0.5] * 2, [w + r_px[k] * 0.5, h + r_px[k] * 0.5])
            if weight is None:
                return cand
            i = int(np.clip(cand[1], 0, h - 1))
            j = int(np.clip(cand[0], 0, w - 1))
            if rng.random() < weight[i, j] ** 0.5:
                return cand
        return cand

    h, w = shape
    med_px = p["diameter_median_nm"] / px
    mean_area = np.pi / 4 * (med_px**2) * (1 + p["diameter_cv"] ** 2)
    if p.get("n_particles") is not None:
        # asked for: 0 gives a scene of support and distractors only (a hard negative)
        n = int(np.clip(int(p["n_particles"]), 0, p["max_particles"]))
    else:
        n = int(np.clip(round(p["coverage_fraction"] * h * w / mean_area), 1, p["max_particles"]))
    d_nm = _particle_sizes(rng, p, n)
    r_px = d_nm / px / 2
    xy = np.zeros((n, 2))
    n_cluster = int(round(n * p["cluster_fraction"]))
    placed = 0
    # clustered particles: grow each cluster by attaching to a random member, touching or
    # overlapping it by up to cluster_overlap_max of the radius sum
    while placed < n_cluster:
        size = int(min(n_cluster - placed, rng.integers(2, 12)))
        xy[placed] = free_position(placed)
        for k in range(placed + 1, placed + size):
            for _ in range(20):
                j = rng.integers(placed, k)
                ang = rng.uniform(0, 2 * np.pi)
                overlap = rng.uniform(-0.05, p["cluster_overlap_max"])
                dist = (r_px[j] + r_px[k]) * (1 - overlap)
                cand = xy[j] + dist * np.array([np.cos(ang), np.sin(ang)])
                others = xy[placed:k]
                gap = np.hypot(*(others - cand).T) - (r_px[placed:k] + r_px[k]) * (
                    1 - p["cluster_overlap_max"]
                )
                if np.all(gap >= -1e-6) or p["overlap_allowed"]:
                    break
            xy[k] = cand
        placed += size
    for k in range(placed, n):
        for _ in range(30 if not p["overlap_allowed"] else 1):
            cand = free_position(k)
            if p["overlap_allowed"] or k == 0:
                break
            dist = np.hypot(*(xy[:k] - cand).T)
            if np.all(dist > (r_px[:k] + r_px[k]) * 1.15 + 1):
                break
        xy[k] = cand
    return xy, d_nm


def _fringes(
    rng: np.random.Generator, fp: Footprint, cx: float, cy: float, px: float, amp: float
) -> np.ndarray:
    """Lattice fringes (one or two crossed sets, d = 0.19–0.25 nm) on a particle's crop."""
    h, w = fp.coverage.shape
    y = np.arange(h)[:, None] + fp.row0 + 0.5 - cy
    x = np.arange(w)[None, :] + fp.col0 + 0.5 - cx
    mod = np.zeros((h, w), np.float32)
    sets = 1 if rng.random() < 0.6 else 2
    for _ in range(sets):
        d_px = rng.uniform(0.19, 0.25) / px
        th = rng.uniform(0, np.pi)
        mod += np.cos(2 * np.pi * (x * np.cos(th) + y * np.sin(th)) / d_px + rng.uniform(0, 6.3))
    return 1.0 + amp * mod / sets


def _twin(
    rng: np.random.Generator, fp: Footprint, cx: float, cy: float, spread: float
) -> np.ndarray:
    """A factor that differs on the two sides of a random line through the particle."""
    h, w = fp.coverage.shape
    y = np.arange(h)[:, None] + fp.row0 + 0.5 - cy
    x = np.arange(w)[None, :] + fp.col0 + 0.5 - cx
    th = rng.uniform(0, np.pi)
    offset = rng.uniform(-0.4, 0.4) * max(h, w) / 2
    side = (x * np.cos(th) + y * np.sin(th)) > offset
    ratio = float(np.exp(rng.normal(0, max(spread, 0.1) * 1.5)))
    return np.where(side, np.float32(ratio), np.float32(1.0)).astype(np.float32)


def build_scene(
    rng: np.random.Generator,
    p: dict[str, Any],
    shape: tuple[int, int],
    support: np.ndarray | None = None,
) -> Scene:
    """Place and rasterise the particles; return metal thickness, mask, instances and truth.

    With ``support`` given and ``p["on_support"]``, particles are placed preferentially where
    the support is thick (metal sits on the support, not in the vacuum between grains).
    """
    px = p["pixel_size_nm"]
    h, w = shape
    weight = None
    if support is not None and p.get("on_support") and float(support.max()) > 0:
        weight = support / float(support.max())
    xy, d_nm = _layout(rng, p, shape, px, weight)
    kinds = list(p["shape_weights"])
    weights = np.array([p["shape_weights"][k] for k in kinds], float)
    weights /= weights.sum()
    order = rng.permutation(len(d_nm))  # drawing order = height: later particles lie on top
    metal = np.zeros(shape, np.float32)
    uncovered = np.ones(shape, np.float32)
    cov_sum = np.zeros(shape, np.float32)
    max_cov = np.zeros(shape, np.float32)
    max_id = np.zeros(shape, np.uint32)
    inst = np.zeros(shape, np.uint32)
    resolvable = px <= 0.25 / 2.3
    records = []
    for rank, idx in enumerate(order, start=1):
        kind = str(rng.choice(kinds, p=weights))
        solid = make_solid(kind, d_nm[idx] / px, rng)
        cx, cy = xy[idx]
        fp = rasterize(solid, cx, cy)
        sl = clip_to_image(fp, shape)
        excite = float(np.exp(rng.normal(0, p["diffraction_contrast_spread"])))
        if sl is None:
            continue
        isl, csl = sl
        cov = fp.coverage[csl]
        t = fp.thickness_px[csl] * np.float32(px * excite * p["height_factor"])
        if rng.random() < p["twin_probability"]:
            # a twin boundary or grain boundary: the two crystals diffract differently, so the
            # particle shows a straight contrast step inside (bright field mostly)
            t = t * _twin(rng, fp, cx, cy, p["diffraction_contrast_spread"])[csl]
        if resolvable and rng.random() < p["lattice_fringe_probability"]:
            amp = p["lattice_fringe_amplitude"] * rng.uniform(0.3, 1.0)
            t = t * _fringes(rng, fp, cx, cy, px, amp)[csl]
        metal[isl] += t
        uncovered[isl] *= 1.0 - cov
        cov_sum[isl] += cov
        better = cov > max_cov[isl]
        max_cov[isl] = np.where(better, cov, max_cov[isl])
        max_id[isl] = np.where(better, np.uint32(rank), max_id[isl])
        inst[isl] = np.where(cov >= 0.5, np.uint32(rank), inst[isl])
        outside = float(fp.coverage.sum() - cov.sum())
        records.append(dict(rank=rank, kind=kind, isl=isl, cov=cov, outside=outside))
    mask = (1.0 - uncovered) >= 0.5
    # pixels of the union that no single particle covers by half (a seam between touching
    # particles) go to the particle covering most of them
    seam = mask & (inst == 0)
    inst[seam] = max_id[seam]
    inst[~mask] = 0
    table = []
    present = np.zeros(len(order) + 2, bool)
    present[np.unique(inst)] = True
    for r in records:
        cov, isl = r["cov"], r["isl"]
        own = cov >= 0.5
        if not own.any() and not present[r["rank"]]:
            continue
        area_px = float(cov.sum())
        rows = np.arange(isl[0].start, isl[0].stop)[:, None] + 0.5
        cols = np.arange(isl[1].start, isl[1].stop)[None, :] + 0.5
        on_border = (
            (isl[0].start == 0 and cov[0].max() > 0)
            or (isl[1].start == 0 and cov[:, 0].max() > 0)
            or (isl[0].stop == h and cov[-1].max() > 0)
            or (isl[1].stop == w and cov[:, -1].max() > 0)
        )
        table.append(
            dict(
                rank=r["rank"],
                shape=r["kind"],
                area_nm2=area_px * px * px,
                equivalent_diameter_nm=2 * np.sqrt(area_px / np.pi) * px,
                centroid_x_nm=float((cov * cols).sum() / area_px) * px,
                centroid_y_nm=float((cov * rows).sum() / area_px) * px,
                touches_edge=bool(on_border or r["outside"] > 1e-3),
                overlaps=bool(np.any((cov > 0) & (cov_sum[isl] - cov > 0) & (cov_sum[isl] > 1.02))),
            )
        )
    return Scene(metal, mask, inst, table)


def make_support(
    rng: np.random.Generator, p: dict[str, Any], shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Support and film thickness (metal-equivalent nm) and the film map (1 film, 0 vacuum)."""
    px = p["pixel_size_nm"]
    d_med = p["diameter_median_nm"]
    film = np.ones(shape, np.float32)
    if p["hole"]:
        film = 1.0 - bg.hole_mask(rng, shape)
    support = np.float32(p["support_baseline"] * d_med) * film
    if p["support_strength"] > 0:
        amount = np.float32(p["support_strength"] * d_med)
        thin = support
        if p["support_grain_cover"] > 0:
            # clumped grains: clouds with gaps, as oxide and carbon-black supports look;
            # or flat crystallites with straight edges, as alumina looks
            build = bg.platelet_aggregate if p.get("support_platelets") else bg.grain_aggregate
            grains = build(
                rng,
                shape,
                0.5 * p["support_grain_nm"] / px,
                p["support_grain_cover"],
                p["support_clumping"],
            )
            # in units of the thickest piles, so support_strength is the support's peak
            grains /= max(float(np.quantile(grains, 0.995)), 1e-6)
            support = support + amount * grains * film
        scale_px = p["support_scale_nm"] / px
        tex = bg.fractal_noise(rng, shape, p["support_beta"], min(scale_px, 4 * max(shape)))
        # amorphous supports vary little at the scale of a particle: without this smoothing the
        # texture would be particle-sized clutter that no observer could tell from metal
        tex = bg.gaussian(tex, 0.25 * d_med / px)
        tex = tex / max(float(tex.std()), 1e-6)
        tex = np.exp(0.35 * tex)  # thickness is positive and skewed
        tex = (tex - tex.min()) / max(float(tex.std()), 1e-6)
        support = support + amount * np.float32(p["support_fractal_weight"] * 0.5) * tex * film
        defocus = float(p.get("support_defocus_blur", 0.0))
        if defocus > 0 and p["modality"] == "haadf":
            # A focused STEM probe's depth of field is a few nm: the particles on the surface
            # are sharp, the tens of nm of oxide grains under them are not.  (The thin film
            # under everything is in focus with the particles.)
            support = thin + bg.gaussian(support - thin, defocus * d_med / px) * film
    return support.astype(np.float32), film


def form_image(
    rng: np.random.Generator,
    p: dict[str, Any],
    scene: Scene,
    shape: tuple[int, int],
    support: np.ndarray,
    film: np.ndarray,
) -> np.ndarray:
    """Ideal (noise-free) intensity of the scene, about 1 for the unobstructed beam (BF) or for a
    median particle (HAADF)."""
    px = p["pixel_size_nm"]
    d_med = p["diameter_median_nm"]
    contam = np.zeros(shape, np.float32)
    if p["contamination_count"]:
        r = 0.5 * d_med * p["contamination_size_ratio"] / px
        contam += bg.soft_blobs(
            rng,
            shape,
            p["contamination_count"],
            (max(r * 0.5, 1.5), max(r * 1.5, 2.0)),
            (0.15, 0.5),
        )
    if p["residue_fraction"] > 0:
        res = bg.residue_patches(
            rng,
            shape,
            max(p["residue_scale_nm"] / px, 1.5),
            p["residue_fraction"],
            rng.uniform(0.1, 0.6),
        )
        contam = contam * p["contamination_strength"] + res * p["residue_strength"]
    else:
        contam *= p["contamination_strength"]
    contam *= d_med
    if p["halo_strength"] > 0:
        contam += (
            p["halo_strength"]
            * d_med
            * bg.gaussian(scene.mask.astype(np.float32), p["halo_width_px"])
        )
    metal = scene.metal_nm
    if p["internal_texture"] > 0:
        # strain, bend contours and surface roughness: mottled contrast inside particles
        scale = max(0.15 * d_med / px, 1.0)
        metal = metal * (1.0 + p["internal_texture"] * bg.smooth_field(rng, shape, scale))
        metal = np.clip(metal, 0.0, None)
    total = metal + support + contam
    if p["modality"] == "bf":
        mfp = p["mean_free_path_nm"]
        intensity = np.exp(-total / mfp)
        if p["fresnel_amplitude"] != 0:
            s = p["fresnel_sigma_px"]
            lap = ndimage.gaussian_laplace(total, s) * (s * s)
            intensity *= 1.0 + p["fresnel_amplitude"] * lap / mfp
        if p["speckle_amplitude"] > 0:
            speck = bg.bandpass_noise(
                rng, shape, p["speckle_scale_nm"] / px, p["speckle_bandwidth"]
            )
            intensity *= 1.0 + p["speckle_amplitude"] * speck * (0.3 + 0.7 * film)
    else:
        k = p["haadf_saturation"]
        intensity = 1.0 - np.exp(-total / (k * d_med))
        intensity = intensity / (1.0 - np.exp(-1.0 / k))  # a median particle alone gives ~1
        if p["speckle_amplitude"] > 0:
            speck = bg.bandpass_noise(
                rng, shape, p["speckle_scale_nm"] / px, p["speckle_bandwidth"]
            )
            intensity += p["speckle_amplitude"] * speck * film * 0.5
        intensity += 0.02  # dark reference: detector never reads exactly zero
    if p["illumination_strength"] > 0:
        intensity *= bg.illumination(rng, shape, p["illumination_strength"])
    return np.clip(intensity, 0.0, None).astype(np.float32)
