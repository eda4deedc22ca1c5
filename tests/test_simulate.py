"""Tests of the micrograph simulator: exact labels, physics polarity, determinism, files."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest
import tifffile
from PIL import Image

from nanomorph.simulate import (
    NEGATIVE_KINDS,
    NEGATIVE_SCENARIO,
    PARTICLE_TABLE_COLUMNS,
    SCENARIOS,
    SimulationParameterError,
    UnknownScenarioError,
    backgrounds,
    simulate_micrograph,
    simulate_negative,
    write_dataset,
)
from nanomorph.simulate.raster import rasterize
from nanomorph.simulate.shapes import SHAPES, Solid, make_solid

CLEAN = dict(
    contamination_count=0,
    residue_fraction=0.0,
    halo_strength=0.0,
    support_strength=0.0,
    hole=False,
    jpeg_quality=None,
    output_dtype="float32",
    dose=1e4,
    illumination_strength=0.0,
)


def test_same_seed_same_micrograph_and_different_seed_differs() -> None:
    a = simulate_micrograph(7, (64, 64), scenario="mixed")
    b = simulate_micrograph(7, (64, 64), scenario="mixed")
    c = simulate_micrograph(8, (64, 64), scenario="mixed")
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.instances, b.instances)
    pd.testing.assert_frame_equal(a.particles, b.particles)
    assert a.params == b.params
    assert not np.array_equal(a.image, c.image)


@pytest.mark.parametrize("scenario", [*SCENARIOS, None])
def test_every_scenario_gives_consistent_arrays(scenario: str | None) -> None:
    sim = simulate_micrograph(1, (72, 80), scenario=scenario)
    assert sim.image.shape == sim.mask.shape == sim.instances.shape == (72, 80)
    assert sim.image.dtype == np.float32 and np.isfinite(sim.image).all()
    assert sim.mask.dtype == bool and sim.instances.dtype == np.uint32
    assert list(sim.particles.columns) == list(PARTICLE_TABLE_COLUMNS)
    assert sim.modality in ("bf", "haadf")
    assert sim.scenario in SCENARIOS
    assert 0.02 <= sim.pixel_size_nm <= 10
    # the instance map covers exactly the mask, and every id in it is in the table
    np.testing.assert_array_equal(sim.instances > 0, sim.mask)
    ids = set(np.unique(sim.instances)) - {0}
    assert ids <= set(sim.particles["particle_id"])


def test_sphere_area_matches_pi_r_squared() -> None:
    # 10 nm spheres at 1 nm/px: the table's area is the analytic projected area and the
    # mask is within the quantisation error of a 10 px disc
    checked = 0
    for seed in range(6):
        sim = simulate_micrograph(
            seed,
            (64, 64),
            pixel_size_nm=1.0,
            scenario="isolated",
            shape_weights={"sphere": 1.0},
            diameter_median_nm=10.0,
            diameter_cv=0.0,
            n_particles=1,
        )
        row = sim.particles.iloc[0]
        if row["touches_edge"]:
            continue
        checked += 1
        assert row["area_nm2"] == pytest.approx(np.pi * 25.0, abs=0.3)
        assert row["equivalent_diameter_nm"] == pytest.approx(10.0, abs=0.02)
        assert abs(sim.mask.sum() - np.pi * 25.0) <= 0.2 * np.pi * 10.0
    assert checked >= 3


def test_rasterized_face_on_cube_is_an_exact_square() -> None:
    normals = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1.0]])
    cube = Solid("cube", 12.0, normals=normals, offsets=np.full(6, 5.0))  # 10 px side
    fp = rasterize(cube, 20.25, 15.6)
    assert fp.coverage.sum() == pytest.approx(100.0, abs=0.05)
    inside = fp.coverage == 1.0
    np.testing.assert_allclose(fp.thickness_px[inside], 10.0, rtol=1e-5)


@pytest.mark.parametrize("kind", SHAPES)
def test_every_shape_renders_near_its_nominal_size(kind: str) -> None:
    solid = make_solid(kind, 20.0, np.random.default_rng(3))
    fp = rasterize(solid, 30.5, 30.5)
    eq_diameter = 2 * np.sqrt(fp.coverage.sum() / np.pi)
    assert 10.0 < eq_diameter < 32.0
    assert fp.coverage[0].max() == 0 and fp.coverage[-1].max() == 0  # crop holds the particle
    assert fp.coverage[:, 0].max() == 0 and fp.coverage[:, -1].max() == 0


@pytest.mark.parametrize("modality", ["bf", "haadf"])
def test_polarity_dark_particles_in_bright_field_bright_in_haadf(modality: str) -> None:
    for seed in range(3):
        sim = simulate_micrograph(seed, (96, 96), scenario="isolated", modality=modality, **CLEAN)
        inside = sim.image[sim.mask].mean()
        outside = sim.image[~sim.mask].mean()
        assert (inside < outside) if modality == "bf" else (inside > outside)


def test_labels_do_not_depend_on_imaging_conditions() -> None:
    # blur, defocus rims, noise and detector never move the label: it is the projected edge
    a = simulate_micrograph(5, (64, 64), scenario="faceted")
    b = simulate_micrograph(
        5, (64, 64), scenario="faceted", psf_sigma_px=3.0, fresnel_amplitude=2.0, dose=2.0
    )
    np.testing.assert_array_equal(a.mask, b.mask)
    assert not np.array_equal(a.image, b.image)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_zero_particles_gives_support_and_distractors_only(scenario: str) -> None:
    # A hard negative: the scene's support, film and distractors, and nothing to label.
    sim = simulate_micrograph(4, shape=(96, 96), scenario=scenario, n_particles=0)
    assert not sim.mask.any() and sim.instances.max() == 0 and sim.particles.empty
    assert np.isfinite(sim.image).all() and sim.image.std() > 0
    assert len(simulate_micrograph(4, shape=(96, 96), scenario=scenario, n_particles=2).particles)
    for bad in (-2, 1.5):
        with pytest.raises(SimulationParameterError, match="n_particles"):
            simulate_micrograph(4, shape=(96, 96), scenario=scenario, n_particles=bad)


def test_defocused_support_is_smoother_and_only_in_haadf() -> None:
    # A STEM probe focused on the particles leaves the oxide grains under them soft: the
    # support loses its particle-sized structure; bright field has no such depth effect.
    def support_only(modality: str, blur: float) -> np.ndarray:
        return simulate_micrograph(
            3,
            (128, 128),
            scenario="haadf",
            modality=modality,
            n_particles=0,
            hole=False,
            support_strength=2.0,
            dose=1e9,
            read_noise=0.0,
            jpeg_quality=None,
            support_defocus_blur=blur,
        ).image

    def roughness(image: np.ndarray) -> float:
        return float(np.abs(np.diff(image, axis=1)).mean() / image.std())

    sharp, soft = support_only("haadf", 0.0), support_only("haadf", 2.0)
    assert roughness(soft) < 0.5 * roughness(sharp)
    np.testing.assert_array_equal(support_only("bf", 0.0), support_only("bf", 2.0))
    # The default draws nothing new: the same seed gives the same image with the setting at 0.
    plain = simulate_micrograph(3, (96, 96), scenario="haadf")
    assert plain.params["support_defocus_blur"] == 0.0
    explicit = simulate_micrograph(3, (96, 96), scenario="haadf", support_defocus_blur=0.0)
    np.testing.assert_array_equal(plain.image, explicit.image)


def test_platelet_supports_are_flat_topped_where_grains_are_domes() -> None:
    # Alumina crystallites are plates of even thickness: inside one, the projected thickness
    # does not change from pixel to pixel; inside a spherical grain it always does.
    def flat_share(field: np.ndarray) -> float:
        inner = field[1:-1, 1:-1]
        neighbours = [
            field[1 + dy : field.shape[0] - 1 + dy, 1 + dx : field.shape[1] - 1 + dx]
            for dy in (-1, 0, 1)
            for dx in (-1, 0, 1)
        ]
        covered = np.all([n > 0 for n in neighbours], axis=0)
        flat = np.all([np.abs(n - inner) < 1e-5 for n in neighbours], axis=0)
        return float(flat[covered].mean())

    plates = backgrounds.platelet_aggregate(np.random.default_rng(0), (160, 160), 20.0, 0.4, 0.0)
    grains = backgrounds.grain_aggregate(np.random.default_rng(0), (160, 160), 20.0, 0.4, 0.0)
    assert plates.dtype == np.float32 and plates.min() >= 0
    assert flat_share(plates) > 0.5 and flat_share(grains) < 0.1
    # Crossing crystallites add up: more cover, thicker piles.
    dense = backgrounds.platelet_aggregate(np.random.default_rng(0), (160, 160), 20.0, 3.0, 0.5)
    assert (dense > 0).mean() > (plates > 0).mean() and dense.max() > plates.max()
    np.testing.assert_array_equal(
        plates,
        backgrounds.platelet_aggregate(np.random.default_rng(0), (160, 160), 20.0, 0.4, 0.0),
    )


def test_platelet_support_replaces_the_grains_only_where_there_are_grains() -> None:
    def image(**settings) -> np.ndarray:
        return simulate_micrograph(4, (96, 96), scenario="haadf", **settings).image

    # The default draws nothing new: the same seed gives the same image with the setting off.
    plain = simulate_micrograph(4, (96, 96), scenario="haadf")
    assert plain.params["support_platelets"] is False
    np.testing.assert_array_equal(plain.image, image(support_platelets=False))
    grains = dict(support_strength=2.0, support_grain_cover=1.0)
    assert not np.array_equal(image(support_platelets=True, **grains), image(**grains))
    no_grains = dict(support_strength=2.0, support_grain_cover=0.0)
    np.testing.assert_array_equal(image(support_platelets=True, **no_grains), image(**no_grains))


@pytest.mark.parametrize("kind", NEGATIVE_KINDS)
def test_negative_scenes_hold_texture_and_no_particles(kind: str) -> None:
    sim = simulate_negative(7, shape=(96, 96), kind=kind)
    assert sim.scenario == NEGATIVE_SCENARIO and sim.params["negative_kind"] == kind
    assert not sim.mask.any() and sim.instances.max() == 0 and sim.particles.empty
    assert sim.modality == "bf" and np.isfinite(sim.image).all() and sim.image.std() > 0
    np.testing.assert_array_equal(sim.image, simulate_negative(7, (96, 96), kind=kind).image)
    if kind == "carbon_film":
        assert 0.02 <= sim.pixel_size_nm <= 0.1 and sim.params["speckle_amplitude"] >= 0.05
    if kind == "residue":
        assert sim.params["residue_fraction"] >= 0.2 and sim.params["contamination_count"] >= 5


def test_negative_kinds_are_drawn_and_checked() -> None:
    kinds = {simulate_negative(s, shape=(32, 32)).params["negative_kind"] for s in range(30)}
    assert kinds == set(NEGATIVE_KINDS)
    with pytest.raises(ValueError, match="unknown negative kind"):
        simulate_negative(0, shape=(32, 32), kind="grid_bar")


def test_particle_table_agrees_with_instances() -> None:
    sim = simulate_micrograph(
        2, (128, 128), pixel_size_nm=0.5, scenario="isolated", diameter_median_nm=6.0
    )
    px = sim.pixel_size_nm
    lone = sim.particles[~sim.particles["overlaps"]]
    assert len(lone) >= 3
    for row in lone.itertuples():
        rr, cc = np.nonzero(sim.instances == row.particle_id)
        perimeter_px = np.pi * row.equivalent_diameter_nm / px
        assert abs(rr.size * px * px - row.area_nm2) <= 0.25 * perimeter_px * px * px + px * px
        assert (cc.mean() + 0.5) * px == pytest.approx(row.centroid_x_nm, abs=0.5 * px)
        assert (rr.mean() + 0.5) * px == pytest.approx(row.centroid_y_nm, abs=0.5 * px)


def test_overlapping_scenario_flags_overlaps_and_upper_particle_wins() -> None:
    sim = simulate_micrograph(4, (128, 128), scenario="overlapping", overlap_allowed=True)
    assert sim.particles["overlaps"].any()
    # a particle hidden under others keeps its true area in the table but fewer pixels
    counts = np.bincount(sim.instances.ravel(), minlength=len(sim.particles) + 1)
    px2 = sim.pixel_size_nm**2
    overl = sim.particles[sim.particles["overlaps"]]
    assert any(counts[r.particle_id] * px2 < r.area_nm2 * 0.9 for r in overl.itertuples())


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(UnknownScenarioError, match="nonsense"):
        simulate_micrograph(0, (32, 32), scenario="nonsense")
    with pytest.raises(SimulationParameterError, match="not_a_setting"):
        simulate_micrograph(0, (32, 32), not_a_setting=1)
    with pytest.raises(SimulationParameterError, match="pixel_size_nm"):
        simulate_micrograph(0, (32, 32), pixel_size_nm=-1.0)


def _digest(folder) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_write_dataset_round_trip_and_is_reproducible(tmp_path) -> None:
    from nanomorph.io import read_micrographs

    out = write_dataset(tmp_path / "a", 3, seed=11, shape=(48, 64), scenarios=["haadf", "isolated"])
    manifest = pd.read_csv(out / "manifest.csv")
    assert list(manifest["scenario"]) == ["haadf", "isolated", "haadf"]
    for i, row in manifest.iterrows():
        child = np.random.SeedSequence(11).spawn(3)[i]
        sim = simulate_micrograph(child, (48, 64), scenario=row["scenario"])
        mic = read_micrographs(out / row["image"])[0]
        assert mic.pixel_size_nm == pytest.approx(sim.pixel_size_nm, rel=1e-6)
        np.testing.assert_allclose(mic.image, sim.image, rtol=1e-6)
        np.testing.assert_array_equal(np.asarray(Image.open(out / row["mask"])) > 0, sim.mask)
        np.testing.assert_array_equal(tifffile.imread(out / row["instances"]), sim.instances)
        table = pd.read_csv(out / row["particles"])
        assert len(table) == len(sim.particles) == row["n_particles"]
    again = write_dataset(
        tmp_path / "b", 3, seed=11, shape=(48, 64), scenarios=["haadf", "isolated"]
    )
    assert _digest(out) == _digest(again)


def test_write_dataset_dm3(tmp_path) -> None:
    pytest.importorskip("nionswift_plugin")
    from nanomorph.io import read_micrographs

    out = write_dataset(tmp_path, 1, seed=0, shape=(32, 32), scenarios="isolated", fmt="dm3")
    mic = read_micrographs(out / "images" / "sim_000000.dm3")[0]
    sim = simulate_micrograph(np.random.SeedSequence(0).spawn(1)[0], (32, 32), scenario="isolated")
    assert mic.pixel_size_nm == pytest.approx(sim.pixel_size_nm, rel=1e-5)
    np.testing.assert_allclose(mic.image, sim.image, rtol=1e-6)


def test_write_dataset_velox_emd(tmp_path) -> None:
    from nanomorph.io import read_micrographs

    out = write_dataset(tmp_path, 2, seed=0, shape=(32, 32), scenarios="haadf", fmt="emd")
    for index, child in enumerate(np.random.SeedSequence(0).spawn(2)):
        [mic] = read_micrographs(out / "images" / f"sim_{index:06d}.emd")
        sim = simulate_micrograph(child, (32, 32), scenario="haadf")
        assert mic.pixel_size_nm == pytest.approx(sim.pixel_size_nm, rel=1e-9)
        assert mic.raw_calibration["detector"] == "HAADF"
        np.testing.assert_array_equal(mic.image, sim.image.astype(sim.params["output_dtype"]))


def test_ultrasmall_low_contrast_particles_stay_detectable() -> None:
    # the dose floor keeps the median particle above the noise: labels a network can learn
    from scipy import ndimage

    snrs = []
    for seed in range(8):
        sim = simulate_micrograph(seed, (96, 96), scenario="ultrasmall_low_contrast")
        assert sim.params["diameter_median_nm"] <= 3.0
        m = sim.mask
        ring = ndimage.binary_dilation(m, iterations=3) & ~ndimage.binary_dilation(m, iterations=1)
        noise = np.std(sim.image - ndimage.gaussian_filter(sim.image, 2))
        px_per_particle = m.sum() / max(len(sim.particles), 1)
        contrast = abs(sim.image[m].mean() - sim.image[ring].mean())
        snrs.append(contrast / noise * np.sqrt(px_per_particle))
    assert np.median(snrs) > 4.0


def test_modality_override_redraws_what_depends_on_it() -> None:
    # bright-field supports are drawn thin; asking for BF must not keep HAADF-strength supports
    for seed in range(10):
        sim = simulate_micrograph(seed, (32, 32), scenario="haadf", modality="bf")
        assert sim.modality == "bf"
        assert sim.params["support_strength"] <= 0.8


def test_particle_snr_separates_a_visible_disc_from_noise() -> None:
    from nanomorph.simulate.micrograph import particle_snr

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:64, :64]
    instances = np.zeros((64, 64), np.int64)
    instances[(yy - 20) ** 2 + (xx - 20) ** 2 <= 16] = 1
    instances[(yy - 44) ** 2 + (xx - 44) ** 2 <= 16] = 2
    mask = instances > 0
    image = rng.normal(100.0, 2.0, (64, 64))
    image[instances == 1] -= 6.0  # dark disc, 3 sigma per pixel: plainly visible in bright field
    snr = particle_snr(image, instances, mask, "bf")
    assert np.isnan(snr[0])
    assert snr[1] > 8.0  # 3 sigma x sqrt(25 px)
    assert abs(snr[2]) < 3.0  # labelled but absent from the image
    assert particle_snr(image, instances, mask, "haadf")[1] < -8.0  # wrong polarity: negative


@pytest.mark.parametrize("scenario", ["ultrasmall_low_contrast", "haadf", None])
def test_every_labelled_particle_is_visible_in_the_recorded_image(scenario: str | None) -> None:
    # a label nobody could draw from the image teaches the network to guess and scores a
    # segmenter on particles that cannot be found
    from nanomorph.simulate.micrograph import particle_snr

    fractions = []
    for seed in range(6):
        sim = simulate_micrograph(seed, (128, 128), scenario=scenario)
        if len(sim.particles) == 0:
            continue
        snr = particle_snr(sim.image, sim.instances, sim.mask, sim.modality)
        snr = snr[np.isfinite(snr)]
        floor = sim.params["particle_snr_min"]
        fractions.append(np.mean(snr < 0.6 * floor) if snr.size else 0.0)
    assert np.mean(fractions) < 0.05


def test_training_mixture_adds_thick_supports_and_strong_carbon_grain() -> None:
    # real Pd/silica and Pt/C micrographs: faint particles on grains brighter than themselves,
    # and carbon grain stronger than the particles' contrast; the training mixture must hold
    # them, and the fixed test scenarios must not change.
    from nanomorph.simulate.scenarios import draw_params

    def draws(hard: bool) -> list[dict]:
        rng = np.random.default_rng(3)
        return [
            draw_params(rng, scenario, (384, 384), hard=hard)
            for _ in range(150)
            for scenario in ("haadf", "mixed", "overlapping")
        ]

    def strong_grain(p: dict) -> bool:
        contrast = 1 - np.exp(-p["diameter_median_nm"] / p["mean_free_path_nm"])
        return p["modality"] == "bf" and p["speckle_amplitude"] > 0.95 * contrast

    mixture, test = draws(True), draws(False)
    assert sum(p["support_strength"] > 3.0 for p in mixture) >= 10
    assert sum(strong_grain(p) for p in mixture) >= 5
    assert max(p["support_strength"] for p in test) <= 3.0
    assert not any(strong_grain(p) for p in test)


def test_fine_carbon_grain_does_not_amplify_large_particles() -> None:
    # a 40 px particle is seen through 0.5 nm carbon grain (5 px here) as a person sees it:
    # the grain averages out over the particle, so its signal needs no amplification
    settings = dict(
        CLEAN,
        modality="bf",
        speckle_amplitude=0.3,
        speckle_scale_nm=0.5,
        speckle_bandwidth=0.4,
        fresnel_amplitude=0.0,
        mean_free_path_nm=-4.0 / np.log(1 - 0.25),
        diameter_median_nm=4.0,
        diameter_cv=0.05,
        visibility_min=3.0,
    )
    sim = simulate_micrograph(5, (192, 192), pixel_size_nm=0.1, scenario="isolated", **settings)
    assert len(sim.particles) > 0
    assert sim.params["visibility_gain"] < 1.3
    # while at the pixel scale the grain is plainly there (10 % of the film's intensity)
    film = sim.image[~sim.mask]
    assert np.std(film) / np.mean(film) > 0.08
