"""Compare a training run's log with the shipped model's: does the same command give the same run?

Both logs are `nanomorph train`'s ``log.jsonl`` (the shipped one is the model folder's
``training_log.jsonl``). Prints the training loss at shared steps and the validation particle IoU
at shared validations, and writes them with their differences as JSON. The same seed gives the
same images, initial weights and batches, so the losses of the first steps agree to the rounding
of the arithmetic (bf16 or float32); later they drift apart as rounding differences grow, and
what should then agree within noise is the validation IoU. With ``--model-dir`` the finished run's
model folder is compared with the shipped one as well: the weights' sha256, the chosen threshold
and ``min_peak_probability``, and the test-split scores of ``metrics.json``.

Usage::

    python benchmarks/compare_training_logs.py work/train-r18c/log.jsonl \
        --out benchmarks/results/retrain_check.json
    python benchmarks/compare_training_logs.py work/ft-flat/log.jsonl \
        --model-dir work/ft-flat/model --out benchmarks/results/retrain_check_stage2.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from nanomorph.segment.model import weights_sha256

REPO = Path(__file__).resolve().parents[1]
SHIPPED_DIR = REPO / "resources/models/nanomorph-deeplabv3plus-r18"
SHIPPED_LOG = SHIPPED_DIR / "training_log.jsonl"


def read_log(path: Path) -> dict[str, dict[int, dict]]:
    records: dict[str, dict[int, dict]] = {"train": {}, "validation": {}}
    for line in path.read_text().splitlines():
        if line.strip():
            record = json.loads(line)
            records.setdefault(record["kind"], {})[int(record["step"])] = record
    return records


def compare_model_folders(new: Path, reference: Path) -> dict:
    """Weights, chosen probability levels and test scores of two model folders, side by side."""

    def describe(folder: Path) -> dict:
        config = json.loads((folder / "config.json").read_text())
        test = json.loads((folder / "metrics.json").read_text())["test"]
        return {
            "weights_sha256": weights_sha256(folder),
            "threshold": config.get("threshold"),
            "min_peak_probability": config.get("min_peak_probability"),
            "test_particle_iou": test["particle_iou"],
            "test_by_scenario": {
                name: scores["particle_iou"] for name, scores in test.get("by_scenario", {}).items()
            },
        }

    mine, theirs = describe(new), describe(reference)
    return {
        "model_dir": str(new),
        "reference_model_dir": _relative(reference),
        "new": mine,
        "reference": theirs,
        "identical_weights": mine["weights_sha256"] == theirs["weights_sha256"],
        "test_particle_iou_difference": mine["test_particle_iou"] - theirs["test_particle_iou"],
    }


def _relative(path: Path) -> str:
    path = path.resolve()
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("log", type=Path, help="the new run's log.jsonl")
    parser.add_argument("--reference", type=Path, default=SHIPPED_LOG, help="default: shipped")
    parser.add_argument("--every", type=int, default=50, help="print the loss every N steps")
    parser.add_argument("--out", type=Path, help="JSON file for the comparison")
    parser.add_argument("--model-dir", type=Path, help="the new run's model folder, to compare too")
    parser.add_argument(
        "--reference-model-dir", type=Path, default=SHIPPED_DIR, help="default: shipped"
    )
    args = parser.parse_args(argv)

    new, reference = read_log(args.log), read_log(args.reference)
    shared = sorted(set(new["train"]) & set(reference["train"]))
    losses = [
        {
            "step": step,
            "reference_loss": reference["train"][step]["loss"],
            "loss": new["train"][step]["loss"],
            "difference": new["train"][step]["loss"] - reference["train"][step]["loss"],
        }
        for step in shared
    ]
    validations = [
        {
            "step": step,
            "reference_particle_iou": reference["validation"][step]["particle_iou"],
            "particle_iou": new["validation"][step]["particle_iou"],
            "difference": new["validation"][step]["particle_iou"]
            - reference["validation"][step]["particle_iou"],
        }
        for step in sorted(set(new["validation"]) & set(reference["validation"]))
    ]
    print(f"{'step':>6s} {'reference loss':>14s} {'loss':>8s} {'difference':>10s}")
    for row in losses:
        if row["step"] % args.every == 0 or row["step"] <= 20:
            print(
                f"{row['step']:6d} {row['reference_loss']:14.4f} {row['loss']:8.4f} "
                f"{row['difference']:+10.4f}"
            )
    for row in validations:
        print(
            f"validation at step {row['step']}: particle IoU {row['particle_iou']:.3f} "
            f"(reference {row['reference_particle_iou']:.3f}, {row['difference']:+.3f})"
        )
    model = None
    if args.model_dir:
        model = compare_model_folders(args.model_dir, args.reference_model_dir)
        same = "identical" if model["identical_weights"] else "different"
        mine, theirs = model["new"], model["reference"]
        print(
            f"weights: {same} (sha256 {mine['weights_sha256'][:12]}… vs "
            f"{theirs['weights_sha256'][:12]}…); threshold "
            f"{mine['threshold']} vs {theirs['threshold']}; "
            f"min_peak_probability {mine['min_peak_probability']} vs "
            f"{theirs['min_peak_probability']}; test particle IoU "
            f"{mine['test_particle_iou']:.3f} vs {theirs['test_particle_iou']:.3f}"
        )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        result = {
            "log": str(args.log),
            "reference": _relative(args.reference),
            "losses": losses,
            "validations": validations,
        }
        if model is not None:
            result["model"] = model
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
