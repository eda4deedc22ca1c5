"""The single-image CLI end to end, on images with known particles."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile
from scipy import ndimage as ndi
from skimage.draw import disk

from nanomorph.cli import main

PIXEL_SIZE_NM = 0.25


def _draw_known_disks(shape=(400, 400)):
    """Dark disks on a bright background: 6 isolated and 2 overlapping pairs (centres in px)."""
    isolated = [
        ((60, 60), 16),
        ((60, 200), 12),
        ((60, 330), 20),
        ((330, 60), 14),
        ((200, 330), 18),
        ((330, 330), 15),
    ]
    # Overlap of 20 % and 30 % of the summed radii.
    pairs = [
        [((200, 90), 18), ((200, 90 + 0.8 * 36), 18)],
        [((330, 190), 16), ((330, 190 + 0.7 * 30), 14)],
    ]
    mask = np.zeros(shape, bool)
    for c, r in isolated + [d for p in pairs for d in p]:
        mask[disk(c, r, shape=shape)] = True
    rng = np.random.default_rng(0)
    image = np.where(mask, 0.3, 1.0)
    image = ndi.gaussian_filter(image, 1.0) + rng.normal(0, 0.02, shape)
    return image.astype(np.float32), isolated, pairs


def _write_tiff(path: Path, image: np.ndarray, px: float) -> None:
    tifffile.imwrite(path, image, imagej=True, resolution=(1 / px, 1 / px), metadata={"unit": "nm"})


def test_analyze_reproduces_known_disks_and_splits_pairs(tmp_path, capsys):
    image, isolated, pairs = _draw_known_disks()
    src = tmp_path / "disks.tif"
    _write_tiff(src, image, PIXEL_SIZE_NM)
    out = tmp_path / "out"

    assert main(["analyze", str(src), "--out", str(out), "--segmenter", "threshold", "-q"]) == 0

    folder = out / "disks"
    for name in (
        "segmentation.png",
        "labels.tif",
        "particles.parquet",
        "particles.csv",
        "overlay.png",
        "metadata.json",
    ):
        assert (folder / name).is_file(), name
    table = pd.read_parquet(folder / "particles.parquet")
    assert len(table) == len(isolated) + 2 * len(pairs)
    assert int(table["separated"].sum()) == 2 * len(pairs)
    expected = sorted(2 * r * PIXEL_SIZE_NM for _, r in isolated + [d for p in pairs for d in p])
    found = sorted(table["equivalent_diameter_nm"])
    np.testing.assert_allclose(found, expected, rtol=0.05)

    labels = tifffile.imread(folder / "labels.tif")
    assert labels.shape == image.shape and labels.dtype == np.uint32
    assert set(np.unique(labels)) - {0} == set(table["particle_id"])
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["pixel_size_nm"] == pytest.approx(PIXEL_SIZE_NM)
    assert meta["n_particles"] == len(table)
    summary = capsys.readouterr().out
    assert "disks: 10 particles" in summary


def test_analyze_again_takes_the_masks_from_the_cache(tmp_path, monkeypatch):
    from nanomorph.pipeline import ThresholdSegmenter

    image, _, _ = _draw_known_disks()
    src = tmp_path / "disks.tif"
    _write_tiff(src, image, PIXEL_SIZE_NM)
    out = tmp_path / "out"
    args = ["analyze", str(src), "--out", str(out), "--segmenter", "threshold", "-q"]
    assert main(args) == 0
    assert (out / ".nanomorph" / "masks" / "disks" / "mask.png").is_file()
    first = pd.read_parquet(out / "disks" / "particles.parquet")

    def segment_again(self, image, pixel_size_nm):
        raise AssertionError("segmented again")

    monkeypatch.setattr(ThresholdSegmenter, "__call__", segment_again)
    # Other analysis parameters on the same image: the mask is the cached one.
    assert main([*args, "--separation", "none"]) == 0
    again = pd.read_parquet(out / "disks" / "particles.parquet")
    assert len(again) == len(first) - 2  # the two overlapping pairs left whole
    assert main(args) == 0
    pd.testing.assert_frame_equal(pd.read_parquet(out / "disks" / "particles.parquet"), first)
    # Another pixel size, another segmenter setting, or no cache: segmented again.
    for extra in (["--pixel-size", "0.5"], ["--polarity", "dark"], ["--no-mask-cache"]):
        with pytest.raises(AssertionError, match="segmented again"):
            main([*args, *extra])


def test_pixel_size_option_overrides_file(tmp_path):
    image, _, _ = _draw_known_disks()
    src = tmp_path / "disks.tif"
    _write_tiff(src, image, PIXEL_SIZE_NM)
    out = tmp_path / "out"
    assert (
        main(
            [
                "analyze",
                str(src),
                "--out",
                str(out),
                "--pixel-size",
                "0.5",
                "--segmenter",
                "threshold",
                "-q",
            ]
        )
        == 0
    )
    meta = json.loads((out / "disks" / "metadata.json").read_text())
    assert meta["pixel_size_nm"] == pytest.approx(0.5)
    assert meta["calibration_source"] == "user"


def test_uncalibrated_png_needs_pixel_size(tmp_path, capsys):
    from PIL import Image

    image, _, _ = _draw_known_disks()
    src = tmp_path / "plain.png"
    Image.fromarray((np.clip(image, 0, 1) * 255).astype(np.uint8)).save(src)
    out = tmp_path / "out"
    assert main(["analyze", str(src), "--out", str(out), "--segmenter", "threshold", "-q"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert any("plain.png" in line and "pixel" in line for line in err)
    assert not (out / "plain" / "particles.parquet").exists()
    args = ["analyze", str(src), "--out", str(out), "--pixel-size", "0.25"]
    assert main([*args, "--segmenter", "threshold", "-q"]) == 0
    assert (out / "plain" / "particles.parquet").exists()


def _run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "nanomorph.cli", *args], capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    "relpath",
    [
        "dm/rosettasciio/2D/test_diffraction_pattern.dm3",
        "dm/rosettasciio/1D/test-EELS_spectrum.dm3",
    ],
)
def test_not_a_micrograph_is_refused_in_one_line(shared_data, tmp_path, relpath):
    src = shared_data / relpath
    out = tmp_path / "out"
    proc = _run_cli("analyze", str(src), "--out", str(out), "--segmenter", "threshold", "-q")
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert "Traceback" not in proc.stderr
    assert len(lines) == 1 and src.name in lines[0]
    assert not list(out.rglob("particles.*")) if out.exists() else True


def test_garbage_file_is_refused_in_one_line(tmp_path):
    src = tmp_path / "broken.dm3"
    src.write_bytes(np.random.default_rng(1).bytes(4096))
    out = tmp_path / "out"
    proc = _run_cli("analyze", str(src), "--out", str(out), "--segmenter", "threshold", "-q")
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "broken.dm3" in lines[0]
    assert not (out / "broken" / "particles.parquet").exists()


def test_analyze_in_several_jobs_writes_what_one_job_writes(tmp_path):
    # --jobs 2 analyses the segmented images in spawned worker processes; the folders must be
    # those of one job, the summaries in input order, and a bad file still one line.
    image, _, _ = _draw_known_disks()
    sources = []
    for index in range(3):
        noisy = image + np.random.default_rng(index).normal(0, 0.01, image.shape)
        sources.append(tmp_path / f"disks_{index}.tif")
        _write_tiff(sources[-1], np.roll(noisy, 7 * index, axis=1).astype(np.float32), 0.25)
    broken = tmp_path / "broken.dm3"
    broken.write_bytes(np.random.default_rng(1).bytes(4096))
    inputs = [str(sources[0]), str(broken), *map(str, sources[1:])]
    common = ["--segmenter", "threshold", "-q", "--no-mask-cache"]

    assert main(["analyze", *inputs, "--out", str(tmp_path / "one"), *common]) == 1
    proc = _run_cli("analyze", *inputs, "--out", str(tmp_path / "two"), *common, "--jobs", "2")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(errors) == 2 and "broken.dm3" in errors[0] and "1 of 4 file(s)" in errors[1]
    summaries = proc.stdout.splitlines()
    assert [line.split(":")[0] for line in summaries] == ["disks_0", "disks_1", "disks_2"]

    for source in sources:
        one, two = tmp_path / "one" / source.stem, tmp_path / "two" / source.stem
        for name in ("particles.csv", "segmentation.png", "overlay.png"):
            assert (one / name).read_bytes() == (two / name).read_bytes(), (source, name)
        np.testing.assert_array_equal(
            tifffile.imread(one / "labels.tif"), tifffile.imread(two / "labels.tif")
        )
        meta_one, meta_two = (json.loads((d / "metadata.json").read_text()) for d in (one, two))
        meta_one.pop("created"), meta_two.pop("created")
        assert meta_one == meta_two
    assert not (tmp_path / "two" / "broken").exists()
    # All images together: the same in both, every image's rows in input order, and a summary.
    for name in ("particles.csv", "summary.csv"):
        one, two = tmp_path / "one" / name, tmp_path / "two" / name
        assert one.read_bytes() == two.read_bytes(), name
    combined = pd.read_csv(tmp_path / "two" / "particles.csv")
    per_image = [pd.read_csv(tmp_path / "two" / s.stem / "particles.csv") for s in sources]
    assert list(combined["image"]) == [row for t in per_image for row in t["image"]]
    summary = pd.read_csv(tmp_path / "two" / "summary.csv").set_index("property")
    assert summary.loc["equivalent_diameter_nm", "count"] == len(combined)
    assert summary.loc["equivalent_diameter_nm", "n_images"] == 3


def test_a_worker_that_dies_is_one_line_naming_the_image(tmp_path, capsys, monkeypatch):
    # A worker killed (out of memory, say) breaks the pool; the user gets one line, not the
    # executor's traceback.
    from concurrent.futures import Future
    from concurrent.futures.process import BrokenProcessPool

    import nanomorph.cli as cli

    class DeadPool:
        def submit(self, fn, *args):
            future = Future()
            future.set_exception(BrokenProcessPool("A child process terminated abruptly"))
            return future

        def shutdown(self, cancel_futures=False):
            pass

    monkeypatch.setattr(cli, "_image_workers", lambda jobs: DeadPool())
    image, _, _ = _draw_known_disks()
    _write_tiff(tmp_path / "disks.tif", image, PIXEL_SIZE_NM)
    args = ["analyze", str(tmp_path / "disks.tif"), "--out", str(tmp_path / "o"), "-q"]
    assert main([*args, "--segmenter", "threshold", "--jobs", "2"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("nanomorph: error: disks:") and "\n" not in error
    assert "--jobs" in error


@pytest.mark.parametrize("jobs", ["0", "-1", "two"])
def test_analyze_refuses_a_bad_number_of_jobs(tmp_path, capsys, jobs):
    with pytest.raises(SystemExit) as exit_info:
        main(["analyze", str(tmp_path / "x.tif"), "--out", str(tmp_path / "o"), "--jobs", jobs])
    assert exit_info.value.code == 2
    assert "--jobs" in capsys.readouterr().err


def test_missing_input_is_a_clear_error(tmp_path, capsys):
    assert main(["analyze", str(tmp_path / "nope.dm3"), "--out", str(tmp_path / "o")]) == 2
    assert "nope.dm3" in capsys.readouterr().err


def test_simulate_writes_calibrated_micrographs_the_readers_accept(tmp_path):
    from nanomorph.io import read_micrographs

    out = tmp_path / "sim"
    assert main(["simulate", str(out), "--n", "2", "--seed", "5", "--shape", "96", "96"]) == 0
    manifest = pd.read_csv(out / "manifest.csv")
    assert len(manifest) == 2
    for image in sorted((out / "images").iterdir()):
        (micrograph,) = read_micrographs(image)
        row = manifest[manifest["image"].str.contains(image.stem)].iloc[0]
        assert micrograph.pixel_size_nm == pytest.approx(row["pixel_size_nm"], rel=1e-5)
        assert micrograph.shape == (96, 96)


def test_simulate_fixes_settings_and_pixel_size_for_every_image(tmp_path):
    out = tmp_path / "sim"
    argv = ["simulate", str(out), "--n", "3", "--shape", "64", "64", "--pixel-size", "0.2"]
    settings = ["--setting", "modality=haadf", "--setting", "support_platelets=true"]
    assert main([*argv, *settings]) == 0
    manifest = pd.read_csv(out / "manifest.csv")
    assert list(manifest["modality"]) == ["haadf"] * 3
    assert manifest["pixel_size_nm"].tolist() == pytest.approx([0.2] * 3)
    params = [json.loads(line) for line in (out / "params.jsonl").read_text().splitlines()]
    assert all(p["support_platelets"] is True for p in params)


@pytest.mark.parametrize(
    ("bad", "named"),
    [
        (["--setting", "no_such_setting=1"], "no_such_setting"),
        (["--setting", "modality=tem"], "modality"),
        (["--scenario", "nope"], "nope"),
        (["--shape", "4", "4"], "shape"),
    ],
)
def test_simulate_refuses_bad_settings_in_one_line_before_writing(tmp_path, capsys, bad, named):
    out = tmp_path / "sim"
    assert main(["simulate", str(out), "--n", "2", "--shape", "64", "64", *bad]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("nanomorph: error:") and named in error and "\n" not in error
    assert not out.exists()


def test_export_model_folder_replaces_the_model_keeps_the_card_and_adds_the_log(tmp_path):
    import stat

    from nanomorph.cli import _export_model_folder

    run = tmp_path / "run"
    (run / "model").mkdir(parents=True)
    (run / "model" / "model.safetensors").write_bytes(b"new weights")
    (run / "model" / "config.json").write_text("{}")
    (run / "log.jsonl").write_text('{"kind": "train"}\n')
    target = tmp_path / "models" / "m"
    target.mkdir(parents=True)
    (target / "model.safetensors").write_bytes(b"old weights")
    (target / "MODEL_CARD.md").write_text("card")
    _export_model_folder(run / "model", target, run / "log.jsonl")
    assert (target / "model.safetensors").read_bytes() == b"new weights"
    assert (target / "MODEL_CARD.md").read_text() == "card"
    assert (target / "training_log.jsonl").read_text().startswith('{"kind"')
    assert stat.S_IMODE(target.stat().st_mode) == 0o755
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o644 for f in target.iterdir())
    assert sorted(p.name for p in target.parent.iterdir()) == ["m"]  # no staging left behind


def test_analyze_with_a_declared_polarity_checks_contrast(tmp_path):
    """--polarity dark: the threshold looks for dark particles and the contrast check keeps them."""
    image, isolated, pairs = _draw_known_disks()
    src = tmp_path / "disks.tif"
    _write_tiff(src, image, PIXEL_SIZE_NM)
    out = tmp_path / "out"
    args = ["analyze", str(src), "--out", str(out), "--segmenter", "threshold", "-q"]
    assert main([*args, "--polarity", "dark"]) == 0
    meta = json.loads((out / "disks" / "metadata.json").read_text())
    assert meta["parameters"]["polarity"] == "dark"
    assert meta["segmentation"]["polarity"] == "dark"
    assert meta["n_particles"] == len(isolated) + 2 * len(pairs)
    assert meta["excluded_reasons"]["wrong_contrast"] == 0


def test_evaluate_with_the_exact_mask_scores_the_analysis_alone(tmp_path, capsys):
    out = tmp_path / "eval"
    argv = ["evaluate", "--segmenter", "truth", "--scenarios", "isolated", "--n", "2"]
    assert main([*argv, "--shape", "96", "96", "--out", str(out), "-q"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["segmenter"] == "truth"
    assert metrics["overall"]["pixel"]["particle_iou"] == 1.0
    assert metrics["scenarios"]["isolated"]["n_images"] == 2
    assert "isolated" in capsys.readouterr().out


def test_evaluate_fixes_simulation_settings_and_refuses_unknown_ones(tmp_path, capsys):
    out = tmp_path / "eval"
    argv = ["evaluate", "--segmenter", "truth", "--scenarios", "isolated", "--n", "1"]
    argv += ["--shape", "64", "64", "-q", "--out", str(out)]
    settings = ["--simulation-setting", "dose=1e7", "--simulation-setting", "jpeg_quality=null"]
    assert main([*argv, *settings]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["simulation_overrides"] == {"dose": 1e7, "jpeg_quality": None}
    capsys.readouterr()
    for bad in ("dosee=3", "dose=abc"):
        assert main([*argv, "--simulation-setting", bad]) == 2
        error = capsys.readouterr().err.strip()
        assert error.startswith("nanomorph: error: --simulation-setting")
        assert len(error.splitlines()) == 1
    with pytest.raises(SystemExit):
        main([*argv, "--simulation-setting", "dose"])
    assert main([*argv[:4], "isolatd", *argv[5:]]) == 2
    assert "unknown scenario 'isolatd'" in capsys.readouterr().err
    assert main([*argv[:6], "0", *argv[7:]]) == 2
    assert "the evaluation data set is empty" in capsys.readouterr().err


def test_evaluate_with_declared_polarity_keeps_the_true_particles(tmp_path):
    """On the exact mask every particle has its modality's contrast, in both modalities."""
    recalls = {}
    for declare in (False, True):
        out = tmp_path / f"eval_{declare}"
        argv = ["evaluate", "--segmenter", "truth", "--scenarios", "isolated", "haadf"]
        argv += ["--n", "2", "--shape", "128", "128", "--out", str(out), "-q"]
        assert main([*argv, "--declare-polarity"] if declare else argv) == 0
        metrics = json.loads((out / "metrics.json").read_text())
        recalls[declare] = {
            name: scenario["instance"]["recall"] for name, scenario in metrics["scenarios"].items()
        }
    assert recalls[True] == recalls[False]
    assert min(recalls[True].values()) > 0.5
    argv = ["evaluate", "--instances", "truth", "--declare-polarity", "--out", str(tmp_path / "x")]
    assert main([*argv, "--n", "1", "-q"]) == 2


def test_evaluate_separates_with_the_chosen_method_and_records_it(tmp_path):
    """On the exact mask of overlapping scenes, watershed splits what "none" keeps whole."""
    from nanomorph.cli import SEPARATION_CHOICES
    from nanomorph.pipeline import SEPARATION_METHODS

    assert SEPARATION_CHOICES == SEPARATION_METHODS
    predicted = {}
    for method in ("none", "watershed"):
        out = tmp_path / method
        argv = ["evaluate", "--segmenter", "truth", "--scenarios", "overlapping", "--n", "2"]
        argv += ["--shape", "128", "128", "--separation", method, "--out", str(out), "-q"]
        assert main(argv) == 0
        metrics = json.loads((out / "metrics.json").read_text())
        assert metrics["analysis"] == {
            "instances": "pipeline",
            "separation": method,
            "declared_polarity": False,
            "declared_particle_diameter": None,
        }
        predicted[method] = pd.read_csv(out / "per_image.csv")["n_predicted"].sum()
    assert predicted["watershed"] > predicted["none"]
    argv = ["evaluate", "--instances", "truth", "--separation", "watershed"]
    assert main([*argv, "--n", "1", "-q", "--out", str(tmp_path / "x")]) == 2


def test_analyze_with_test_time_flips_records_them(tmp_path):
    """The shipped network, read four ways: the option reaches the model and the metadata."""
    # The full field: on a 160² crop the one disk's averaged peak (0.94) stays under the
    # model's min_peak_probability (0.95, chosen without flips) and nothing would be found.
    image, isolated, _ = _draw_known_disks()
    src = tmp_path / "small.tif"
    _write_tiff(src, image, PIXEL_SIZE_NM)
    out = tmp_path / "out"
    args = ["analyze", str(src), "--out", str(out), "--precision", "fp32", "-q"]
    assert main([*args, "--test-time-flips"]) == 0
    meta = json.loads((out / "small" / "metadata.json").read_text())
    assert meta["segmentation"]["test_time_flips"] is True
    assert meta["n_particles"] >= 1


def test_analyze_with_a_declared_particle_diameter_downsamples_and_records_it(tmp_path):
    """Disks 24-40 px across, declared as 16 nm (64 px): the network sees them at half size."""
    image, isolated, pairs = _draw_known_disks()
    src = tmp_path / "disks.tif"
    _write_tiff(src, image, PIXEL_SIZE_NM)
    out = tmp_path / "out"
    args = ["analyze", str(src), "--out", str(out), "--precision", "fp32", "-q"]
    assert main([*args, "--particle-diameter", "16"]) == 0
    meta = json.loads((out / "disks" / "metadata.json").read_text())
    assert meta["segmentation"]["particle_diameter_nm"] == 16
    assert meta["segmentation"]["target_particle_px"] == 24
    assert meta["n_particles"] >= len(isolated) + len(pairs)
    # Seen at 12-20 px, every isolated disk is still outlined within two working-grid pixels
    # (4 px) of its diameter; not declared, the shipped network makes the 40 px disk 9 px small.
    table = pd.read_csv(out / "disks" / "particles.csv")
    centroids = table[["centroid_y_nm", "centroid_x_nm"]].to_numpy() / PIXEL_SIZE_NM
    for centre, radius in isolated:
        nearest = np.argmin(np.hypot(*(centroids - centre).T))
        measured = table["equivalent_diameter_nm"].iloc[nearest] / PIXEL_SIZE_NM
        assert measured == pytest.approx(2 * radius, abs=4.0)
    with pytest.raises(SystemExit):
        main([*args, "--particle-diameter", "0"])


def test_min_peak_probability_defaults_to_the_models_and_can_be_switched_off(tmp_path):
    image, isolated, _ = _draw_known_disks(shape=(160, 160))
    src = tmp_path / "small.tif"
    _write_tiff(src, image, PIXEL_SIZE_NM)
    levels = {}
    for option in ([], ["--min-peak-probability", "0"]):
        out = tmp_path / f"out{len(option)}"
        args = ["analyze", str(src), "--out", str(out), "--precision", "fp32", "-q", *option]
        assert main(args) == 0
        meta = json.loads((out / "small" / "metadata.json").read_text())
        levels[bool(option)] = meta["segmentation"]["min_peak_probability"]
    from nanomorph.segment.model import find_model_folder

    shipped = json.loads((find_model_folder(None) / "config.json").read_text())
    assert levels == {False: shipped["min_peak_probability"], True: None}
    with pytest.raises(SystemExit):
        main(["analyze", str(src), "--out", str(tmp_path / "bad"), "--min-peak-probability", "2"])


def test_tile_size_reaches_the_network_and_a_bad_one_is_one_line(tmp_path, capsys):
    image, _, _ = _draw_known_disks(shape=(160, 160))
    src = tmp_path / "small.tif"
    _write_tiff(src, image, PIXEL_SIZE_NM)
    args = ["analyze", str(src), "--precision", "fp32", "-q"]
    assert main([*args, "--out", str(tmp_path / "out"), "--tile-size", "256"]) == 0
    meta = json.loads((tmp_path / "out" / "small" / "metadata.json").read_text())
    assert meta["segmentation"]["tile_size"] == 256
    capsys.readouterr()
    assert main([*args, "--out", str(tmp_path / "bad"), "--tile-size", "100"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "tile_size must be a positive multiple of 32" in error
    assert not (tmp_path / "bad" / "small").exists()
    argv = ["evaluate", "--scenarios", "isolated", "--n", "1", "--shape", "128", "128", "-q"]
    out = tmp_path / "eval"
    assert main([*argv, "--precision", "fp32", "--tile-size", "96", "--out", str(out)]) == 0
    assert json.loads((out / "metrics.json").read_text())["segmentation"]["tile_size"] == 96
    assert main([*argv, "--tile-size", "64", "--out", str(tmp_path / "e2")]) == 2
    assert "overlap (64 px)" in capsys.readouterr().err


def test_evaluate_can_declare_each_images_particle_diameter(tmp_path, capsys):
    out = tmp_path / "eval"
    argv = ["evaluate", "--scenarios", "faceted", "--n", "1", "--shape", "128", "128", "-q"]
    assert (
        main([*argv, "--precision", "fp32", "--declare-particle-diameter", "--out", str(out)]) == 0
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["analysis"]["declared_particle_diameter"].startswith("each image's true median")
    assert metrics["scenarios"]["faceted"]["n_images"] == 1
    argv += ["--segmenter", "threshold", "--declare-particle-diameter", "--out", str(out / "t")]
    assert main(argv) == 2
    assert "--declare-particle-diameter needs --segmenter model" in capsys.readouterr().err


def test_evaluate_records_how_the_network_segmented(tmp_path):
    out = tmp_path / "eval"
    argv = ["evaluate", "--scenarios", "isolated", "--n", "1", "--shape", "96", "96"]
    assert (
        main(
            [
                *argv,
                *("--precision", "fp32", "--min-peak-probability", "0.8"),
                *("--flatten-support", "16", "--out", str(out), "-q"),
            ]
        )
        == 0
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["segmentation"]["min_peak_probability"] == 0.8
    assert metrics["segmentation"]["flatten_support_px"] == 16
    assert metrics["segmentation"]["precision"] == "fp32"
