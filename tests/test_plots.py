"""Tests of nanomorph.plots: overlays pixel for pixel, figures written and non-empty."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from skimage.draw import disk

from nanomorph.plots import (
    COLOUR_NONCONVEX,
    COLOUR_PARTICLE,
    COLOUR_SEPARATED,
    PlotError,
    _scale_bar_length_nm,
    _thicken,
    histogram,
    overlay_rgb,
    save_histograms,
    save_overlay,
    save_report_image,
    save_sample_comparison,
    save_segmentation_panel,
    save_series_plots,
    save_size_distribution_figure,
    save_skipped_image_note,
    save_tracks_plot,
    stretch_to_uint8,
)


def scene(shape=(90, 130)):
    """Dark disks on a noisy bright background, their labels and a particle table."""
    rng = np.random.default_rng(0)
    image = rng.normal(200, 5, shape).astype(np.float32)
    labels = np.zeros(shape, np.uint32)
    centres = [(25, 25, 10), (60, 40, 12), (30, 90, 8)]
    for k, (r, c, rad) in enumerate(centres, start=1):
        rr, cc = disk((r, c), rad, shape=shape)
        labels[rr, cc] = k
        image[rr, cc] = 60
    particles = pd.DataFrame(
        {
            "particle_id": [1, 2, 3],
            "separated": [False, True, False],
            "nonconvex": [False, False, True],
        }
    )
    return image, labels, particles


def colour_mask(rgb: np.ndarray, colour) -> np.ndarray:
    return np.all(rgb == np.array(colour, np.uint8), axis=2)


def test_overlay_keeps_the_image_shape_and_colours_outlines(tmp_path):
    image, labels, particles = scene()
    path = save_overlay(tmp_path / "overlay.png", image, labels, particles, title="scene.tif")
    rgb = np.asarray(Image.open(path))
    assert rgb.shape == (*image.shape, 3)
    assert rgb.dtype == np.uint8
    for lab, colour in ((1, COLOUR_PARTICLE), (2, COLOUR_SEPARATED), (3, COLOUR_NONCONVEX)):
        outline = colour_mask(rgb, colour)
        inside = labels == lab
        # The outline of each particle is drawn in its colour and lies on the particle's border.
        assert outline[inside].sum() > 20
        interior = np.zeros_like(inside)
        interior[1:-1, 1:-1] = (
            inside[1:-1, 1:-1]
            & inside[:-2, 1:-1]
            & inside[2:, 1:-1]
            & inside[1:-1, :-2]
            & inside[1:-1, 2:]
        )
        assert not outline[interior].any()


def test_overlay_rgb_without_ids_draws_only_outlines():
    image, labels, _ = scene()
    rgb = overlay_rgb(image, labels, separated_ids=[3])
    grey = stretch_to_uint8(image)
    changed = np.any(rgb != grey[..., None], axis=2)
    boundary = colour_mask(rgb, COLOUR_PARTICLE) | colour_mask(rgb, COLOUR_SEPARATED)
    assert np.array_equal(changed, boundary)
    assert colour_mask(rgb, COLOUR_SEPARATED)[labels == 3].sum() > 10
    assert not colour_mask(rgb, COLOUR_SEPARATED)[labels != 3].any()


@dataclass
class _Particle:
    mask: np.ndarray
    offset: tuple[int, int]
    separated: bool = False
    nonconvex: bool = False


@dataclass
class _Separation:
    particles: list
    labels: np.ndarray


def test_overlay_of_a_separation_outlines_both_overlapping_particles():
    shape = (60, 80)
    a = np.zeros(shape, bool)
    b = np.zeros(shape, bool)
    a[disk((30, 30), 12, shape=shape)] = True
    b[disk((30, 48), 12, shape=shape)] = True
    labels = np.where(a, 1, np.where(b, 2, 0)).astype(np.uint32)  # overlap drawn to particle 1
    particles = []
    for m in (a, b):
        rr, cc = np.nonzero(m)
        crop = m[rr.min() : rr.max() + 1, cc.min() : cc.max() + 1]
        particles.append(_Particle(crop, (rr.min(), cc.min()), separated=True))
    rgb = overlay_rgb(np.ones(shape), _Separation(particles, labels))
    outline = colour_mask(rgb, COLOUR_SEPARATED)
    # Particle 2's full outline runs through the overlap, where the label image says 1.
    assert outline[a & b].any()
    assert outline[b & ~a].any() and outline[a & ~b].any()


def test_overlay_refuses_mismatched_shapes(tmp_path):
    image, labels, _ = scene()
    with pytest.raises(PlotError, match="do not match"):
        save_overlay(tmp_path / "x.png", image, labels[:-1])
    assert not (tmp_path / "x.png").exists()


def particle_table(n=400, samples=("A", "B")):
    rng = np.random.default_rng(1)
    d = rng.lognormal(np.log(3.0), 0.3, n)
    return pd.DataFrame(
        {
            "sample": rng.choice(samples, n),
            "equivalent_diameter_nm": d,
            "feret_min_nm": 0.95 * d,
            "feret_max_nm": 1.1 * d,
            "circularity": rng.uniform(0.8, 1.0, n),
        }
    )


def is_png(path) -> bool:
    return path.stat().st_size > 1000 and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_histograms_are_written(tmp_path):
    paths = save_histograms(particle_table(), tmp_path / "figures", title="A")
    assert set(paths) == {"equivalent_diameter_nm", "feret_min_nm", "feret_max_nm", "circularity"}
    assert paths["circularity"].name == "histogram_circularity.png"
    assert all(is_png(p) for p in paths.values())
    with pytest.raises(PlotError, match="'volume_nm3'"):
        save_histograms(particle_table(), tmp_path, properties=("volume_nm3",))


def test_histogram_writes_n_and_mean_sd_on_the_axes():
    from matplotlib.figure import Figure

    ax = Figure().add_subplot()
    histogram(ax, [2.0, 3.0, 4.0, np.nan], "Equivalent diameter", "nm")
    texts = [t.get_text() for t in ax.texts]
    assert texts == ["N = 3\n3.0 ± 1.0 nm"]
    assert ax.get_xlabel() == "Equivalent diameter (nm)"


def test_histogram_of_no_values_still_draws(tmp_path):
    path = histogram(tmp_path / "h.png", [], "Circularity")
    assert is_png(path)


def test_sample_comparison(tmp_path):
    df = pd.concat(
        [particle_table(), pd.DataFrame({"sample": ["C"], "equivalent_diameter_nm": [2.0]})]
    )
    path = save_sample_comparison(df, tmp_path / "comparison.png")
    assert is_png(path)


def test_series_and_tracks_plots(tmp_path):
    stats = pd.DataFrame(
        {
            "frame": range(5),
            "time_s": np.arange(5) * 0.5,
            "count": [10, 11, 12, 12, 0],
            "mean_equivalent_diameter_nm": [2.0, 2.2, 2.4, 2.6, np.nan],
            "sd_equivalent_diameter_nm": [0.3, 0.3, 0.4, 0.4, np.nan],
        }
    )
    paths = save_series_plots(stats, tmp_path)
    assert paths == {
        "diameter": tmp_path / "series_diameter.png",
        "count": tmp_path / "series_count.png",
    }
    assert all(is_png(p) for p in paths.values())
    tracks = pd.DataFrame(
        {
            "track_id": np.repeat([0, 1, 2], 5),
            "frame": np.tile(range(5), 3),
            "equivalent_diameter_nm": np.tile(np.arange(5) * 0.2, 3) + np.repeat([2, 3, 4], 5),
        }
    )
    assert is_png(save_tracks_plot(tracks, tmp_path / "tracks.png"))


def test_size_distribution_figure_is_a_300_dpi_png_and_a_pdf(tmp_path):
    paths = save_size_distribution_figure(particle_table(), tmp_path / "size_distribution.png")
    assert [p.name for p in paths] == ["size_distribution.png", "size_distribution.pdf"]
    png, pdf = paths
    assert is_png(png)
    width_px, _ = Image.open(png).size
    assert width_px == pytest.approx(3.5 * 300, abs=2)
    assert pdf.read_bytes()[:5] == b"%PDF-"


def test_segmentation_panel(tmp_path):
    image, labels, particles = scene()
    paths = save_segmentation_panel(
        tmp_path / "panel.png", image, labels > 0, labels, 0.25, particles=particles
    )
    assert all(p.stat().st_size > 1000 for p in paths)
    assert is_png(paths[0])
    with pytest.raises(PlotError, match="pixel_size_nm"):
        save_segmentation_panel(tmp_path / "bad.png", image, labels > 0, labels, 0.0)


@pytest.mark.parametrize(
    ("field_nm", "bar_nm"), [(100.0, 20.0), (51.2, 10.0), (8.0, 1.0), (1000.0, 200.0), (30, 5)]
)
def test_scale_bar_is_a_round_fifth_of_the_field(field_nm, bar_nm):
    assert _scale_bar_length_nm(field_nm) == bar_nm


def test_thick_outlines_grow_outward_only():
    from skimage.segmentation import find_boundaries

    inside = np.zeros((40, 40), bool)
    inside[disk((20, 20), 8)] = True
    boundary = find_boundaries(inside, mode="inner")
    thick = _thicken(boundary, 3, inside)
    assert np.array_equal(thick & inside, boundary)  # one pixel on the particle
    assert (thick & ~inside).sum() > boundary.sum()  # the rest outside it


@pytest.mark.parametrize(
    ("size", "expected"),
    [((3000, 1000), (2048, 683)), ((800, 1200), (800, 1200)), ((1000, 4096), (500, 2048))],
)
def test_report_copy_is_a_jpeg_no_larger_than_the_limit(tmp_path, size, expected):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    pixels[:, : size[0] // 2] = (0, 255, 255)  # a cyan half, kept through the resampling
    source = tmp_path / "overlay.png"
    Image.fromarray(pixels).save(source)
    copy = save_report_image(source, tmp_path / "frames" / "frame_0001.jpg")
    with Image.open(copy) as image:
        assert image.format == "JPEG" and image.size == expected
        left = np.asarray(image)[:, : expected[0] // 4].reshape(-1, 3).mean(axis=0)
    assert left == pytest.approx([0, 255, 255], abs=8)
    assert [p.name for p in copy.parent.iterdir()] == ["frame_0001.jpg"]  # nothing temporary


def test_skipped_image_note_says_why_on_as_many_lines_as_needed(tmp_path):
    short = save_skipped_image_note(tmp_path / "a.png", "a_002", "cannot be read")
    reason = "data/a_002b.tif: cannot be read as a TIFF file (ValueError: " + "x " * 120 + ")"
    long = save_skipped_image_note(tmp_path / "b" / "overlay.png", "a_002b", reason)
    with Image.open(short) as first, Image.open(long) as second:
        assert first.format == second.format == "PNG"
        assert first.width == second.width == 640
        assert second.height > first.height  # the long reason is wrapped, not cut
        text = np.asarray(second.convert("L")) > 200
    assert text.any() and not text[:, -8:].any()  # written, and within the right margin
    assert [p.name for p in long.parent.iterdir()] == ["overlay.png"]  # nothing temporary
