"""Training loop: loss goes down, the best model folder and checkpoint are written, resume works.

Runs on tiny synthetic disk images (not the simulator) with a small network so it takes seconds.
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from scipy import ndimage as ndi
from skimage.draw import disk

from nanomorph.segment.model import load_segmenter
from nanomorph.segment.preprocess import PreprocessConfig
from nanomorph.segment.train import (
    THRESHOLD_IOU_TOLERANCE,
    AugmentConfig,
    PoolImage,
    TrainConfig,
    TrainingError,
    TrainingSample,
    augment_intensity,
    bce_dice_loss,
    choose_threshold,
    local_contrast_field,
    loss_weights,
    lr_factor,
    make_batch,
    min_peak_probability_scores,
    outline_weights,
    small_particle_weights,
    split_of_seed,
    train,
    with_flattening,
)

# A small network keeps the test fast; the loop is the same for DeepLabV3+/ResNet-18.
SMALL = {"arch": "unet", "encoder": "mobilenet_v2"}


def disks_sample(seed: int, shape: tuple[int, int] = (80, 80)) -> TrainingSample:
    """Dark disks on a noisy bright background."""
    rng = np.random.default_rng(seed)
    mask = np.zeros(shape, bool)
    for _ in range(int(rng.integers(2, 5))):
        rr, cc = disk(tuple(rng.uniform(0, shape[0], 2)), rng.uniform(4, 9), shape=shape)
        mask[rr, cc] = True
    image = np.where(mask, 0.4, 1.0) + rng.normal(0, 0.08, shape)
    return TrainingSample(image.astype(np.float32), mask, pixel_size_nm=0.5, scenario="disks")


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def run(out_dir, **kwargs):
    settings = dict(
        steps=24,
        tile_size=64,
        batch_size=2,
        seed=3,
        n_images=5,
        image_shape=(80, 80),
        lr=3e-3,
        val_every=12,
        log_every=4,
        sample_source=disks_sample,
        progress=False,
        # One thread: on a busy 2-core machine, two OpenMP threads per process run ~4x slower.
        n_threads=1,
        precision="fp32",
        **SMALL,
    )
    settings.update(kwargs)
    return train(out_dir, **settings)


def read_log(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_training_lowers_the_loss_and_writes_a_usable_model(tmp_path):
    result = run(tmp_path)
    assert result["finished"] and result["steps"] == 24
    log = read_log(tmp_path / "log.jsonl")
    losses = [r["loss"] for r in log if r["kind"] == "train"]
    assert len(losses) == 6
    assert losses[-1] < 0.8 * losses[0]
    assert [r["step"] for r in log if r["kind"] == "validation"] == [12, 24]
    assert (tmp_path / "checkpoint.pt").is_file()
    assert len(list((tmp_path / "cache" / "80x80").glob("*.npz"))) == 5
    metrics = json.loads((tmp_path / "model" / "metrics.json").read_text())
    assert metrics["n_images"] == {"train": 3, "validation": 1, "test": 1}
    assert 0 <= metrics["test"]["particle_iou"] <= 1
    segmenter = load_segmenter(tmp_path / "model", device="cpu")
    assert segmenter.config["training"]["steps"] == 24
    # The threshold was tuned on the validation split and is the one the test was scored with.
    tuning = segmenter.config["threshold_tuning"]
    ious = {float(t): v for t, v in tuning["particle_iou"].items()}
    ratios = {float(t): v for t, v in tuning["median_matched_area_ratio"].items()}
    assert segmenter.threshold == choose_threshold(ious, ratios)
    assert ious[segmenter.threshold] >= max(ious.values()) - THRESHOLD_IOU_TOLERANCE
    assert metrics["test"]["threshold"] == segmenter.threshold
    # So was the level a region must reach somewhere, with the same validation pass.
    peak = segmenter.config["min_peak_probability_tuning"]
    assert peak["split"] == "validation"
    assert (
        peak["chosen"]
        == segmenter.config["min_peak_probability"]
        == metrics["test"]["min_peak_probability"]
    )
    assert f"{segmenter.threshold:g}" in peak["by_level"]
    image = disks_sample(99).image
    assert segmenter(image, 0.5).shape == image.shape


def test_resumed_training_continues_from_the_saved_step(tmp_path):
    first = run(tmp_path, steps=8, val_every=4, log_every=2, stop_after_steps=4)
    assert not first["finished"] and first["steps"] == 4
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=False)["step"] == 4
    second = run(tmp_path, steps=8, val_every=4, log_every=2)
    assert second["finished"] and second["steps"] == 8
    train_steps = [r["step"] for r in read_log(tmp_path / "log.jsonl") if r["kind"] == "train"]
    assert train_steps == [2, 4, 6, 8]
    # Resuming restored weights, optimiser and random state: same weights as one straight run.
    straight = run(tmp_path / "straight", steps=8, val_every=4, log_every=2)
    assert straight["best_val_particle_iou"] == pytest.approx(second["best_val_particle_iou"])
    resumed = torch.load(tmp_path / "checkpoint.pt", weights_only=False)["model"]
    uninterrupted = torch.load(tmp_path / "straight" / "checkpoint.pt", weights_only=False)["model"]
    for key, value in uninterrupted.items():
        torch.testing.assert_close(resumed[key], value)


@pytest.mark.parametrize("setting", ["steps", "batch_size", "val_every", "log_every"])
def test_counts_below_one_are_refused_before_anything_is_written(tmp_path, setting):
    with pytest.raises(TrainingError, match=f"{setting} must be at least 1, got 0"):
        run(tmp_path / "run", **{setting: 0})
    assert not (tmp_path / "run").exists()


def test_resume_refuses_a_checkpoint_from_different_settings(tmp_path):
    run(tmp_path, steps=4, val_every=4, stop_after_steps=4)
    with pytest.raises(TrainingError, match="batch_size"):
        run(tmp_path, steps=4, val_every=4, batch_size=3)


@pytest.mark.parametrize(
    ("setting", "value"),
    [("lr", 3e-4), ("weight_decay", 1e-2), ("flatten_support_px", 16.0)],
)
def test_resume_refuses_a_checkpoint_of_another_recipe(tmp_path, setting, value):
    # Not only the settings that shape the pool or the network: a learning rate or a
    # preprocessing that differs would continue the run as a mixture of two recipes.
    run(tmp_path, steps=8, val_every=4, stop_after_steps=4)
    expected = "preprocess" if setting == "flatten_support_px" else setting
    with pytest.raises(TrainingError, match=f"made with {expected}="):
        run(tmp_path, steps=8, val_every=4, **{setting: value})


def test_resume_accepts_a_checkpoint_from_before_an_augmentation_setting_existed(tmp_path):
    # A checkpoint written before local_contrast_* were added to AugmentConfig holds an augment
    # dict without them; it was made with their defaults and must resume.
    run(tmp_path, steps=8, val_every=4, stop_after_steps=4)
    path = tmp_path / "checkpoint.pt"
    state = torch.load(path, weights_only=False)
    for key in [k for k in state["settings"]["augment"] if k.startswith("local_contrast")]:
        del state["settings"]["augment"][key]
    torch.save(state, path)
    assert run(tmp_path, steps=8, val_every=4)["steps"] == 8


def test_resume_refuses_a_checkpoint_of_another_augmentation(tmp_path):
    run(tmp_path, steps=8, val_every=4, stop_after_steps=4)
    with pytest.raises(TrainingError, match="made with augment="):
        run(
            tmp_path,
            steps=8,
            val_every=4,
            augment=AugmentConfig(local_contrast_probability=0.5),
        )


def test_resume_accepts_another_validation_and_log_interval(tmp_path):
    run(tmp_path, steps=8, val_every=4, log_every=2, stop_after_steps=4)
    resumed = run(tmp_path, steps=8, val_every=2, log_every=1)
    assert resumed["finished"] and resumed["steps"] == 8


def test_fine_tuning_starts_from_a_model_folder_and_records_it(tmp_path):
    import hashlib

    base = run(tmp_path / "base", steps=12, val_every=12)
    base_dir = tmp_path / "base" / "model"
    sha256 = hashlib.sha256((base_dir / "model.safetensors").read_bytes()).hexdigest()
    # At a learning rate of zero the fine-tuning run keeps the initial model's parameters.
    frozen = run(tmp_path / "frozen", steps=2, val_every=2, init_from=base_dir, lr=0.0)
    assert frozen["finished"]
    start = torch.load(tmp_path / "frozen" / "checkpoint.pt", weights_only=False)
    assert start["settings"]["init_weights_sha256"] == sha256
    initial = load_segmenter(base_dir, device="cpu").model
    for name, value in initial.named_parameters():
        torch.testing.assert_close(start["model"][name], value.detach())
    tuned = run(tmp_path / "tuned", steps=4, val_every=4, init_from=base_dir)
    assert tuned["finished"] and base["finished"]
    config = json.loads((tmp_path / "tuned" / "model" / "config.json").read_text())
    assert config["training"]["init_from"] == str(base_dir.resolve())
    assert config["training"]["init_weights_sha256"] == sha256
    # A checkpoint of a fine-tuning run is not resumed from other weights, nor from random ones.
    with pytest.raises(TrainingError, match="init_weights_sha256"):
        run(tmp_path / "tuned", steps=4, val_every=4)


def test_fine_tuning_refuses_another_architecture(tmp_path):
    run(tmp_path / "base", steps=4, val_every=4)
    with pytest.raises(TrainingError, match="unet/mobilenet_v2"):
        run(
            tmp_path / "other",
            steps=4,
            init_from=tmp_path / "base" / "model",
            arch="fpn",
            encoder="mobilenet_v2",
        )
    with pytest.raises(TrainingError, match="cannot start from"):
        run(tmp_path / "other", steps=4, init_from=tmp_path / "missing")


def test_a_new_decoder_on_a_trained_encoder_takes_only_the_encoder(tmp_path):
    run(tmp_path / "base", steps=4, val_every=4)  # a U-Net on a MobileNetV2 encoder
    base_dir = tmp_path / "base" / "model"
    # An FPN on the same encoder, at a learning rate of zero: the encoder's weights are the base
    # model's, the decoder's its own.
    run(tmp_path / "fpn", steps=2, val_every=2, lr=0.0, arch="fpn", init_encoder_from=base_dir)
    state = torch.load(tmp_path / "fpn" / "checkpoint.pt", weights_only=False)
    assert state["settings"]["init_encoder_only"] is True
    assert state["settings"]["init_from"] == str(base_dir.resolve())
    initial = load_segmenter(base_dir, device="cpu").model
    for name, value in initial.encoder.named_parameters():
        torch.testing.assert_close(state["model"][f"encoder.{name}"], value.detach())
    config = json.loads((tmp_path / "fpn" / "model" / "config.json").read_text())
    assert config["architecture"] == "fpn" and config["training"]["init_encoder_only"] is True
    with pytest.raises(TrainingError, match="cannot take the encoder"):
        run(tmp_path / "r18", steps=2, encoder="resnet18", init_encoder_from=base_dir)
    with pytest.raises(TrainingError, match="not both"):
        run(tmp_path / "both", steps=2, init_from=base_dir, init_encoder_from=base_dir)


def test_architecture_options_reach_the_network_and_the_model_folder(tmp_path):
    narrow = {"decoder_channels": [32, 16, 8, 8, 4]}
    assert run(tmp_path, steps=2, val_every=2, arch_options=narrow)["finished"]
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    assert config["architecture_options"] == narrow
    model = load_segmenter(tmp_path / "model", device="cpu").model
    assert model.segmentation_head[0].in_channels == 4
    # a resumed run must build the same network
    with pytest.raises(TrainingError, match="arch_options"):
        run(tmp_path, steps=2, val_every=2)
    with pytest.raises(TrainingError, match="decoder_channels"):
        run(tmp_path / "bad", steps=2, arch_options={"decoder_channels": [8, 4]})


def test_train_cli_passes_the_decoder_and_the_encoder_to_start_from(train_cli, tmp_path):
    main, seen = train_cli
    args = ["train", "--out", str(tmp_path), "--arch", "unet", "-q"]
    assert main(args) == 0
    assert seen["arch_options"] is None and seen["init_encoder_from"] is None
    more = ["--decoder-channels", "128", "64", "32", "16", "8", "--init-encoder", "some-model"]
    assert main([*args, *more]) == 0
    assert seen["arch_options"] == {"decoder_channels": [128, 64, 32, 16, 8]}
    assert seen["init_encoder_from"] == "some-model"


def test_split_is_60_20_20_by_image_seed():
    splits = [split_of_seed(s) for s in range(100)]
    assert splits.count("train") == 60
    assert splits.count("validation") == 20
    assert splits.count("test") == 20


def test_learning_rate_warms_up_then_decays():
    factors = [lr_factor(s, 100, 0.1, 0.01) for s in range(100)]
    assert factors[0] == pytest.approx(0.1)
    assert max(factors) == pytest.approx(1.0)
    assert factors[-1] < 0.02
    assert all(a >= b for a, b in zip(factors[10:], factors[11:], strict=False))


def test_batches_keep_image_and_mask_aligned():
    # With no intensity changes, the dark pixels of each tile must be exactly its mask pixels.
    sample = disks_sample(0, (96, 96))
    image = np.where(sample.mask, 0.2, 0.9).astype(np.float16)
    pool = [PoolImage(0, image, sample.mask, "disks")]
    quiet = AugmentConfig(
        gamma_probability=0,
        gradient_probability=0,
        blur_probability=0,
        noise_probability=0,
        invert_probability=0,
    )
    x, y = make_batch(pool, 4, 64, np.random.default_rng(0), quiet, PreprocessConfig())
    assert x.shape == y.shape == (4, 1, 64, 64)
    low, high = x.amin(dim=(2, 3), keepdim=True), x.amax(dim=(2, 3), keepdim=True)
    dark = x < (low + high) / 2
    agreement = (dark == y.bool()).float().mean()
    assert agreement > 0.97  # only bilinear edge pixels may disagree


def test_flattened_batches_lose_a_ramp_but_keep_the_particles():
    # A ramp twice the particles' contrast: the plain normalisation's midpoint misreads the bright
    # side's disks as background; with the support flattened the disks again match their masks.
    sample = disks_sample(1, (96, 96))
    ramp = np.linspace(0.0, 1.4, 96, dtype=np.float32)[None, :]
    image = (np.where(sample.mask, 0.2, 0.9) + ramp).astype(np.float16)
    pool = [PoolImage(0, image, sample.mask, "disks")]
    quiet = AugmentConfig(
        scale_range=(1.0, 1.0),
        arbitrary_rotation_probability=0,
        gamma_probability=0,
        gradient_probability=0,
        blur_probability=0,
        noise_probability=0,
        invert_probability=0,
    )

    def agreement(preprocess):
        x, y = make_batch(pool, 8, 64, np.random.default_rng(0), quiet, preprocess)
        low, high = x.amin(dim=(2, 3), keepdim=True), x.amax(dim=(2, 3), keepdim=True)
        return float(((x < (low + high) / 2) == y.bool()).float().mean())

    assert agreement(PreprocessConfig(flatten_sigma_px=6)) > agreement(PreprocessConfig()) + 0.05


@pytest.fixture
def train_cli(monkeypatch):
    """`nanomorph train` with train() replaced: returns (main, the keyword arguments it got)."""
    import nanomorph.segment.train as train_module
    from nanomorph.cli import main

    seen = {}

    def fake_train(out_dir, **kwargs):
        seen.update(kwargs)
        return {"finished": False, "best_val_particle_iou": 0.0, "best_step": 0, "model_dir": ""}

    monkeypatch.setattr(train_module, "train", fake_train)
    return main, seen


def test_train_cli_passes_the_flattening_to_train(train_cli, tmp_path):
    main, seen = train_cli
    args = ["train", "--out", str(tmp_path), "--init", "nanomorph-deeplabv3plus-r18", "-q"]
    assert main([*args, "--flatten-support", "24"]) == 0
    assert seen["flatten_support_px"] == 24 and seen["init_from"] == "nanomorph-deeplabv3plus-r18"
    assert main(args) == 0 and seen["flatten_support_px"] is None
    with pytest.raises(SystemExit):
        main([*args, "--flatten-support", "-1"])


def test_outline_weights_peak_at_the_outline_on_both_sides_and_fall_to_one():
    mask = np.zeros((41, 41), bool)
    mask[10:31, 10:31] = True
    weights = outline_weights(mask, 4.0, 1.5)
    row = weights[20]
    # The pixels either side of the outline carry the same, largest weight.
    assert row[9] == row[10] == pytest.approx(1 + 4 * np.exp(-0.25 / 4.5))
    assert row[9] == weights.max()
    assert row[20] == pytest.approx(1.0, abs=1e-6)  # the centre, 10.5 px inside
    assert row[0] == pytest.approx(1.0, abs=1e-3)
    assert np.all(weights >= 1)
    assert np.array_equal(outline_weights(mask, 0.0, 1.5), np.ones(mask.shape, np.float32))
    assert np.array_equal(outline_weights(np.zeros((5, 5), bool), 4.0, 1.5), np.ones((5, 5)))


def test_weighted_cross_entropy_counts_the_outline_more():
    target = torch.zeros(1, 1, 48, 48)
    target[..., 12:36, 12:36] = 1
    wrong_at_edge = torch.where(target > 0, 3.0, -3.0)
    wrong_at_edge[..., 12, 12:36] = -3.0  # one outline row wrong
    plain, _ = bce_dice_loss(wrong_at_edge, target, dice_weight=0.0)
    heavy = torch.from_numpy(outline_weights(target[0, 0].numpy() > 0, 4.0, 1.0))[None, None]
    weighted, _ = bce_dice_loss(wrong_at_edge, target, dice_weight=0.0, pixel_weight=heavy)
    assert float(weighted) > 1.5 * float(plain)
    ones, _ = bce_dice_loss(wrong_at_edge, target, 0.0, pixel_weight=torch.ones_like(target))
    assert float(ones) == pytest.approx(float(plain))


def test_small_particle_weights_favour_small_particles_and_the_band_around_them():
    mask = np.zeros((120, 120), bool)
    mask[disk((20, 20), 3)] = True  # equivalent diameter ~ 6.5 px: full extra weight
    mask[disk((20, 80), 6)] = True  # diameter ~ 11.6: 16 / 11.6 - 1 = 0.38 of it
    mask[disk((80, 60), 25)] = True  # diameter ~ 50: none
    weights = small_particle_weights(mask, 3.0, 16.0)
    assert weights[20, 20] == weights[20, 22] == pytest.approx(4.0)  # centre and rim
    assert weights[20, 25] == pytest.approx(4.0)  # 3 px outside the rim: still the particle's
    assert weights[20, 26] == 1.0  # beyond the band
    middle_diameter = np.sqrt(4 * mask[10:31, 70:91].sum() / np.pi)
    assert weights[20, 80] == pytest.approx(1 + 3.0 * (16.0 / middle_diameter - 1))
    assert weights[80, 60] == weights[80, 86] == weights[0, 119] == 1.0
    assert np.array_equal(small_particle_weights(mask, 0.0, 16.0), np.ones(mask.shape))
    assert np.array_equal(
        small_particle_weights(np.zeros_like(mask), 3.0, 16.0), np.ones(mask.shape)
    )


def test_loss_weights_combine_the_outline_and_small_particle_weightings():
    masks = torch.zeros(2, 1, 64, 64)
    masks[0, 0][disk((30, 30), 3)] = 1
    plain = TrainConfig()
    assert loss_weights(masks, plain) is None
    small = loss_weights(masks, replace(plain, small_particle_weight=3.0))
    edge = loss_weights(masks, replace(plain, edge_weight=2.0))
    both = loss_weights(masks, replace(plain, small_particle_weight=3.0, edge_weight=2.0))
    assert small.shape == masks.shape and float(small[0, 0, 30, 30]) == pytest.approx(4.0)
    assert torch.all(small[1] == 1)  # a tile without particles weights every pixel alike
    assert torch.allclose(both, small * edge)


def test_small_particle_weighted_training_records_its_setting(tmp_path):
    result = run(tmp_path, steps=4, val_every=4, log_every=2, small_particle_weight=3.0)
    assert result["finished"]
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    training = config["training"]
    assert (training["small_particle_weight"], training["small_particle_diameter_px"]) == (3, 16)
    with pytest.raises(TrainingError, match="small_particle_weight"):
        run(tmp_path, steps=4, val_every=4, log_every=2)
    with pytest.raises(TrainingError, match="small_particle_diameter_px"):
        run(tmp_path / "bad", small_particle_diameter_px=0.0)


def test_train_cli_passes_the_small_particle_weighting_to_train(train_cli, tmp_path):
    main, seen = train_cli
    args = ["train", "--out", str(tmp_path), "-q"]
    assert main(args) == 0
    assert (seen["small_particle_weight"], seen["small_particle_diameter_px"]) == (0.0, 16.0)
    assert main([*args, "--small-particle-weight", "3", "--small-particle-diameter", "12"]) == 0
    assert (seen["small_particle_weight"], seen["small_particle_diameter_px"]) == (3.0, 12.0)
    with pytest.raises(SystemExit):
        main([*args, "--small-particle-diameter", "0"])


def test_edge_weighted_training_runs_records_its_setting_and_refuses_other_checkpoints(tmp_path):
    result = run(tmp_path, steps=8, val_every=4, log_every=2, edge_weight=3.0, edge_sigma_px=1.5)
    assert result["finished"]
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    assert config["training"]["edge_weight"] == 3.0 and config["training"]["edge_sigma_px"] == 1.5
    with pytest.raises(TrainingError, match="edge_weight"):
        run(tmp_path, steps=8, val_every=4, log_every=2)
    with pytest.raises(TrainingError, match="edge_weight"):
        run(tmp_path / "bad", edge_weight=-1.0)


def test_train_cli_passes_the_outline_weighting_to_train(train_cli, tmp_path):
    main, seen = train_cli
    args = ["train", "--out", str(tmp_path), "-q"]
    assert main(args) == 0 and (seen["edge_weight"], seen["edge_sigma_px"]) == (0.0, 1.5)
    assert main([*args, "--edge-weight", "3", "--edge-sigma", "2"]) == 0
    assert (seen["edge_weight"], seen["edge_sigma_px"]) == (3.0, 2.0)
    with pytest.raises(SystemExit):
        main([*args, "--edge-sigma", "0"])


def test_flattening_replaces_only_the_sigma_of_the_initial_models_preprocessing():
    shipped = load_segmenter("nanomorph-deeplabv3plus-r18", device="cpu").preprocess
    flattened = with_flattening(shipped, 24)
    assert flattened.flatten_sigma_px == 24
    assert replace(flattened, flatten_sigma_px=shipped.flatten_sigma_px) == shipped
    assert with_flattening(shipped, None) is shipped
    assert with_flattening(shipped, 0).flatten_sigma_px is None
    with pytest.raises(TrainingError, match="flatten_support_px"):
        with_flattening(shipped, -1)


def test_intensity_augmentation_can_invert_polarity():
    tile = np.linspace(0, 1, 64 * 64, dtype=np.float32).reshape(64, 64)
    always = AugmentConfig(
        invert_probability=1.0,
        noise_probability=0,
        blur_probability=0,
        gamma_probability=0,
        gradient_probability=0,
    )
    out = augment_intensity(tile, np.random.default_rng(0), always)
    assert np.corrcoef(out.ravel(), tile.ravel())[0, 1] < -0.99


def test_local_contrast_field_scales_contrast_region_by_region_and_keeps_the_mean():
    # Small bright spots on a flat support: the field changes how far each spot stands out,
    # differently in different regions, but not the support level under it.
    tile = np.full((256, 256), 0.3, dtype=np.float32)
    centres = [(y, x) for y in range(16, 256, 32) for x in range(16, 256, 32)]
    for y, x in centres:
        tile[disk((y, x), 3, shape=tile.shape)] = 0.8
    out = local_contrast_field(tile, 24.0, 0.7, np.random.default_rng(5))
    peaks = np.array([out[y, x] for y, x in centres])
    support = np.array([out[y + 12, x + 12] for y, x in centres])
    contrast = peaks - support
    assert contrast.max() / contrast.min() > 2.0  # some spots stand out far more than others
    assert np.all(contrast > 0)  # none is turned into a dark spot
    # Far from the spots the output is the local mean, which the field leaves as it was.
    assert abs(float(np.median(support)) - float(ndi.gaussian_filter(tile, 24).mean())) < 0.05
    flat = np.full((64, 64), 0.4, dtype=np.float32)
    np.testing.assert_allclose(
        local_contrast_field(flat, 16.0, 0.5, np.random.default_rng(0)), flat, atol=1e-6
    )


def test_local_contrast_augmentation_off_keeps_the_random_stream():
    # Recipes without it must draw exactly the tiles they drew before it existed.
    tile = np.random.default_rng(2).random((64, 64)).astype(np.float32)
    a, b = np.random.default_rng(7), np.random.default_rng(7)
    plain = augment_intensity(tile, a, AugmentConfig())
    assert np.array_equal(plain, augment_intensity(tile, b, AugmentConfig()))
    assert a.random() == b.random()
    # With every other augmentation off, the tile takes seven draws (five yes/no draws, the
    # contrast gain and offset); switched off, local contrast adds none, switched on one more.
    others_off = dict(
        noise_probability=0,
        blur_probability=0,
        gamma_probability=0,
        gradient_probability=0,
        invert_probability=0,
    )
    for probability, draws in [(0.0, 7), (1e-300, 8)]:
        rng, reference = np.random.default_rng(7), np.random.default_rng(7)
        config = AugmentConfig(local_contrast_probability=probability, **others_off)
        augment_intensity(tile, rng, config)
        reference.random(draws)
        assert rng.random() == reference.random()
    on = AugmentConfig(local_contrast_probability=1.0, **others_off)
    assert not np.allclose(augment_intensity(tile, np.random.default_rng(7), on), plain)


def test_choose_threshold_prefers_unbiased_area_among_equally_good_ious():
    ious = {0.3: 0.730, 0.35: 0.735, 0.5: 0.732, 0.6: 0.720}
    ratios = {0.3: 1.12, 0.35: 1.08, 0.5: 1.01, 0.6: 0.93}
    # 0.5 is within the IoU tolerance of the best and its area is nearly unbiased
    assert choose_threshold(ious, ratios) == 0.5
    # 0.6 has the least biased area after 0.5 but is too far below the best IoU
    assert choose_threshold(ious, {**ratios, 0.5: 1.2}) == 0.35
    # with no tolerance, the best IoU wins whatever its area
    assert choose_threshold(ious, ratios, iou_tolerance=0.0) == 0.35


def test_min_peak_probability_is_the_lowest_level_that_drops_the_lukewarm_false_regions():
    pairs = []
    for seed in range(3):
        sample = disks_sample(seed)
        prob = np.where(sample.mask, 0.97, 0.05).astype(np.float32)
        false_region = np.zeros_like(sample.mask)
        false_region[2:6, 2:6] = True
        false_region &= ~ndi.binary_dilation(sample.mask, iterations=2)  # clear of the disks
        assert false_region.sum() >= 4
        prob[false_region] = 0.75
        pairs.append((sample.mask, prob))
    level, scores = min_peak_probability_scores(pairs, threshold=0.6)
    assert level == 0.8  # the first level above the false regions' 0.75
    assert scores[0.6]["precision"] < 1.0 and scores[0.8]["precision"] == 1.0
    assert scores[0.8]["recall"] == scores[0.6]["recall"] == 1.0
    # With no false regions nothing needs dropping: the threshold itself (None) wins.
    clean = [(mask, np.where(mask, 0.97, 0.05)) for mask, _ in pairs]
    assert min_peak_probability_scores(clean, threshold=0.6)[0] is None


def test_negative_seeds_are_particle_free_and_leave_the_other_seeds_unchanged():
    from nanomorph.segment.train import is_negative_seed, simulated_sample

    seeds = range(400)
    negatives = [s for s in seeds if is_negative_seed(s, 0.15)]
    assert 0.10 < len(negatives) / len(seeds) < 0.20
    assert not any(is_negative_seed(s, 0.0) for s in seeds)
    # A larger fraction keeps the smaller one's negatives: pools grow, they are not reshuffled.
    assert set(negatives) <= {s for s in seeds if is_negative_seed(s, 0.3)}
    negative = simulated_sample(negatives[0], (64, 64), negative_fraction=0.15)
    assert negative.scenario == "negative" and not negative.mask.any()
    assert negative.image.std() > 0
    positive = next(s for s in seeds if not is_negative_seed(s, 0.15))
    with_negatives = simulated_sample(positive, (64, 64), negative_fraction=0.15)
    plain = simulated_sample(positive, (64, 64))
    np.testing.assert_array_equal(with_negatives.image, plain.image)
    np.testing.assert_array_equal(with_negatives.mask, plain.mask)


def test_defocused_support_seeds_are_drawn_apart_from_the_image():
    from nanomorph.segment.train import (
        SUPPORT_DEFOCUS_RANGE,
        simulated_sample,
        support_defocus_of_seed,
    )

    seeds = range(400)
    blurs = [support_defocus_of_seed(s, 0.4) for s in seeds]
    assert 0.33 < np.mean([b > 0 for b in blurs]) < 0.47
    assert all(SUPPORT_DEFOCUS_RANGE[0] <= b <= SUPPORT_DEFOCUS_RANGE[1] for b in blurs if b)
    assert blurs == [support_defocus_of_seed(s, 0.4) for s in seeds]
    assert not any(support_defocus_of_seed(s, 0.0) for s in seeds)
    # The blur's own stream leaves the image's other draws alone (the same pixel size), and a
    # seed that draws no blur gives the very image of a pool without the option.
    seed = next(s for s, b in zip(seeds, blurs, strict=True) if b)
    defocused = simulated_sample(seed, (64, 64), support_defocus_fraction=0.4)
    assert defocused.pixel_size_nm == simulated_sample(seed, (64, 64)).pixel_size_nm
    unchanged = next(s for s, b in zip(seeds, blurs, strict=True) if not b)
    np.testing.assert_array_equal(
        simulated_sample(unchanged, (64, 64), support_defocus_fraction=0.4).image,
        simulated_sample(unchanged, (64, 64)).image,
    )


def test_platelet_support_seeds_are_drawn_apart_from_the_image():
    from nanomorph.segment.train import platelets_of_seed, simulated_sample

    seeds = range(400)
    chosen = [platelets_of_seed(s, 0.4) for s in seeds]
    assert 0.33 < np.mean(chosen) < 0.47
    assert chosen == [platelets_of_seed(s, 0.4) for s in seeds]
    assert not any(platelets_of_seed(s, 0.0) for s in seeds)
    assert all(platelets_of_seed(s, 1.0) for s in seeds)
    # A seed that is not chosen gives the very image of a pool without the option.
    unchanged = chosen.index(False)
    np.testing.assert_array_equal(
        simulated_sample(unchanged, (64, 64), platelet_support_fraction=0.4).image,
        simulated_sample(unchanged, (64, 64)).image,
    )


def test_training_with_negatives_records_the_share_and_refuses_other_checkpoints(tmp_path):
    # Six images: the validation split holds one particle-free scene (seed 23) and one not.
    settings = dict(
        steps=2, val_every=2, log_every=1, sample_source=None, image_shape=(96, 96), n_images=6
    )
    result = run(tmp_path, negative_fraction=0.5, **settings)
    assert result["finished"]
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    assert config["training"]["negative_fraction"] == 0.5
    # Particle-free scenes have no particle IoU; the log says how much of them was called particle.
    validation = [r for r in read_log(tmp_path / "log.jsonl") if r["kind"] == "validation"]
    assert validation and all(0 <= r["negative_false_particle_fraction"] <= 1 for r in validation)
    # The pool has its own cache folder: a pool without negatives is never mixed into it.
    assert (tmp_path / "cache" / "96x96_negatives0.5").is_dir()
    with pytest.raises(TrainingError, match="negative_fraction"):
        run(tmp_path, negative_fraction=0.25, **settings)
    with pytest.raises(TrainingError, match="negative_fraction"):
        run(tmp_path / "bad", negative_fraction=1.0)
    with pytest.raises(TrainingError, match="sample_source"):
        run(tmp_path / "bad", negative_fraction=0.2)


@pytest.mark.parametrize(
    ("setting", "cache_suffix"),
    [("support_defocus_fraction", "defocus"), ("platelet_support_fraction", "platelets")],
)
def test_training_with_a_support_variant_records_the_share_and_its_own_pool(
    tmp_path, setting, cache_suffix
):
    settings = dict(
        steps=2, val_every=2, log_every=1, sample_source=None, image_shape=(96, 96), n_images=6
    )
    assert run(tmp_path, **{setting: 0.5}, **settings)["finished"]
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    assert config["training"][setting] == 0.5
    assert (tmp_path / "cache" / f"96x96_{cache_suffix}0.5").is_dir()
    with pytest.raises(TrainingError, match=setting):
        run(tmp_path, **{setting: 0.25}, **settings)
    with pytest.raises(TrainingError, match=f"{setting} must be in"):
        run(tmp_path / "other", **{setting: 1.5}, **settings)
    with pytest.raises(TrainingError, match="sample_source"):
        run(tmp_path / "bad", **{setting: 0.2})


def test_train_cli_passes_the_negative_share_to_train(train_cli, tmp_path):
    main, seen = train_cli
    args = ["train", "--out", str(tmp_path), "-q"]
    assert main(args) == 0 and seen["negative_fraction"] == 0.0
    assert main([*args, "--negative-fraction", "0.15"]) == 0 and seen["negative_fraction"] == 0.15
    for bad in ("1", "-0.1"):
        with pytest.raises(SystemExit):
            main([*args, "--negative-fraction", bad])


@pytest.mark.parametrize(
    ("option", "setting"),
    [
        ("--support-defocus-fraction", "support_defocus_fraction"),
        ("--platelet-support-fraction", "platelet_support_fraction"),
    ],
)
def test_train_cli_passes_a_support_variant_share_to_train(train_cli, tmp_path, option, setting):
    main, seen = train_cli
    args = ["train", "--out", str(tmp_path), "-q"]
    assert main(args) == 0 and seen[setting] == 0.0
    assert main([*args, option, "1"]) == 0
    assert seen[setting] == 1.0
    for bad in ("1.5", "-0.1"):
        with pytest.raises(SystemExit):
            main([*args, option, bad])


def test_train_cli_passes_the_local_contrast_share_as_augmentation(train_cli, tmp_path):
    main, seen = train_cli
    args = ["train", "--out", str(tmp_path), "-q"]
    # Off: train() gets no augmentation of its own, so its defaults (and the shipped recipe) hold.
    assert main(args) == 0 and seen["augment"] is None
    assert main([*args, "--local-contrast-probability", "0.5"]) == 0
    assert seen["augment"] == AugmentConfig(local_contrast_probability=0.5)
    for bad in ("1.5", "-0.1"):
        with pytest.raises(SystemExit):
            main([*args, "--local-contrast-probability", bad])
