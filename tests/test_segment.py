"""Network segmenter: model folder, preprocessing, tiled inference, metrics and evaluation."""

from __future__ import annotations

import json
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from skimage.draw import disk

import nanomorph.segment.evaluate as evaluate_module
import nanomorph.segment.inference as inference_module
from nanomorph.segment import metrics
from nanomorph.segment.inference import (
    InferenceError,
    NetworkSegmenter,
    combine_scales,
    hann_window_2d,
    keep_confident_regions,
    network_megapixels,
    predict_tiled,
    resolve_precision,
    tile_layout,
    tile_origins,
)
from nanomorph.segment.model import (
    ModelNotFoundError,
    build_model,
    default_config,
    load_segmenter,
    save_model_folder,
)
from nanomorph.segment.preprocess import (
    PreprocessConfig,
    PreprocessError,
    apply_polarity,
    block_mean,
    check_flattening,
    downsample_factor,
    enlarge,
    flatten_support,
    normalize_for_network,
    normalize_image,
    prepare_image,
    upsample_factor,
    upsample_to,
)


@pytest.fixture(scope="module")
def small_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model("deeplabv3plus", "resnet18").eval()


def disk_image(shape=(100, 150), centres=((30, 40), (70, 110)), radius=12):
    mask = np.zeros(shape, bool)
    for centre in centres:
        rr, cc = disk(centre, radius, shape=shape)
        mask[rr, cc] = True
    image = np.where(mask, 0.3, 1.0).astype(np.float32)
    return image, mask


# ---------------------------------------------------------------------------------------------
# model and model folder


def test_build_model_maps_one_channel_to_one_logit(small_model):
    with torch.inference_mode():
        out = small_model(torch.zeros(2, 1, 64, 96))
    assert out.shape == (2, 1, 64, 96)


def test_build_model_rejects_unknown_encoder():
    with pytest.raises(ValueError, match="unknown architecture"):
        build_model("deeplabv3plus", "no-such-encoder")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_model_folder_round_trip_gives_the_same_probabilities(small_model, tmp_path, dtype):
    image, _ = disk_image()
    config = default_config("test-model")
    config["inference"]["tile_size"] = 128
    save_model_folder(small_model, tmp_path / "m", config, {"test": {"particle_iou": 0.5}}, dtype)
    loaded = load_segmenter(tmp_path / "m", device="cpu", precision="fp32")
    reference_model = build_model().eval()
    state = {
        k: v.to(dtype).to(v.dtype) if v.is_floating_point() else v
        for k, v in small_model.state_dict().items()
    }
    reference_model.load_state_dict(state)
    reference = NetworkSegmenter(reference_model, config, device="cpu", precision="fp32")
    np.testing.assert_allclose(
        loaded.predict_proba(image, 1.0), reference.predict_proba(image, 1.0), atol=1e-6
    )
    assert json.loads((tmp_path / "m" / "metrics.json").read_text())["test"]["particle_iou"] == 0.5
    saved_config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert saved_config["architecture"] == "deeplabv3plus"
    assert saved_config["preprocess"]["polarity"] == "both"
    assert saved_config["weights_dtype"] == str(dtype).removeprefix("torch.")


def test_load_segmenter_finds_models_by_name_via_env_var(small_model, tmp_path, monkeypatch):
    save_model_folder(small_model, tmp_path / "models" / "my-model", default_config("my-model"))
    monkeypatch.setenv("NANOMORPH_MODELS", str(tmp_path / "models"))
    assert load_segmenter("my-model", device="cpu").name == "my-model"


def test_load_segmenter_names_the_missing_model(tmp_path, monkeypatch):
    monkeypatch.setenv("NANOMORPH_MODELS", str(tmp_path))
    with pytest.raises(ModelNotFoundError, match="no-such-model"):
        load_segmenter("no-such-model")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotFoundError, match="model.safetensors"):
        load_segmenter(tmp_path / "empty")


def test_importing_segment_does_not_import_torch():
    code = "import sys, nanomorph.segment; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ---------------------------------------------------------------------------------------------
# preprocessing


def test_normalize_maps_percentiles_and_ignores_gain_and_offset():
    image = np.random.default_rng(0).uniform(0, 100, (64, 64)).astype(np.float32)
    out = normalize_image(image)
    low, high = np.percentile(out, [1, 99])
    assert low == pytest.approx(-1, abs=0.02) and high == pytest.approx(1, abs=0.02)
    np.testing.assert_allclose(normalize_image(image * 37.0 + 1000.0), out, atol=1e-4)


def test_normalize_handles_flat_and_non_finite_images():
    assert not normalize_image(np.full((8, 8), 5.0)).any()
    image = np.arange(64, dtype=np.float32).reshape(8, 8)
    image[0, 0] = np.nan
    assert np.isfinite(normalize_image(image)).all()
    with pytest.raises(PreprocessError, match="2-D"):
        normalize_image(np.zeros((2, 2, 2)))


def test_polarity_inverts_only_when_model_and_image_differ():
    x = np.array([[-1.0, 1.0]], np.float32)
    assert apply_polarity(x, "both", "bright") is x
    assert apply_polarity(x, "dark", "auto") is x
    np.testing.assert_array_equal(apply_polarity(x, "dark", "bright"), -x)
    with pytest.raises(PreprocessError, match="sideways"):
        apply_polarity(x, "dark", "sideways")


@pytest.mark.parametrize(
    ("pixel_size_nm", "factor"), [(0.02, 5), (0.05, 2), (0.07, 1), (0.1, 1), (2.0, 1), (0.001, 16)]
)
def test_downsample_factor_keeps_working_pixel_size_at_most_the_minimum(pixel_size_nm, factor):
    assert downsample_factor(pixel_size_nm, PreprocessConfig()) == factor


def test_downsample_factor_rejects_bad_pixel_size():
    with pytest.raises(PreprocessError, match="pixel_size_nm"):
        downsample_factor(0.0, PreprocessConfig())


@pytest.mark.parametrize(
    ("pixel_size_nm", "diameter_nm", "factor"),
    [
        (0.1, None, 1),  # not declared: the pixel-size rule alone
        (0.1, 3.1, 1),  # 31 px: below twice the 16 px target, left as it is
        (0.1, 3.2, 2),  # 32 px: seen at 16 px
        (0.1, 8.0, 5),  # 80 px: seen at 16 px
        (0.1, 1.0, 1),  # small particles are never upsampled
        (0.02, 1.0, 5),  # 50 px, but the pixel-size rule asks for more (0.1 nm working grid)
        (0.02, 5.0, 15),  # 250 px: more than the pixel-size rule's 5
        (0.02, 40.0, 16),  # 2000 px: capped at max_downsample_factor
    ],
)
def test_a_declared_diameter_brings_large_particles_down_to_the_target(
    pixel_size_nm, diameter_nm, factor
):
    got = downsample_factor(
        pixel_size_nm, PreprocessConfig(), particle_diameter_nm=diameter_nm, target_particle_px=16
    )
    assert got == factor


@pytest.mark.parametrize(
    ("pixel_size_nm", "diameter_nm", "factor"),
    [
        (0.1, None, 1),  # not declared: never enlarged
        (0.1, 0.59, 2),  # 5.9 px on the working grid: enlarged twice
        (0.1, 0.6, 1),  # 6 px: as it is
        (0.1, 20.0, 1),  # large: as it is here (coarser: downsample_factor)
        (0.2, 1.0, 2),  # 5 px
        # 11.8 px, but the image is block-averaged by 2 onto the 0.1 nm working grid first,
        # where it is 5.9 px
        (0.05, 0.59, 2),
    ],
)
def test_a_declared_diameter_enlarges_the_image_only_for_particles_a_few_pixels_across(
    pixel_size_nm, diameter_nm, factor
):
    got = upsample_factor(pixel_size_nm, PreprocessConfig(), diameter_nm, small_particle_px=6)
    assert got == factor


def test_upsample_factor_rejects_a_bad_limit_or_diameter():
    with pytest.raises(PreprocessError, match="small_particle_px"):
        upsample_factor(0.1, PreprocessConfig(), 0.5, small_particle_px=0)
    with pytest.raises(PreprocessError, match="particle_diameter_nm"):
        upsample_factor(0.1, PreprocessConfig(), -0.5, small_particle_px=6)


def test_enlarge_makes_each_pixel_a_block_that_block_mean_brings_back():
    yy, xx = np.mgrid[0:40, 0:30].astype(np.float32)
    image = np.sin(yy / 5.0) + np.cos(xx / 4.0)
    big = enlarge(image, 2)
    assert big.shape == (80, 60) and big.dtype == np.float32
    # Block centres of the enlarged image sit on the original pixels: averaging each 2x2 block
    # gives the image back up to the interpolation's smoothing.
    np.testing.assert_allclose(block_mean(big, 2)[2:-2, 2:-2], image[2:-2, 2:-2], atol=0.02)
    np.testing.assert_array_equal(enlarge(image, 1), image)
    with pytest.raises(PreprocessError, match="whole number"):
        enlarge(image, 1.5)


@pytest.mark.parametrize("diameter_nm", [0.0, -2.0, float("nan"), float("inf"), "large"])
def test_a_declared_diameter_must_be_a_positive_number(diameter_nm):
    with pytest.raises(PreprocessError, match="particle_diameter_nm"):
        downsample_factor(0.1, PreprocessConfig(), diameter_nm, target_particle_px=16)


def test_a_declared_diameter_needs_a_target_width():
    with pytest.raises(PreprocessError, match="target_particle_px"):
        downsample_factor(0.1, PreprocessConfig(), particle_diameter_nm=5.0)


def test_flattening_shrinks_a_broad_support_and_keeps_a_small_particle():
    yy, xx = np.mgrid[0:160, 0:160].astype(np.float32)
    # A bright, cloudy support 4x the particle's own contrast, under a 6 px particle.
    support = 4.0 * np.exp(-((yy - 40) ** 2 + (xx - 60) ** 2) / (2 * 45.0**2))
    particle = ((yy - 80) ** 2 + (xx - 80) ** 2 <= 9).astype(np.float32)
    flat = flatten_support(support + particle, sigma_px=16, keep=0.3)
    far, near = flat[80, 100], flat[80, 88]
    assert np.ptp(flatten_support(support, 16, 0.3)) < 0.5 * np.ptp(support)
    assert flat[80, 80] - near == pytest.approx(1.0, abs=0.2)
    assert abs(far - near) < 0.5 * abs(support[80, 100] - support[80, 88])
    np.testing.assert_allclose(flatten_support(support, 16, keep=1.0), support, atol=1e-6)


def test_network_view_is_the_plain_normalisation_unless_flattening_is_set():
    image = np.random.default_rng(1).uniform(0, 10, (48, 64)).astype(np.float32)
    np.testing.assert_array_equal(
        normalize_for_network(image, PreprocessConfig()), normalize_image(image)
    )
    flat = normalize_for_network(
        image + np.linspace(0, 40, 64), PreprocessConfig(flatten_sigma_px=8)
    )
    low, high = np.percentile(flat, [1, 99])
    assert low == pytest.approx(-1, abs=0.05) and high == pytest.approx(1, abs=0.05)
    prepared, _ = prepare_image(image, 1.0, PreprocessConfig(flatten_sigma_px=8))
    np.testing.assert_array_equal(
        prepared, normalize_for_network(image, PreprocessConfig(flatten_sigma_px=8))
    )
    assert check_flattening(0, 0.3) is None and check_flattening(None, 0.3) is None
    with pytest.raises(PreprocessError, match="flatten_sigma_px"):
        check_flattening(-1, 0.3)
    with pytest.raises(PreprocessError, match="flatten_keep"):
        check_flattening(8, 1.5)


def test_segmenter_flattens_the_support_as_its_model_or_the_caller_says(small_model):
    config = {
        **default_config("flat"),
        "preprocess": PreprocessConfig(flatten_sigma_px=32).to_dict(),
    }
    trained = NetworkSegmenter(small_model, config, device="cpu", precision="fp32")
    assert trained.preprocess.flatten_sigma_px == 32
    assert trained.describe()["trained_with_flatten_support_px"] == 32
    off = NetworkSegmenter(small_model, config, device="cpu", flatten_support_px=0)
    assert off.preprocess.flatten_sigma_px is None
    assert off.describe()["flatten_support_px"] is None
    plain = NetworkSegmenter(small_model, default_config("plain"), device="cpu", precision="fp32")
    assert plain.describe()["trained_with_flatten_support_px"] is None
    on = NetworkSegmenter(
        small_model, default_config("plain"), device="cpu", precision="fp32", flatten_support_px=12
    )
    assert on.describe()["flatten_support_px"] == 12
    image = np.random.default_rng(3).normal(size=(64, 64)).astype(np.float32)
    image += np.linspace(0, 5, 64)[None]
    assert not np.allclose(on.predict_proba(image, 1.0), plain.predict_proba(image, 1.0))
    with pytest.raises(PreprocessError, match="flatten_sigma_px"):
        NetworkSegmenter(small_model, config, device="cpu", flatten_support_px=-3)


def _disk_probability(shape, centre, radius, inside=0.99):
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    inside_disk = np.hypot(yy - centre[0], xx - centre[1]) <= radius
    return np.where(inside_disk, inside, 0.01).astype(np.float32)


def test_combined_scales_take_where_from_the_coarse_pass_and_outlines_from_the_fine_one():
    shape = (60, 160)
    # A: both passes see it, the coarse outline half a pixel wider (IoU 0.91): fine outline.
    # B: the coarse pass sees a 12 px disk, the fine one only a fragment of it: coarse outline.
    # C: a speck only the fine pass sees: dropped.  D: lukewarm in the coarse pass (peak 0.8),
    # confident in the fine one: left to the coarse pass, whose confident-region rule drops it.
    fine_a = _disk_probability(shape, (30, 30), 10)
    coarse_a = _disk_probability(shape, (30, 30), 10.5)
    coarse_b = _disk_probability(shape, (30, 80), 12)
    fine_b = _disk_probability(shape, (30, 80), 4)
    fine_c = _disk_probability(shape, (8, 55), 2)
    fine_d = _disk_probability(shape, (30, 135), 8)
    coarse_d = _disk_probability(shape, (30, 135), 8, inside=0.8)
    fine = np.maximum.reduce([fine_a, fine_b, fine_c, fine_d])
    coarse = np.maximum.reduce([coarse_a, coarse_b, coarse_d])
    combined = combine_scales(fine, coarse, 3, threshold=0.65, min_peak_probability=0.95)
    mask = keep_confident_regions(combined, 0.65, 0.95)
    expected = (fine_a >= 0.65) | (coarse_b >= 0.65)
    np.testing.assert_array_equal(mask, expected)
    np.testing.assert_array_equal(combined[:, 120:], coarse[:, 120:])
    # Stricter agreement than A's IoU: the coarse outline everywhere.
    strict = combine_scales(fine, coarse, 3, 0.65, 0.95, agreement=0.95)
    np.testing.assert_array_equal(strict, coarse)
    with pytest.raises(InferenceError, match="differ"):
        combine_scales(fine, coarse[:, :100], 3, 0.65, 0.95)


def _random_particle_maps(seed=0, shape=(200, 240)):
    from scipy import ndimage as ndi

    rng = np.random.default_rng(seed)
    field = ndi.gaussian_filter(rng.normal(size=shape), 3)
    field = (field - field.min()) / (field.max() - field.min())
    coarse = np.clip((field - 0.45) * 8, 0, 1).astype(np.float32)
    fine = np.clip(coarse + rng.normal(0, 0.2, size=shape), 0, 1).astype(np.float32)
    return fine, coarse


def test_confident_regions_and_combined_scales_follow_their_definitions_region_by_region():
    from scipy import ndimage as ndi

    fine, coarse = _random_particle_maps()
    box = np.ones((3, 3), dtype=bool)
    labels, n = ndi.label(coarse >= 0.65, structure=box)
    assert n > 25  # many regions, many of whose neighbourhoods meet
    kept = keep_confident_regions(coarse, 0.65, 0.95)
    peaks = [coarse[labels == label].max() for label in range(1, n + 1)]
    expected = np.isin(labels, 1 + np.flatnonzero(np.asarray(peaks) >= 0.95))
    np.testing.assert_array_equal(kept, expected)
    assert 0 < expected.sum() < (labels > 0).sum()

    factor = 2
    regions, _ = ndi.label(kept, structure=box)
    grown = ndi.grey_dilation(regions, size=(2 * factor + 1,) * 2)
    expected = coarse.copy()
    n_fine = 0
    for label in range(1, regions.max() + 1):
        near, region = grown == label, regions == label
        seen = (fine >= 0.65) & near
        if np.count_nonzero(seen & region) / np.count_nonzero(seen | region) >= 0.7:
            expected[near] = fine[near]
            n_fine += 1
    assert 0 < n_fine < regions.max()
    np.testing.assert_array_equal(combine_scales(fine, coarse, factor, 0.65, 0.95, 0.7), expected)


def test_segmenter_shows_the_network_large_declared_particles_at_the_target_size(
    small_model, monkeypatch
):
    seen = []
    real_predict = inference_module.predict_tiled

    def spy(model, prepared, **tiling):
        seen.append(prepared.shape)
        return real_predict(model, prepared, **tiling)

    monkeypatch.setattr(inference_module, "predict_tiled", spy)
    config = {**default_config("sized"), "inference": {"target_particle_px": 20}}
    segmenter = NetworkSegmenter(small_model, config, device="cpu", precision="fp32")
    image = np.random.default_rng(4).normal(size=(200, 160)).astype(np.float32)
    assert segmenter.predict_proba(image, 0.1).shape == (200, 160)
    # 8 nm at 0.1 nm/px is 80 px: block-averaged by 4 to 20 px, the probability back on 200x160
    # Declared, the image is seen twice: on its own grid, then block-averaged by 4 (80 px seen
    # at 20 px); the combined probability is on the image's 200x160 pixels.
    assert segmenter.predict_proba(image, 0.1, particle_diameter_nm=8.0).shape == (200, 160)
    assert seen == [(200, 160), (200, 160), (50, 40)]
    declared = NetworkSegmenter(
        small_model, config, device="cpu", precision="fp32", particle_diameter_nm=8.0
    )
    assert declared.describe()["particle_diameter_nm"] == 8.0
    assert declared.describe()["target_particle_px"] == 20
    declared.segment(image, 0.1)
    declared.segment(image, 0.1, particle_diameter_nm=4.0)  # a call's own declaration wins
    declared.segment(image, 0.1, particle_diameter_nm=3.0)  # 30 px: one pass is enough
    assert seen[3:] == [(200, 160), (50, 40), (200, 160), (100, 80), (200, 160)]
    # 0.4 nm is 4 px, under small_particle_px: one pass, on the image enlarged twice, and the
    # probability averaged back onto the image's pixels.
    assert declared.describe()["small_particle_px"] == inference_module.SMALL_PARTICLE_PX
    mask = declared.segment(image, 0.1, particle_diameter_nm=0.4)
    assert mask.shape == (200, 160)
    assert seen[8:] == [(400, 320)]
    plain = NetworkSegmenter(small_model, default_config("plain"), device="cpu")
    assert plain.describe()["target_particle_px"] == inference_module.TARGET_PARTICLE_PX
    assert plain.describe()["particle_diameter_nm"] is None
    with pytest.raises(InferenceError, match="particle_diameter_nm"):
        NetworkSegmenter(small_model, config, device="cpu", particle_diameter_nm=-1.0)


def test_block_mean_and_upsample_round_trip_a_smooth_image():
    yy, xx = np.mgrid[0:50, 0:70].astype(np.float32)
    image = 0.01 * yy + 0.02 * xx
    small = block_mean(image, 4)
    assert small.shape == (13, 18)
    assert small[0, 0] == pytest.approx(image[:4, :4].mean())
    back = upsample_to(small, image.shape, 4)
    assert back.shape == image.shape
    # Exact for a linear ramp away from the padded last blocks.
    np.testing.assert_allclose(back[2:46, 2:66], image[2:46, 2:66], atol=1e-4)


# ---------------------------------------------------------------------------------------------
# tiled inference


class PixelwiseModel(torch.nn.Module):
    """Output depends on each pixel alone, so any tiling must reproduce it exactly."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 3.0 * x


def test_tiles_cover_the_extent_with_the_overlap():
    origins = tile_origins(300, 64, 16)
    assert origins[0] == 0 and origins[-1] == 300 - 64
    assert all(b - a <= 64 - 16 for a, b in zip(origins, origins[1:], strict=False))
    assert hann_window_2d(8).min() > 0


@pytest.mark.parametrize("shape", [(100, 150), (20, 7), (257, 64)])
def test_tiled_blending_is_exact_for_a_pixelwise_model(shape):
    image = np.random.default_rng(1).normal(size=shape).astype(np.float32)
    prob = predict_tiled(PixelwiseModel(), image, tile_size=64, overlap=24, precision="fp32")
    np.testing.assert_allclose(prob, 1 / (1 + np.exp(-3.0 * image)), atol=1e-5)


def test_tiled_inference_matches_untiled_inference(small_model):
    image, _ = disk_image()
    x = normalize_image(image)
    whole = predict_tiled(small_model, x, tile_size=256, overlap=64, precision="fp32")
    tiled = predict_tiled(small_model, x, tile_size=64, overlap=32, batch_size=3, precision="fp32")
    assert whole.shape == tiled.shape == image.shape
    spread = whole.max() - whole.min()
    assert np.abs(whole - tiled).mean() < 0.1 * spread


class TileCountingModel(PixelwiseModel):
    """Pixelwise, and adds up the pixels of every tile it is shown."""

    def __init__(self):
        super().__init__()
        self.pixels = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.pixels += x.shape[0] * x.shape[-2] * x.shape[-1]
        return super().forward(x)


def test_tile_layout_pads_small_images_to_a_multiple_of_32_and_counts_its_tiles():
    small = tile_layout(20, 7, tile_size=512, overlap=64)
    # 20 + 64 and 7 + 64 px of reflected margin, rounded up to a multiple of 32.
    assert (small.tile_height, small.tile_width) == (96, 96)
    assert small.origins == ((0, 0),) and small.tile_pixels == 96 * 96
    # 2048 + 64 px of padded image in tiles of 512 that overlap by at least 64: five each way.
    large = tile_layout(2048, 2048, tile_size=512, overlap=64)
    assert len(large.origins) == 25 and large.tile_pixels == 25 * 512 * 512
    with pytest.raises(InferenceError, match="multiple of 32"):
        tile_layout(100, 100, tile_size=100)


@pytest.mark.parametrize(
    ("shape", "pixel_size_nm", "diameter_nm", "flips"),
    [
        ((300, 260), 0.1, None, False),  # the image's own grid
        ((300, 260), 0.02, None, False),  # block-averaged by 5 to the 0.1 nm working grid
        ((300, 260), 0.1, 8.0, False),  # 80 px: its own grid and one block-averaged by 3
        ((300, 260), 0.1, 0.5, False),  # 5 px: one pass on the image enlarged twice
        ((130, 90), 0.1, 0.5, True),  # ... four times, with test-time flips
        ((700, 40), 0.3, 3.0, False),  # 10 px: just not enlarged
    ],
)
def test_network_megapixels_counts_the_tiles_the_segmenter_computes_on(
    shape, pixel_size_nm, diameter_nm, flips
):
    config = {**default_config("counted"), "inference": {"tile_size": 128, "overlap": 32}}
    model = TileCountingModel()
    segmenter = NetworkSegmenter(
        model, config, device="cpu", precision="fp32", test_time_flips=flips
    )
    image = np.random.default_rng(5).normal(size=shape).astype(np.float32)
    segmenter.segment(image, pixel_size_nm, particle_diameter_nm=diameter_nm)
    counted = network_megapixels(shape, pixel_size_nm, config, diameter_nm, test_time_flips=flips)
    assert counted == pytest.approx(model.pixels / 1e6, rel=1e-12)
    assert counted > 0


def test_network_megapixels_grows_with_the_enlarged_grid_and_takes_the_workflows_tile_size():
    config = default_config("counted")
    plain = network_megapixels((2048, 2048), 0.1, config)
    assert plain == pytest.approx(25 * 512 * 512 / 1e6)
    # Enlarged twice: 4096 + 64 px each way, ten tiles of 512 each way, four times the work.
    assert network_megapixels((2048, 2048), 0.1, config, 0.5) == pytest.approx(100 * 0.262144)
    smaller_tiles = network_megapixels((2048, 2048), 0.1, config, tile_size=256)
    assert smaller_tiles > plain  # more overlap to compute
    with pytest.raises(InferenceError, match="pixel_size_nm"):
        network_megapixels((100, 100), 0.0, config)
    with pytest.raises(InferenceError, match="particle_diameter_nm"):
        network_megapixels((100, 100), 0.1, config, -2.0)
    with pytest.raises(InferenceError, match="shape"):
        network_megapixels((0, 100), 0.1, config)


def test_a_tile_size_override_is_what_the_network_sees_and_is_recorded(small_model, tmp_path):
    save_model_folder(small_model, tmp_path / "m", default_config("tiles"))
    loaded = load_segmenter(tmp_path / "m", device="cpu", precision="fp32", tile_size=1088)
    assert loaded.describe()["tile_size"] == 1088
    assert load_segmenter(tmp_path / "m", device="cpu").tile_size == 512  # the model's own
    counting = TileCountingModel()
    config = default_config("counted")
    segmenter = NetworkSegmenter(counting, config, device="cpu", precision="fp32", tile_size=1088)
    segmenter.predict_proba(np.zeros((2048, 2048), np.float32), 0.1)
    # 2048 + 64 px of margin each way: two tiles of 1088 instead of five of 512.
    assert counting.pixels == 4 * 1088 * 1088
    assert segmenter.network_megapixels((2048, 2048), 0.1) == pytest.approx(counting.pixels / 1e6)
    for bad, message in [(100, "multiple of 32"), (64, "overlap"), (0, "multiple of 32")]:
        with pytest.raises(InferenceError, match=message):
            NetworkSegmenter(TileCountingModel(), config, device="cpu", tile_size=bad)


class ShiftModel(torch.nn.Module):
    """Logit = 3 x the pixel to the left: not flip-equivariant, so flips change what it sees."""

    def forward(self, x):
        return 3.0 * torch.nn.functional.pad(x, (1, 0))[..., :, :-1]


def confidence_map():
    """A sure region (centre 0.95, rim 0.65), a lukewarm one (0.7) and background (0.1)."""
    prob = np.full((40, 60), 0.1, np.float32)
    prob[5:20, 5:20] = 0.65
    prob[10:15, 10:15] = 0.95
    prob[20, 20] = 0.62  # touches the sure region only diagonally: still part of it
    prob[25:35, 35:50] = 0.7
    return prob


def test_keep_confident_regions_drops_lukewarm_regions_and_keeps_outlines():
    prob = confidence_map()
    kept = keep_confident_regions(prob, 0.6, 0.9)
    expected = prob >= 0.6
    expected[25:35, 35:50] = False
    np.testing.assert_array_equal(kept, expected)
    # No level, or one not above the threshold, is the plain threshold.
    np.testing.assert_array_equal(keep_confident_regions(prob, 0.6, None), prob >= 0.6)
    np.testing.assert_array_equal(keep_confident_regions(prob, 0.6, 0.6), prob >= 0.6)
    assert not keep_confident_regions(np.zeros((5, 5)), 0.6, 0.9).any()


def test_segmenter_applies_the_models_min_peak_probability_unless_overridden(small_model):
    prob = confidence_map()
    config = {**default_config("peaks"), "threshold": 0.6, "min_peak_probability": 0.9}
    segmenter = NetworkSegmenter(small_model, config, device="cpu", precision="fp32")
    segmenter.predict_proba = lambda image, pixel_size_nm, polarity="auto", diameter=None: prob
    assert segmenter.describe()["min_peak_probability"] == 0.9
    assert not segmenter(prob, 1.0)[25:35, 35:50].any()
    assert segmenter(prob, 1.0).sum() == (prob >= 0.6).sum() - 150
    keep_all = NetworkSegmenter(
        small_model, config, device="cpu", precision="fp32", min_peak_probability=0.0
    )
    keep_all.predict_proba = segmenter.predict_proba
    assert keep_all.describe()["min_peak_probability"] is None
    np.testing.assert_array_equal(keep_all(prob, 1.0), prob >= 0.6)
    with pytest.raises(InferenceError, match="min_peak_probability"):
        NetworkSegmenter(small_model, config, device="cpu", min_peak_probability=1.5)


def test_test_time_flips_average_the_four_flipped_readings(small_model):
    image = np.random.default_rng(2).normal(size=(40, 56)).astype(np.float32)
    tiling = dict(tile_size=64, overlap=16, precision="fp32")
    # A pixelwise network reads every flip the same: the average is the plain prediction.
    np.testing.assert_allclose(
        inference_module.predict_flips(PixelwiseModel(), image, **tiling),
        predict_tiled(PixelwiseModel(), image, **tiling),
        atol=1e-6,
    )

    # A shift reads the left neighbour, or the right one under a left-right flip.
    def sigmoid(v):
        return 1 / (1 + np.exp(-3.0 * v))

    left = np.pad(image, ((0, 0), (1, 0)), mode="reflect")[:, :-1]
    right = np.pad(image, ((0, 0), (0, 1)), mode="reflect")[:, 1:]
    flipped = inference_module.predict_flips(ShiftModel(), image, **tiling)
    expected = (sigmoid(left) + sigmoid(right)) / 2
    np.testing.assert_allclose(flipped[:, 1:-1], expected[:, 1:-1], atol=1e-5)
    config = default_config("flips")
    segmenter = NetworkSegmenter(
        small_model, config, device="cpu", precision="fp32", test_time_flips=True
    )
    assert segmenter.describe()["test_time_flips"] is True
    image, _ = disk_image()
    x = normalize_image(image)
    np.testing.assert_allclose(
        segmenter.predict_proba(image, 1.0),
        inference_module.predict_flips(
            small_model,
            x,
            tile_size=segmenter.tile_size,
            overlap=segmenter.overlap,
            precision="fp32",
        ),
        atol=1e-5,
    )


def test_validation_probabilities_can_average_the_flips_as_the_segmenter_does():
    from nanomorph.segment.train import PoolImage, pool_probabilities

    rng = np.random.default_rng(3)
    image = rng.uniform(size=(48, 40)).astype(np.float16)
    pool = [PoolImage(seed=0, image=image, mask=image > 0.5, scenario="isolated")]
    preprocess = PreprocessConfig()
    x = normalize_for_network(image.astype(np.float32), preprocess)
    cpu = dict(device=torch.device("cpu"), precision="fp32")
    ((_, one_pass),) = pool_probabilities(ShiftModel(), pool, preprocess, **cpu)
    ((_, flips),) = pool_probabilities(ShiftModel(), pool, preprocess, **cpu, test_time_flips=True)
    tiling = dict(tile_size=512, overlap=64, precision="fp32")
    np.testing.assert_allclose(one_pass, predict_tiled(ShiftModel(), x, **tiling), atol=1e-6)
    np.testing.assert_allclose(
        flips, inference_module.predict_flips(ShiftModel(), x, **tiling), atol=1e-6
    )
    # The shift model is not flip-equivariant, so the averaged reading really differs.
    assert np.abs(flips - one_pass).max() > 0.01


def test_bf16_inference_is_close_to_fp32(small_model):
    x = normalize_image(disk_image()[0])
    fp32 = predict_tiled(small_model, x, tile_size=128, precision="fp32")
    bf16 = predict_tiled(small_model, x, tile_size=128, precision="bf16")
    assert np.abs(fp32 - bf16).max() < 0.02


@pytest.mark.parametrize("native", [True, False])
def test_auto_precision_uses_bf16_only_where_the_hardware_has_it(monkeypatch, small_model, native):
    monkeypatch.setattr(inference_module, "native_bf16", lambda device: native)
    cpu = torch.device("cpu")
    assert resolve_precision("auto", cpu) == ("bf16" if native else "fp32")
    # An explicit choice is honoured either way.
    assert resolve_precision("bf16", cpu) == "bf16"
    assert resolve_precision("fp32", cpu) == "fp32"
    segmenter = NetworkSegmenter(small_model, default_config(), device="cpu")
    assert segmenter.precision == ("bf16" if native else "fp32")
    assert segmenter.describe()["precision"] == segmenter.precision


def test_precision_choice_reaches_the_network_from_cli_and_pipeline():
    from nanomorph.cli import PRECISION_CHOICES
    from nanomorph.pipeline import make_segmenter

    assert PRECISION_CHOICES == inference_module.PRECISIONS
    # The shipped model, forced to each explicit precision.
    for precision in ("fp32", "bf16"):
        segmenter = make_segmenter("model", device="cpu", precision=precision)
        assert segmenter.describe()["precision"] == precision


def test_unknown_precision_is_refused():
    with pytest.raises(InferenceError, match="unknown precision 'fp16'"):
        resolve_precision("fp16", torch.device("cpu"))


def test_segmenter_returns_input_shape_for_resampled_images(small_model):
    segmenter = NetworkSegmenter(small_model, default_config(), device="cpu")
    image = disk_image((90, 70))[0]
    prob = segmenter.predict_proba(image, pixel_size_nm=0.02)  # downsampled by 5 inside
    assert prob.shape == image.shape and prob.dtype == np.float32
    assert 0 <= prob.min() and prob.max() <= 1
    assert segmenter(image, 0.02).dtype == bool


# ---------------------------------------------------------------------------------------------
# metrics


def test_pixel_error_breakdown_separates_whole_particles_from_outlines():
    truth = np.zeros((20, 20), np.int32)
    truth[2:6, 2:6] = 1  # found, outline off by a row and a pixel
    truth[10:13, 10:13] = 2  # missed altogether
    prediction = np.zeros((20, 20), bool)
    prediction[1:6, 2:6] = True  # 4 pixels too many above ...
    prediction[5, 5] = False  # ... and one missing in the corner
    prediction[15:17, 0:2] = True  # a region with no particle under it
    counts = metrics.pixel_error_breakdown(truth, prediction)
    assert counts == {
        "correct": 15,
        "missed_particles": 9,
        "edge_missed": 1,
        "false_regions": 4,
        "edge_added": 4,
    }
    summary = metrics.summarize_pixel_errors(counts)
    assert summary["particle_iou"] == pytest.approx(15 / 33)
    assert summary["iou_with_perfect_outlines"] == pytest.approx(16 / 29)
    assert sum(summary[k] for k in metrics.PIXEL_ERROR_KINDS) == pytest.approx(1.0)
    # A region touching a particle counts as outline error however large it is.
    prediction[6:9, 2:6] = True
    assert metrics.pixel_error_breakdown(truth, prediction)["edge_added"] == 4 + 12
    with pytest.raises(metrics.MetricsError, match="no particle pixel"):
        metrics.summarize_pixel_errors(
            metrics.pixel_error_breakdown(np.zeros((3, 3), int), np.zeros((3, 3), bool))
        )


def test_match_points_to_boxes_pairs_each_box_with_one_centroid():
    boxes = np.array([[0, 0, 10, 10], [8, 0, 18, 10], [30, 30, 40, 40]], float)
    points = np.array(
        [
            [5, 5],  # centre of box 0
            [9, 5],  # inside boxes 0 and 1, nearer the centre of box 1
            [6, 4],  # a second centroid in box 0: one of the two is a false detection
            [50, 50],  # outside every box
        ],
        float,
    )
    m = metrics.match_points_to_boxes(points, boxes)
    assert (m.n_boxes, m.n_points, m.tp) == (3, 4, 2)
    assert m.pairs == [(0, 0), (1, 1)]
    assert m.recall == pytest.approx(2 / 3)  # box 2 has no centroid: missed
    assert m.precision == pytest.approx(2 / 4)
    # Boxes can take centroids from overlapping neighbours when that matches more of them.
    crowded = metrics.match_points_to_boxes(np.array([[9.0, 5.0], [5.0, 5.0]]), boxes[:2])
    assert crowded.tp == 2
    empty = metrics.match_points_to_boxes(np.zeros((0, 2)), boxes)
    assert empty.tp == 0 and empty.recall == 0 and np.isnan(empty.precision)
    with pytest.raises(metrics.MetricsError, match="x1 >= x0"):
        metrics.match_points_to_boxes(points, np.array([[10, 0, 0, 10]], float))


def test_pixel_metrics_on_a_known_confusion():
    truth = np.array([[1, 1, 0, 0]], bool)
    pred = np.array([[1, 0, 1, 0]], bool)
    cm = metrics.confusion_matrix(truth, pred)
    np.testing.assert_array_equal(cm, [[1, 1], [1, 1]])
    truth = np.array([1, 1, 1, 0, 0, 0, 0, 0], bool)
    pred = np.array([1, 1, 0, 1, 0, 0, 0, 0], bool)
    cm = metrics.confusion_matrix(truth, pred)
    np.testing.assert_array_equal(cm, [[4, 1], [1, 2]])
    assert metrics.global_accuracy(cm) == pytest.approx(6 / 8)
    np.testing.assert_allclose(metrics.per_class_accuracy(cm), [4 / 5, 2 / 3])
    np.testing.assert_allclose(metrics.iou_per_class(cm), [4 / 6, 2 / 4])
    np.testing.assert_allclose(metrics.dice_per_class(cm), [8 / 10, 4 / 6])
    summary = metrics.pixel_metrics(cm)
    assert summary["particle_iou"] == pytest.approx(0.5)
    assert summary["confusion_matrix_normalized"][1] == pytest.approx([1 / 3, 2 / 3])


def test_instance_matching_counts_hits_misses_and_false_alarms():
    shape = (80, 80)
    truth = np.zeros(shape, np.int32)
    pred = np.zeros(shape, np.int32)
    truth[disk((20, 20), 8, shape=shape)] = 1
    truth[disk((60, 60), 8, shape=shape)] = 2  # missed
    pred[disk((21, 20), 8, shape=shape)] = 5  # shifted by 1 px: IoU well above 0.5
    pred[disk((20, 60), 6, shape=shape)] = 7  # false alarm
    match = metrics.match_instances(truth, pred)
    assert (match.tp, match.fp, match.fn) == (1, 1, 1)
    assert match.precision == 0.5 and match.recall == 0.5 and match.f1 == 0.5
    assert match.pairs[0][:2] == (1, 5) and match.pairs[0][2] > 0.8


def test_instance_matching_rejects_pairs_below_the_iou_threshold():
    truth = np.zeros((40, 40), np.int32)
    pred = np.zeros((40, 40), np.int32)
    truth[10:20, 10:20] = 1
    pred[10:20, 15:25] = 1  # IoU 50 / 150
    assert metrics.match_instances(truth, pred).tp == 0
    assert metrics.match_instances(truth, pred, iou_threshold=0.3).tp == 1


def test_diameter_errors_against_the_true_table():
    shape = (100, 100)
    truth = np.zeros(shape, np.int32)
    truth[disk((50, 50), 20, shape=shape)] = 3
    pred = np.zeros(shape, np.int32)
    pred[disk((50, 50), 22, shape=shape)] = 1
    table = pd.DataFrame({"particle_id": [3], "equivalent_diameter_nm": [2 * 20 * 0.5]})
    errors = metrics.diameter_errors(metrics.match_instances(truth, pred), pred, 0.5, table)
    assert len(errors) == 1
    assert errors["relative_error"].iloc[0] == pytest.approx(0.1, abs=0.01)


# ---------------------------------------------------------------------------------------------
# evaluation


def _disk_dataset():
    items = []
    for i, scenario in enumerate(["isolated", "isolated", "haadf"]):
        image, mask = disk_image(centres=((30, 40 + i), (70, 110)))
        from skimage.measure import label

        items.append(_two_disk_item(image, mask, label(mask).astype(np.uint32), scenario))
    return items


def _two_disk_item(image, mask, instances, scenario):
    """A test-set item holding two particles of radius 12 px at 0.5 nm/px."""
    table = pd.DataFrame({"particle_id": [1, 2], "equivalent_diameter_nm": [2 * 12 * 0.5] * 2})
    return SimpleNamespace(
        image=image,
        mask=mask,
        instances=instances,
        particles=table,
        pixel_size_nm=0.5,
        scenario=scenario,
    )


def test_evaluate_scores_any_callable_and_writes_reports(tmp_path):
    result = evaluate_module.evaluate(
        lambda image, pixel_size_nm: image < 0.5,
        dataset=_disk_dataset(),
        out_dir=tmp_path,
        name="perfect",
        progress=False,
    )
    assert set(result["scenarios"]) == {"isolated", "haadf"}
    assert result["scenarios"]["isolated"]["n_images"] == 2
    overall = result["overall"]
    assert overall["pixel"]["particle_iou"] == 1.0
    assert overall["instance"]["recall"] == 1.0 and overall["instance"]["precision"] == 1.0
    # Rasterised disks of radius 12 have about 2 % more area than the true circle.
    assert abs(overall["diameter"]["mean_relative_error"]) < 0.03
    for name in ("metrics.json", "per_image.csv", "confusion_isolated.png", "confusion_haadf.json"):
        assert (tmp_path / name).is_file()
    per_image = pd.read_csv(tmp_path / "per_image.csv")
    assert (per_image["particle_pixels_false_positive"] == 0).all()
    assert (per_image["particle_pixels_false_negative"] == 0).all()
    assert (per_image["particle_pixels_true_positive"] > 0).all()
    assert (per_image["median_true_diameter_px"] > 20).all()

    empty = evaluate_module.evaluate(
        lambda image, pixel_size_nm: np.zeros(image.shape, bool),
        dataset=_disk_dataset(),
        progress=False,
    )
    assert empty["overall"]["instance"]["recall"] == 0.0
    assert empty["overall"]["pixel"]["particle_iou"] == 0.0


def test_a_scenario_has_the_same_test_images_whatever_else_is_evaluated():
    # evaluating one scenario alone must score the images the full evaluation scored, and a
    # second set must come from a new seed, not from a shorter scenario list
    from nanomorph.simulate import UnknownScenarioError

    full = list(evaluate_module.simulated_test_set(n_per_scenario=1, shape=(48, 48)))
    for position in (0, 3):
        scenario = full[position].scenario
        (alone,) = evaluate_module.simulated_test_set((scenario,), n_per_scenario=1, shape=(48, 48))
        np.testing.assert_array_equal(alone.image, full[position].image)
    (other,) = evaluate_module.simulated_test_set(
        ("isolated",), seed=20240602, n_per_scenario=1, shape=(48, 48)
    )
    assert not np.array_equal(other.image, full[0].image)
    with pytest.raises(UnknownScenarioError):
        list(evaluate_module.simulated_test_set(("isolatd",), n_per_scenario=1))


def test_simulation_overrides_record_the_same_scenes_otherwise():
    # A noiseless copy of the test set: the same particles (mask), another recording.
    drawn = list(evaluate_module.simulated_test_set(("isolated", "haadf"), n_per_scenario=1))
    quiet = list(
        evaluate_module.simulated_test_set(
            ("isolated", "haadf"), n_per_scenario=1, overrides={"dose": 1e7, "read_noise": 0.0}
        )
    )
    for before, after in zip(drawn, quiet, strict=True):
        np.testing.assert_array_equal(after.mask, before.mask)
        assert after.pixel_size_nm == before.pixel_size_nm
        assert (after.params["dose"], after.params["read_noise"]) == (1e7, 0.0)
        assert not np.array_equal(after.image, before.image)
    result = evaluate_module.evaluate(
        evaluate_module.TRUTH,
        scenarios=("isolated",),
        n_per_scenario=1,
        shape=(64, 64),
        progress=False,
        simulation_overrides={"dose": 1e7},
    )
    assert result["simulation_overrides"] == {"dose": 1e7}
    with pytest.raises(evaluate_module.EvaluationError, match="dataset"):
        evaluate_module.evaluate(
            evaluate_module.TRUTH,
            dataset=_disk_dataset(),
            progress=False,
            simulation_overrides={"dose": 1e7},
        )


def _merged_pair_dataset():
    # Two overlapping disks: one region in the mask, two particles in the instance map.
    from skimage.measure import label

    image, mask = disk_image(centres=((50, 50), (50, 70)), shape=(100, 130))
    instances = label(mask).astype(np.uint32)
    instances[:, 60:] = np.where(mask[:, 60:], 2, 0)
    return [_two_disk_item(image, mask, instances, "overlapping")]


def test_evaluate_truth_scores_the_exact_mask_and_the_exact_split():
    dataset = _merged_pair_dataset()
    # The exact mask split into connected components: perfect pixels, one merged particle.
    merged = evaluate_module.evaluate(evaluate_module.TRUTH, dataset=dataset, progress=False)
    assert merged["overall"]["pixel"]["particle_iou"] == 1.0
    assert merged["overall"]["instance"]["n_predicted"] == 1
    # The simulator's own instances: both particles found, whatever the mask.
    split = evaluate_module.evaluate(
        lambda image, px: np.zeros(image.shape, bool),
        dataset=dataset,
        instances_fn=evaluate_module.TRUTH,
        progress=False,
    )
    assert split["overall"]["instance"]["recall"] == 1.0
    assert split["overall"]["pixel"]["particle_iou"] == 0.0
    with pytest.raises(evaluate_module.EvaluationError, match="'truth'"):
        evaluate_module.evaluate("oracle", dataset=dataset, progress=False)


def test_evaluate_rejects_a_mask_of_the_wrong_shape():
    with pytest.raises(evaluate_module.EvaluationError, match="shape"):
        evaluate_module.evaluate(
            lambda image, px: np.zeros((3, 3), bool), dataset=_disk_dataset(), progress=False
        )
