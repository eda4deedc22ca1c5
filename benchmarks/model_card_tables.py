"""Markdown tables for the model card, from the JSON files the evaluations wrote.

Usage (after the evaluations in resources/models/<name>/MODEL_CARD.md "How these numbers were
made")::

    python benchmarks/model_card_tables.py \\
        --model-dir resources/models/nanomorph-deeplabv3plus-r18 \\
        --eval-model benchmarks/results/eval_model \\
        --eval-threshold benchmarks/results/eval_threshold \\
        --real-model benchmarks/results/real_counts_model.json \\
        --real-threshold benchmarks/results/real_counts_threshold.json \\
        --real-flips benchmarks/results/real_counts_model_flips.json

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


def _size_ratio(row: dict) -> float:
    found, hand = row.get("predicted_median_feret_px"), row.get("hand_median_size_px")
    return found / hand if found and hand else float("nan")


def real_counts_table(model: dict, threshold: dict, every_region: dict | None = None) -> str:
    """Counts per image; with `every_region` (the network with min_peak_probability 0) also its
    counts, and for both network runs the median found size over the median hand-box size."""
    by_name = {r["image"]: r for r in threshold["images"]}
    other = {r["image"]: r for r in every_region["images"]} if every_region else None
    if other is None:
        rows = [
            "| image | modality | hand count | network | ratio | threshold | ratio |",
            "|---|---|---|---|---|---|---|",
        ]
    else:
        rows = [
            "| image | modality | hand count | network | ratio | size ratio | every region | "
            "ratio | size ratio | threshold | ratio |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
    for r in model["images"]:
        t = by_name.get(r["image"], {})
        cells = [r["image"], r["modality"], r["hand_count"], r["predicted_count"]]
        cells.append(f"{r['ratio']:.2f}")
        if other is not None:
            o = other[r["image"]]
            cells += [f"{_size_ratio(r):.2f}", o["predicted_count"], f"{o['ratio']:.2f}"]
            cells.append(f"{_size_ratio(o):.2f}")
        cells += [t.get("predicted_count", ""), f"{t.get('ratio', float('nan')):.2f}"]
        rows.append("| " + " | ".join(str(c) for c in cells) + " |")
    summary = [
        "**within ±25 %**",
        "",
        "",
        f"{model['n_within_25_percent']} of {model['n_images']}",
        f"median {model['median_ratio']:.2f}",
    ]
    if other is not None:
        for run in (model, every_region):
            sizes = [_size_ratio(r) for r in run["images"]]
            within = sum(abs(x - 1) <= 0.25 for x in sizes)
            if run is model:
                summary.append(f"{within} of {len(sizes)}")
            else:
                summary += [
                    f"{run['n_within_25_percent']} of {run['n_images']}",
                    f"median {run['median_ratio']:.2f}",
                    f"{within} of {len(sizes)}",
                ]
    summary += [
        f"{threshold['n_within_25_percent']} of {threshold['n_images']}",
        f"median {threshold['median_ratio']:.2f}",
    ]
    rows.append("| " + " | ".join(summary) + " |")
    return "\n".join(rows)


def failure_mode(row: dict) -> str:
    """Where an image's count goes wrong, from its box diagnostics (thresholds stated in the card).

    The segmentation touches fewer than 60 % of the boxes: the network misses particles. It
    touches most of them but under half get a particle of their own: found, then merged into
    neighbours' regions or dropped with an unresolvable cluster. Under half of the found particles
    lie in a box: false detections.
    """
    modes = []
    if row["boxes_on_mask"] < 0.6:
        modes.append("missed by the network")
    elif row["box_recall"] < 0.5:
        modes.append("found, then merged or dropped")
    if row["box_precision"] < 0.5:
        modes.append("false detections")
    return "; ".join(modes) or "—"


def box_diagnostics_table(model: dict, flips: dict | None = None) -> str:
    """Per image: count, one-to-one box matches and how much of each box the mask touches."""
    by_name = {r["image"]: r for r in (flips or {"images": []})["images"]}
    head = "| image | hand | found | box recall | box precision | boxes on mask | failure |"
    rule = "|---|---|---|---|---|---|---|"
    if flips:
        head += " found, flips | recall, flips | precision, flips |"
        rule += "---|---|---|"
    rows = [head, rule]
    for r in model["images"]:
        line = (
            f"| {r['image']} | {r['hand_count']} | {r['predicted_count']} | "
            f"{r['box_recall']:.2f} | {r['box_precision']:.2f} | {r['boxes_on_mask']:.2f} | "
            f"{failure_mode(r)} |"
        )
        if flips:
            f = by_name[r["image"]]
            line += f" {f['predicted_count']} | {f['box_recall']:.2f} | {f['box_precision']:.2f} |"
        rows.append(line)
    total = (
        f"| **all boxes** | {sum(r['hand_count'] for r in model['images'])} | "
        f"{sum(r['predicted_count'] for r in model['images'])} | {model['box_recall']:.2f} | "
        f"{model['box_precision']:.2f} | {model['boxes_on_mask']:.2f} | |"
    )
    if flips:
        total += (
            f" {sum(r['predicted_count'] for r in flips['images'])} | "
            f"{flips['box_recall']:.2f} | {flips['box_precision']:.2f} |"
        )
    rows.append(total)
    return "\n".join(rows)


SIZE_BINS_PX = ((0.0, 10.0), (10.0, 20.0), (20.0, 40.0), (40.0, float("inf")))


def size_bin_table(model_dir: Path, threshold_dir: Path) -> str:
    """Particle IoU pooled over images grouped by their median true particle diameter in pixels.

    A particle a few pixels across cannot be outlined to IoU 0.9: half a pixel of edge error
    on a 7 px disc is already IoU 0.75. The table shows how much of a scenario's IoU is set by
    the size of its particles on the pixel grid.
    """
    import pandas as pd

    frames = {}
    for label, folder in (("network", model_dir), ("threshold", threshold_dir)):
        frames[label] = pd.read_csv(Path(folder) / "per_image.csv")
    rows = [
        "| scenario | median particle diameter | images | particle IoU: network | threshold |",
        "|---|---|---|---|---|",
    ]

    def pooled(frame) -> float:
        tp = frame["particle_pixels_true_positive"].sum()
        fp = frame["particle_pixels_false_positive"].sum()
        fn = frame["particle_pixels_false_negative"].sum()
        return tp / (tp + fp + fn) if tp + fp + fn else float("nan")

    net, thr = frames["network"], frames["threshold"]
    if len(net) != len(thr) or not (net["scenario"] == thr["scenario"]).all():
        raise SystemExit("the two evaluations were not made on the same test set")
    for scenario in net["scenario"].unique():
        for lo, hi in SIZE_BINS_PX:
            size = net["median_true_diameter_px"]
            pick = (net["scenario"] == scenario) & (size >= lo) & (size < hi)
            if not pick.any():
                continue
            span = f"{lo:.0f}–{hi:.0f} px" if hi < float("inf") else f"≥ {lo:.0f} px"
            rows.append(
                f"| {scenario} | {span} | {int(pick.sum())} | {pooled(net[pick]):.3f} | "
                f"{pooled(thr[pick]):.3f} |"
            )
    return "\n".join(rows)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model-dir", type=Path)
    p.add_argument("--eval-model", type=Path)
    p.add_argument("--eval-threshold", type=Path)
    p.add_argument("--real-model", type=Path)
    p.add_argument("--real-threshold", type=Path)
    p.add_argument("--real-flips", type=Path, help="real counts with test-time flips")
    p.add_argument(
        "--real-every-region",
        type=Path,
        help="real counts of the network with min_peak_probability 0 (columns beside the model's)",
    )
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
        print("### Fresh simulated test set by particle size on the pixel grid\n")
        print(size_bin_table(args.eval_model, args.eval_threshold) + "\n")
    if args.real_model and args.real_threshold:
        print("### Real supported-catalyst micrographs: counts vs hand-drawn boxes\n")
        every_region = _load(args.real_every_region) if args.real_every_region else None
        print(
            real_counts_table(_load(args.real_model), _load(args.real_threshold), every_region)
            + "\n"
        )
    if args.real_model and "box_recall" in _load(args.real_model):
        print("### Real supported-catalyst micrographs: where the counts go wrong\n")
        flips = _load(args.real_flips) if args.real_flips else None
        print(box_diagnostics_table(_load(args.real_model), flips) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
