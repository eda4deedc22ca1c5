"""Checks on the benchmark scripts' own bookkeeping (not on the numbers they measure)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]


def _load_real_counts():
    spec = importlib.util.spec_from_file_location(
        "real_counts", REPO / "benchmarks" / "real_counts.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("real_counts", module)
    spec.loader.exec_module(module)
    return module


def test_real_counts_modality_matches_the_hand_boxes(shared_data):
    """Each image's modality (the threshold's polarity) agrees with what the annotator boxed.

    Inside the central half of the hand boxes the particles are darker than the unboxed field
    in bright field and brighter in HAADF. A name-prefix rule once called the HAADF images PtC3
    and PtCo bright field and gave the threshold baseline the wrong polarity there.
    """
    real_counts = _load_real_counts()
    folder = shared_data / "supported-catalysts"
    if not folder.is_dir():
        pytest.skip("supported-catalysts data absent")
    names = sorted(p.stem for p in (folder / "images").glob("*.jpg"))
    assert len(names) == 33
    assert real_counts.BRIGHT_FIELD <= set(names)
    wrong = []
    for name in names:
        with Image.open(folder / "images" / f"{name}.jpg") as img:
            grey = np.asarray(img.convert("L"), dtype=np.float64)
        h, w = grey.shape
        core = np.zeros(grey.shape, bool)
        boxed = np.zeros(grey.shape, bool)
        for cx, cy, bw, bh in real_counts.hand_boxes(name):
            for target, half in ((core, 0.25), (boxed, 0.5)):
                r0, c0 = max(int((cy - bh * half) * h), 0), max(int((cx - bw * half) * w), 0)
                r1 = max(int(np.ceil((cy + bh * half) * h)), r0 + 1)
                c1 = max(int(np.ceil((cx + bw * half) * w)), c0 + 1)
                target[r0:r1, c0:c1] = True
        particles_brighter = np.median(grey[core]) > np.median(grey[~boxed])
        if particles_brighter == real_counts.is_bright_field(name):
            wrong.append(name)
    assert wrong == []


def _load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_real_counts_size_agreement_compares_median_sizes():
    real_counts = _load_real_counts()
    rows = [
        {"predicted_median_feret_px": 10.0, "hand_median_size_px": 10.0},
        {"predicted_median_feret_px": 5.0, "hand_median_size_px": 10.0},
        {"predicted_median_feret_px": None, "hand_median_size_px": 10.0},  # nothing found
    ]
    sizes = real_counts.size_agreement(rows)
    assert sizes["n_size_within_25_percent"] == 1
    assert sizes["median_size_ratio"] == pytest.approx(0.75)


def test_compare_training_logs_pairs_shared_steps(tmp_path):
    import json

    compare = _load_script("compare_training_logs")

    def write(path, losses, iou):
        lines = [{"kind": "train", "step": s, "loss": v} for s, v in losses.items()]
        lines.append({"kind": "validation", "step": 20, "particle_iou": iou})
        path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")

    write(tmp_path / "ref.jsonl", {10: 1.0, 20: 0.8, 30: 0.7}, 0.40)
    write(tmp_path / "new.jsonl", {10: 1.0, 20: 0.9}, 0.45)
    out = tmp_path / "cmp.json"
    argv = [str(tmp_path / "new.jsonl"), "--reference", str(tmp_path / "ref.jsonl")]
    assert compare.main([*argv, "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert [row["step"] for row in result["losses"]] == [10, 20]
    assert result["losses"][1]["difference"] == pytest.approx(0.1)
    assert result["validations"][0]["difference"] == pytest.approx(0.05)


def test_compare_training_logs_compares_model_folders(tmp_path):
    import json

    compare = _load_script("compare_training_logs")

    def folder(name, weights, iou):
        path = tmp_path / name
        path.mkdir()
        (path / "model.safetensors").write_bytes(weights)
        config = {"threshold": 0.65, "min_peak_probability": 0.95}
        (path / "config.json").write_text(json.dumps(config))
        test = {"particle_iou": iou, "by_scenario": {"haadf": {"particle_iou": iou}}}
        (path / "metrics.json").write_text(json.dumps({"test": test}))
        return path

    shipped = folder("shipped", b"weights", 0.69)
    same = compare.compare_model_folders(folder("same", b"weights", 0.69), shipped)
    assert same["identical_weights"]
    assert same["test_particle_iou_difference"] == 0
    other = compare.compare_model_folders(folder("other", b"other weights", 0.70), shipped)
    assert not other["identical_weights"]
    assert other["test_particle_iou_difference"] == pytest.approx(0.01)
    assert other["new"]["test_by_scenario"] == {"haadf": 0.70}


@pytest.mark.parametrize(
    "option",
    [
        ("--pixel-size", "0"),
        ("--flatten-support", "-1"),
        ("--min-peak-probability", "1.5"),
        ("--min-peak-probability", "nan"),
    ],
)
def test_real_counts_refuses_impossible_settings_before_any_work(option, capsys):
    real_counts = _load_real_counts()
    with pytest.raises(SystemExit):
        real_counts.main(list(option))
    assert f"argument {option[0]}: expected" in capsys.readouterr().err


def _threshold_instead(monkeypatch) -> list[dict]:
    """Swap the network for the threshold in real_counts (fast); returns the options each
    make_segmenter call was given."""
    import nanomorph.pipeline as pipeline

    calls = []
    make_segmenter = pipeline.make_segmenter

    def threshold_instead(kind="model", **options):
        calls.append(options)
        return make_segmenter("threshold", polarity=options.get("polarity", "auto"))

    monkeypatch.setattr(pipeline, "make_segmenter", threshold_instead)
    return calls


def test_real_counts_gives_the_chosen_precision_to_every_segmenter(
    shared_data, monkeypatch, tmp_path
):
    """--precision reaches the hand-counted images and the ParticleSpy rows alike.

    The counts depend on the arithmetic by a few percent (model card), so a result file must say
    which one made it; the network is swapped for the threshold to keep the test fast.
    """
    import json

    if not (shared_data / "supported-catalysts").is_dir():
        pytest.skip("supported-catalysts images absent")
    real_counts = _load_real_counts()
    calls = _threshold_instead(monkeypatch)
    out = tmp_path / "counts.json"
    assert real_counts.main(["--images", "PtCo", "--precision", "fp32", "--out", str(out)]) == 0
    expected_calls = 1 + len(json.loads(out.read_text())["particlespy"])
    requested = [options.get("precision") for options in calls]
    assert requested == ["fp32"] * expected_calls


def test_real_counts_declares_the_median_hand_box_as_the_particle_diameter(
    shared_data, monkeypatch, tmp_path
):
    import json

    if not (shared_data / "supported-catalysts").is_dir():
        pytest.skip("supported-catalysts images absent")
    real_counts = _load_real_counts()
    calls = _threshold_instead(monkeypatch)
    out = tmp_path / "counts.json"
    argv = ["--images", "PtCo", "--declare-particle-diameter", "--diameter-error", "1.5"]
    assert real_counts.main([*argv, "--out", str(out)]) == 0
    declared = [options.get("particle_diameter_nm") for options in calls]
    # PtCo's median hand box is 42.3 px; at the nominal 0.1 nm/px, declared 1.5 times that.
    assert declared[0] == pytest.approx(42.3 * 0.1 * 1.5)
    assert set(declared[1:]) == {None}  # the ParticleSpy rows have no hand boxes
    result = json.loads(out.read_text())
    assert result["declared_particle_diameter"] == "median hand box x nominal pixel size x 1.5"
    with pytest.raises(SystemExit):
        real_counts.main([*argv[:3], "--diameter-error", "0"])
    with pytest.raises(SystemExit):
        real_counts.main([*argv[:3], "--segmenter", "threshold"])


def test_declared_diameter_scan_changes_nothing_where_no_image_is_seen_otherwise(tmp_path):
    import importlib.util
    import json

    spec = importlib.util.spec_from_file_location(
        "declared_diameter", REPO / "benchmarks" / "declared_diameter.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "scan.json"
    argv = ["--seeds", "20240603", "--n", "1", "--targets", "24", "--agreements", "0.85"]
    assert module.main([*argv, "--small-particle-px", "10", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    iou = result["particle_iou"]
    assert set(iou) == {
        "not declared",
        "target 24, coarse pass only",
        "target 24, agreement 0.85",
        "small below 10 px",
    }
    seen = result["images_seen_coarser_or_enlarged"]
    for name in ("target 24, agreement 0.85", "small below 10 px"):
        key = "target 24" if name.startswith("target") else name
        for scenario, n_changed in seen[key].items():
            if n_changed == 0:
                assert iou[name][scenario] == iou["not declared"][scenario]
    # The first image of this seed holds large faceted particles and a small ultrasmall one.
    assert seen["target 24"]["faceted"] == 1
    assert seen["small below 10 px"]["ultrasmall_low_contrast"] == 1
    assert (
        iou["small below 10 px"]["ultrasmall_low_contrast"]
        != iou["not declared"]["ultrasmall_low_contrast"]
    )


def test_retrain_script_runs_the_commands_the_model_card_gives():
    import json

    retrain = _load_script("retrain_both_stages")
    folder = REPO / "resources" / "models" / "nanomorph-deeplabv3plus-r18"
    card = (folder / "MODEL_CARD.md").read_text()
    config = json.loads((folder / "config.json").read_text())
    stage1 = retrain.STAGE1
    assert (
        f"--steps {stage1['steps']} --n-images {stage1['n_images']} "
        f"--val-every {stage1['val_every']}"
    ) in card
    # Stage 2 is the shipped model: its own config records how it was trained.
    stage2, trained = retrain.STAGE2, config["training"]
    assert (stage2["steps"], stage2["n_images"], stage2["val_every"], stage2["lr"]) == (
        trained["steps"],
        trained["n_images"],
        trained["val_every"],
        trained["lr"],
    )
    assert stage2["flatten_support"] == config["preprocess"]["flatten_sigma_px"]


def test_retrain_script_trains_both_stages_and_records_them(tmp_path):
    import json

    retrain = _load_script("retrain_both_stages")
    out = tmp_path / "retrain"
    result = retrain.main(["--quick", "--device", "cpu", "--out-dir", str(out)])
    assert [row["stage"] for row in result["stages"]] == ["stage1", "stage2"]
    stage2 = result["stages"][1]["command"]
    assert stage2[stage2.index("--init") + 1] == str(out / "stage1" / "model")
    assert stage2[stage2.index("--flatten-support") + 1] == "32"
    assert (out / "stage2" / "model" / "model.safetensors").exists()
    assert (
        json.loads((out / "timing.json").read_text())["stages"][0]["weights_sha256"]
        == (result["stages"][0]["weights_sha256"])
    )
    assert not list(out.glob("*.partial"))
