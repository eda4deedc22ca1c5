"""Markdown tables for the model card, from the JSON files the evaluations wrote.

Usage (after the evaluations in resources/models/<name>/MODEL_CARD.md "How these numbers were
made")::

    python benchmarks/model_card_tables.py \\
        --model-dir resources/models/nanomorph-deeplabv3plus-r18 \\
        --eval-model benchmarks/results/eval_model \\
        --eval-threshold benchmarks/results/eval_threshold \\
        --real-model benchmarks/results/real_counts_model.json \\
        --real-threshold benchmarks/results/real_counts_threshold.json

Prints the tables; nothing is computed here that the JSON files do not hold.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def _load(path: Path) -> dict:
    return json.loads(Path(path).read_text())


def training_test_table(metrics: dict) -> str:
    test = metrics["test"]
    rows = [
        "| scenario | images | particle IoU | particle Dice | global accuracy |",
        "|---|---|---|---|---|",
    ]
    for name, m in sorted(test.get("by_scenario", {}).items()):
        rows.append(
            f"| {name} | | {m['particle_iou']:.3f} | {m['particle_dice']:.3f} | "
            f"{m['global_accuracy']:.3f} |"
        )
    rows.append(
        f"| **all** | {test.get('n_images', '')} | {test['particle_iou']:.3f} | "
        f"{test['particle_dice']:.3f} | {test['global_accuracy']:.3f} |"
    )
    return "\n".join(rows)


def comparison_table(model: dict, threshold: dict) -> str:
    rows = [
        "| scenario | particle IoU: network | threshold | recall / precision: network | "
        "threshold | mean diameter error: network | threshold |",
        "|---|---|---|---|---|---|---|",
    ]
    names = [*model["scenarios"].keys(), "overall"]
    for name in names:
        m = model["overall"] if name == "overall" else model["scenarios"][name]
        t = threshold["overall"] if name == "overall" else threshold["scenarios"][name]
        rows.append(
            f"| {name} | {m['pixel']['particle_iou']:.3f} | {t['pixel']['particle_iou']:.3f} | "
            f"{m['instance']['recall']:.2f} / {m['instance']['precision']:.2f} | "
            f"{t['instance']['recall']:.2f} / {t['instance']['precision']:.2f} | "
            f"{100 * m['diameter']['mean_image_mean_diameter_error']:+.1f} % | "
            f"{100 * t['diameter']['mean_image_mean_diameter_error']:+.1f} % |"
        )
    return "\n".join(rows)


def real_counts_table(model: dict, threshold: dict) -> str:
    by_name = {r["image"]: r for r in threshold["images"]}
    rows = [
        "| image | modality | hand count | network | ratio | threshold | ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in model["images"]:
        t = by_name.get(r["image"], {})
        rows.append(
            f"| {r['image']} | {r['modality']} | {r['hand_count']} | {r['predicted_count']} | "
            f"{r['ratio']:.2f} | {t.get('predicted_count', '')} | "
            f"{t.get('ratio', float('nan')):.2f} |"
        )
    rows.append(
        f"| **within ±25 %** | | | {model['n_within_25_percent']} of {model['n_images']} | "
        f"median {model['median_ratio']:.2f} | {threshold['n_within_25_percent']} of "
        f"{threshold['n_images']} | median {threshold['median_ratio']:.2f} |"
    )
    return "\n".join(rows)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model-dir", type=Path)
    p.add_argument("--eval-model", type=Path)
    p.add_argument("--eval-threshold", type=Path)
    p.add_argument("--real-model", type=Path)
    p.add_argument("--real-threshold", type=Path)
    args = p.parse_args(argv)
    if args.model_dir:
        print("### Held-out simulated test split of the training run\n")
        print(training_test_table(_load(args.model_dir / "metrics.json")) + "\n")
    if args.eval_model and args.eval_threshold:
        print("### Fresh simulated test set: network vs threshold\n")
        print(
            comparison_table(
                _load(args.eval_model / "metrics.json"), _load(args.eval_threshold / "metrics.json")
            )
            + "\n"
        )
    if args.real_model and args.real_threshold:
        print("### Real supported-catalyst micrographs: counts vs hand-drawn boxes\n")
        print(real_counts_table(_load(args.real_model), _load(args.real_threshold)) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
