"""The shipped segmentation model: self-describing, small, and it finds particles.

CI never retrains it; these tests check the committed folder and that it segments a few images
with known answers (simulated, never seen in training; and a real HAADF micrograph).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from nanomorph.segment.model import DEFAULT_MODEL_NAME, find_model_folder

try:
    MODEL_DIR = find_model_folder(None)
except ValueError:  # the shipped folder is missing: the checks below cannot run
    MODEL_DIR = None

pytestmark = pytest.mark.skipif(MODEL_DIR is None, reason="no shipped model folder")


@pytest.fixture(scope="module")
def segmenter():
    from nanomorph.segment.model import load_segmenter

    return load_segmenter(None, device="cpu")


def test_model_folder_is_complete_and_small():
    assert MODEL_DIR.name == DEFAULT_MODEL_NAME
    for name in ("model.safetensors", "config.json", "metrics.json", "MODEL_CARD.md"):
        assert (MODEL_DIR / name).is_file(), name
    assert (MODEL_DIR / "model.safetensors").stat().st_size <= 30e6
    config = json.loads((MODEL_DIR / "config.json").read_text())
    assert config["architecture"] == "deeplabv3plus"
    assert config["encoder"] == "resnet18"
    metrics = json.loads((MODEL_DIR / "metrics.json").read_text())
    assert 0 <= metrics["test"]["particle_iou"] <= 1
    # Both probability levels were chosen on the validation split, and say how.
    assert config["threshold_tuning"]["split"] == "validation"
    peak = config["min_peak_probability_tuning"]
    assert peak["split"] == "validation"
    assert peak["chosen"] == config["min_peak_probability"]
    assert config["min_peak_probability"] is None or (
        config["threshold"] < config["min_peak_probability"] <= 1
    )


@pytest.mark.parametrize(("scenario", "min_iou"), [("isolated", 0.7), ("haadf", 0.5)])
def test_segments_unseen_simulated_micrographs(segmenter, scenario, min_iou):
    """Pooled particle IoU over four unseen images, a margin below the model card's numbers."""
    from nanomorph.simulate import simulate_micrograph

    overlap = union = 0
    for k in range(4):
        sim = simulate_micrograph(
            np.random.SeedSequence([777, k]), shape=(256, 256), scenario=scenario
        )
        mask = segmenter.segment(sim.image, sim.pixel_size_nm)
        assert mask.shape == sim.mask.shape
        overlap += int((mask & sim.mask).sum())
        union += int((mask | sim.mask).sum())
    assert overlap / union > min_iou


def test_finds_the_particles_of_a_real_haadf_micrograph(shared_data, segmenter):
    """ParticleSpy's JEOL HAADF image: about 20 bright particles on a dark background.

    The network covers the particles and leaves the background, but merges touching particles
    through the blurred gaps between them (see MODEL_CARD.md), so this checks coverage, not count.
    """
    from nanomorph.io import read_micrographs

    (micrograph,) = read_micrographs(shared_data / "particlespy-haadf" / "JEOL HAADF Image.dm4")
    image = micrograph.image
    mask = segmenter.segment(image, micrograph.pixel_size_nm)
    bright = image > np.percentile(image, 97)
    dark = image < np.percentile(image, 60)
    assert mask[bright].mean() > 0.9
    assert mask[dark].mean() < 0.02
    assert 0.03 < mask.mean() < 0.25


STAGE1_COMMIT = "6aa6b19"  # the stage-1 weights, `--init` of the shipped stage 2 (MODEL_CARD.md)


def test_stage1_weights_in_git_history_are_the_recorded_init():
    """The model card tells a reader to take stage 2's initial weights from this commit."""
    import hashlib
    import shutil
    import subprocess

    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    config = json.loads((MODEL_DIR / "config.json").read_text())
    blob = f"{STAGE1_COMMIT}:resources/models/{DEFAULT_MODEL_NAME}/model.safetensors"
    shown = subprocess.run(["git", "show", blob], cwd=MODEL_DIR, capture_output=True, check=False)
    if shown.returncode != 0:
        pytest.skip(f"commit {STAGE1_COMMIT} is not in this checkout's history (shallow clone?)")
    assert hashlib.sha256(shown.stdout).hexdigest() == config["training"]["init_weights_sha256"]


def test_segmenter_records_which_weights_it_ran(segmenter):
    """Every result file that holds describe() names the exact weights (sha256), not just a path."""
    import hashlib

    expected = hashlib.sha256((MODEL_DIR / "model.safetensors").read_bytes()).hexdigest()
    assert segmenter.describe()["weights_sha256"] == expected
